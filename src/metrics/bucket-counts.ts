import type { DurationRecorder } from './call-totals.js';

/** One histogram series kept as plain numbers: a count per bucket, the sum and the count. */
export class BucketCounts implements DurationRecorder {
  /** Observations per bucket, not cumulative; the last one is above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  /** The duration recorded last, in seconds; -1 before the first. */
  #seconds = -1;
  #index = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  record(seconds: number, calls: number): void {
    // The calls not timed since the last record took the duration recorded then; those before
    // the first record take this one.
    const untimed = calls - 1 - this.count;
    let weight = 1;
    if (untimed > 0) {
      if (this.#seconds < 0) weight += untimed;
      else this.#add(this.#index, this.#seconds, untimed);
    }
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > (bounds[i] as number)) i++;
    this.#seconds = seconds;
    this.#index = i;
    this.#add(i, seconds, weight);
  }

  settle(calls: number): void {
    const untimed = calls - this.count;
    if (untimed > 0 && this.#seconds >= 0) this.#add(this.#index, this.#seconds, untimed);
  }

  #add(index: number, seconds: number, weight: number): void {
    this.counts[index] = (this.counts[index] as number) + weight;
    this.sum += seconds * weight;
    this.count += weight;
  }

  /** Observations at or below each bound, in the order of the bounds (Prometheus's `le`). */
  cumulative(): number[] {
    let running = 0;
    return this.bounds.map((_, i) => {
      running += this.counts[i] as number;
      return running;
    });
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}
