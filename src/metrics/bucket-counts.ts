import type { DurationRecorder } from './call-totals.js';

/** One histogram series kept as plain numbers: a count per bucket, the sum and the count. */
export class BucketCounts implements DurationRecorder {
  /** Observations per bucket, not cumulative; the last one is above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  #seconds = -1;
  #index = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  record(seconds: number, weight: number): void {
    let i = this.#index;
    // Sampled calls repeat the duration last timed: its bucket is kept.
    if (seconds !== this.#seconds) {
      const bounds = this.bounds;
      i = 0;
      while (i < bounds.length && seconds > (bounds[i] as number)) i++;
      this.#seconds = seconds;
      this.#index = i;
    }
    this.counts[i] = (this.counts[i] as number) + weight;
    this.sum += seconds * weight;
    this.count += weight;
  }

  repeat(): boolean {
    if (this.#seconds < 0) return false;
    const i = this.#index;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += this.#seconds;
    this.count++;
    return true;
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
