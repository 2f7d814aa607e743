/** A task and the milliseconds between its runs. */
export type PeriodicTask = readonly [ms: number, task: () => Promise<void>];

/**
 * A store's periodic work (clock readings, resync checks), run only while breakers follow
 * records: an idle store holds no timer. A task's failure waits for its next run.
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
      const timer = setInterval(() => {
        task().catch(() => {});
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
