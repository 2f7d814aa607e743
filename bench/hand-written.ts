/**
 * The near-limit reference: the least a consecutive-failures breaker can do per call (a
 * closed check, a counter reset on success), with async/await as statebreaker uses. It has
 * no half-open, no events, no sharing; it is the floor, not a competitor.
 */
const newError = (): Error => new Error('circuit open');

export class HandWrittenBreaker {
  open = false;
  failures = 0;
  openedAt = 0;

  constructor(
    readonly failMax = 5,
    readonly resetTimeout = 30_000,
    /** How an open circuit builds its error: `new Error`, stackless, or one shared error. */
    readonly rejection: () => Error = newError,
  ) {}

  async call<T>(fn: () => T | PromiseLike<T>): Promise<T> {
    if (this.open) throw this.rejection();
    try {
      const result = await fn();
      this.failures = 0;
      return result;
    } catch (error) {
      if (++this.failures >= this.failMax) {
        this.open = true;
        this.openedAt = Date.now();
      }
      throw error;
    }
  }
}

/** An error without a captured stack: the cheap-but-fresh rejection. */
export function stacklessError(): Error {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const error = new Error('circuit open');
  Error.stackTraceLimit = limit;
  return error;
}

const SHARED = stacklessError();

/** One pre-allocated error for every rejection: the floor of the open path. */
export const sharedError = (): Error => SHARED;
