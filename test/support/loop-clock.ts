import { performance } from 'node:perf_hooks';

const BEAT_MS = 10;
// Lateness below this is ordinary timer jitter, not time the loop could not run.
const TOLERANCE_MS = 5;

/**
 * Time during which this process's event loop could not run: a synchronous stall, a GC pause, a
 * machine so busy that timers fire late. A heartbeat every 10 ms adds up how late it fires.
 * `now()` is real time less that lost time: what a bound on how fast breakers react should be
 * measured in, since nothing a breaker does can happen while its loop cannot run.
 */
export class LoopClock {
  #lost = 0;
  #last = performance.now();
  readonly #timer: ReturnType<typeof setInterval>;

  constructor() {
    this.#timer = setInterval(() => this.#beat(), BEAT_MS);
    this.#timer.unref();
  }

  /** Milliseconds of real time, less the time the loop could not run. */
  now(): number {
    // A stall still in progress shows when the next beat runs; `now()` is only called from
    // code that runs, so the beat that would measure it has not been missed yet: count it here.
    this.#beat();
    return performance.now() - this.#lost;
  }

  /** Total time the loop could not run since this clock started, in ms. */
  get lost(): number {
    return this.#lost;
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #beat(): void {
    const now = performance.now();
    const late = now - this.#last - BEAT_MS;
    if (late > TOLERANCE_MS) this.#lost += late;
    this.#last = now;
  }
}
