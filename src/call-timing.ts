import type { BreakerObserver } from './breaker-observer.js';
import type { Emitter } from './events.js';

/** Which calls a breaker times: none, every one, or a sample for exporters. */
export const Timing = { Off: 0, Every: 1, Sampled: 2 } as const;
export type Timing = (typeof Timing)[keyof typeof Timing];
/** Calls at least this long (ms) are all timed: two clock reads are then 0.1 % of one. */
export const SAMPLED_BELOW_MS = 0.1;
/** While calls are faster, one in this many is timed and stands for them all. */
export const SAMPLE_STRIDE = 64;
/**
 * Timed calls in a row under SAMPLED_BELOW_MS before sampling begins: one fast call (a cache
 * hit) among slow ones leaves the slow ones timed.
 */
export const FAST_RUN = 8;

// Reading the clock costs about as much as a whole closed-circuit call (tens of ns each). A
// listener of success, failure or ignored gets every call's duration. Exporters alone get
// every call's while calls take at least SAMPLED_BELOW_MS, which dwarfs the two reads, and
// one in SAMPLE_STRIDE of faster calls (an exporter counts an untimed call with the duration
// last recorded for its name and kind), once FAST_RUN timed calls in a row were that fast; a
// slower timed call ends the sampling. So a call is left untimed only within SAMPLE_STRIDE - 1
// calls after FAST_RUN fast timed calls in a row.
/** How a breaker with these listeners and observers times its calls. */
export function timingFor(events: Emitter, observers: readonly BreakerObserver[] | null): Timing {
  return events.has('success') || events.has('failure') || events.has('ignored')
    ? Timing.Every
    : observers?.some((observer) => observer.timed) === true
      ? Timing.Sampled
      : Timing.Off;
}

/**
 * The clock reads around a breaker's timed calls, built when its timing changes to `timing`
 * (so the sample starts afresh) and absent while nothing was ever timed.
 */
export class CallTimer {
  /** While sampling: calls to leave untimed before the next timed one. */
  #untimed = 0;
  /** Timed calls in a row under SAMPLED_BELOW_MS (while sampling). */
  #fastRun = 0;

  constructor(readonly timing: Timing) {}

  // One countdown, zero unless sampling: the untimed call reads and writes one field.
  /** `performance.now()` for a call to time, -1 for one left untimed. */
  start(): number {
    const untimed = this.#untimed;
    if (untimed > 0) {
      this.#untimed = untimed - 1;
      return -1;
    }
    return performance.now();
  }

  /** The duration of a timed call; sets the next sample. */
  stop(started: number): number {
    const durationMs = performance.now() - started;
    if (this.timing === Timing.Sampled) {
      if (durationMs >= SAMPLED_BELOW_MS) {
        this.#fastRun = 0;
        this.#untimed = 0;
      } else if (++this.#fastRun >= FAST_RUN) {
        this.#untimed = SAMPLE_STRIDE - 1;
      }
    }
    return durationMs;
  }
}
