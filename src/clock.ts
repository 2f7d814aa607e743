/**
 * The time source a breaker decides with. `now()` stamps every event the breaker sends;
 * `setTimeout`/`clearTimeout` run the statechart's delays (XState's clock interface), so a
 * simulated clock drives a breaker's whole behaviour in tests.
 */
export interface Clock {
  /** Milliseconds since the epoch on this clock. */
  now(): number;
  /** Schedules `fn` after `ms` milliseconds; returns a handle for `clearTimeout`. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a timer scheduled with `setTimeout`. */
  clearTimeout(handle: unknown): void;
}

/** Wall-clock time; its timers are unref'd so that a breaker never keeps a process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return timer;
  },
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};
