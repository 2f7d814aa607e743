import { type FailoverEvent, followFailovers } from '../route/failover-feed.js';

/** One series of the failover counter. */
export interface FailoverSeries {
  readonly route: string;
  readonly from: string;
  /** The next target's name, or `none` when no target was left. */
  readonly to: string;
  readonly reason: string;
  count: number;
}

/** Every route's failovers in the process since the exporter started, by label set. */
export class FailoverCounts {
  readonly #series = new Map<string, FailoverSeries>();
  readonly #unfollow: () => void;

  constructor() {
    this.#unfollow = followFailovers((event) => this.#count(event));
  }

  values(): IterableIterator<FailoverSeries> {
    return this.#series.values();
  }

  reset(): void {
    for (const series of this.#series.values()) series.count = 0;
  }

  stop(): void {
    this.#unfollow();
  }

  #count(event: FailoverEvent): void {
    // Empty, which no breaker name can be: "none" could be a breaker's name.
    const to = event.to ?? '';
    const key = JSON.stringify([event.route, event.from, to, event.reason]);
    let series = this.#series.get(key);
    if (series === undefined) {
      series = { route: event.route, from: event.from, to, reason: event.reason, count: 0 };
      this.#series.set(key, series);
    }
    series.count++;
  }
}
