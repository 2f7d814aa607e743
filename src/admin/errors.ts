/**
 * An operator action or a read named a breaker the store holds no record of. A breaker writes
 * its record at its first change (a failure counted, a trip): one that never changed has none.
 */
export class BreakerNotFoundError extends Error {
  override readonly name = 'BreakerNotFoundError';
  /** The breaker's name. */
  readonly breaker: string;

  constructor(breaker: string) {
    super(
      `no breaker named "${breaker}": the store holds no record of it (a breaker writes one at its first change, so one that never failed has none)`,
    );
    this.breaker = breaker;
  }
}

/** An operator action met another writer's change on every attempt it made. */
export class OperatorConflictError extends Error {
  override readonly name = 'OperatorConflictError';
  /** The breaker's name. */
  readonly breaker: string;
  /** Compare-and-sets tried. */
  readonly attempts: number;

  constructor(breaker: string, attempts: number) {
    super(
      `breaker "${breaker}" changed under each of ${attempts} attempts to write the action; nothing was written, try again`,
    );
    this.breaker = breaker;
    this.attempts = attempts;
  }
}
