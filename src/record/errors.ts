/** A stored record that cannot be used: bad JSON, another schema, an unknown state. */
export class CorruptRecordError extends Error {
  override readonly name = 'CorruptRecordError';
  /** The breaker's name. */
  readonly breaker: string;
  /** Where the record lives (a Redis key), when the store knows. */
  readonly key: string | undefined;
  /** What is wrong with it, e.g. `not JSON (...)`. */
  readonly problem: string;

  constructor(breaker: string, problem: string, key?: string) {
    super(`corrupt record for breaker "${breaker}"${key ? ` at ${key}` : ''}: ${problem}`);
    this.breaker = breaker;
    this.key = key;
    this.problem = problem;
  }
}

/** Instances of one name configured differently; the local configuration governs locally. */
export class ConfigMismatchError extends Error {
  override readonly name = 'ConfigMismatchError';
  /** The breaker's name. */
  readonly breaker: string;
  /** The options that differ, as `name (local vs stored)`. */
  readonly differences: readonly string[];

  constructor(breaker: string, differences: readonly string[]) {
    super(
      `breaker "${breaker}" is configured differently on another instance: ${differences.join(', ')}`,
    );
    this.breaker = breaker;
    this.differences = differences;
  }
}

/**
 * A store that went back in time: the record of a breaker is missing, or older than a version
 * the store has already handed out (FLUSHALL, an evicted or expired key, a restart from an old
 * dump). Breakers that hold a newer state write it back.
 */
export class LostRecordError extends Error {
  override readonly name = 'LostRecordError';
  /** The breaker's name. */
  readonly breaker: string;
  /** Where the record lives (a Redis key). */
  readonly key: string;
  /** The version found (0: none). */
  readonly storedVersion: number;
  /** The newest version the store had seen before. */
  readonly seenVersion: number;

  constructor(breaker: string, key: string, storedVersion: number, seenVersion: number) {
    super(
      `record of breaker "${breaker}" at ${key} went back in time: ${
        storedVersion === 0 ? 'missing' : `version ${storedVersion}`
      }, version ${seenVersion} was seen; re-created from the breakers' state`,
    );
    this.breaker = breaker;
    this.key = key;
    this.storedVersion = storedVersion;
    this.seenVersion = seenVersion;
  }
}
