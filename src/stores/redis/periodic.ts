/** A task and the milliseconds between its runs. */
export type PeriodicTask = readonly [ms: number, task: () => Promise<void>];

/**
 * A store's periodic work (clock readings, resync checks), run only while breakers follow
 * records: an idle store holds no timer. A task's failure waits for its next run; a run still
 * going when the next is due skips that one.
 */
export class Periodic {
  readonly #tasks: readonly PeriodicTask[];
  readonly #stopped: () => void;
  #timers: ReturnType<typeof setInterval>[] = [];

  /** @param stopped called on every `stop()` */
  constructor(tasks: readonly PeriodicTask[], stopped: () => void) {
    this.#tasks = tasks;
    this.#stopped = stopped;
  }

  /** Starts the timers, unless they run. */
  start(): void {
    if (this.#timers.length > 0) return;
    for (const [ms, task] of this.#tasks) {
      // A run still going when the next is due is not joined by another: a check that waits
      // for a lagging subscriber, or a resync of many records, would otherwise overlap itself.
      let running = false;
      const timer = setInterval(() => {
        if (running) return;
        running = true;
        task()
          .catch(() => {})
          .finally(() => {
            running = false;
          });
      }, ms);
      timer.unref();
      this.#timers.push(timer);
    }
  }

  /** Stops the timers. */
  stop(): void {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    this.#stopped();
  }
}
