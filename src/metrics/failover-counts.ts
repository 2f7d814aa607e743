import { type FailoverEvent, followFailovers } from '../route/failover-feed.js';

// The `to` label when no target was left: empty, which no breaker name can be ("none" could be
// a breaker's name).
const NONE = '';

/** One series of the failover counter. */
export interface FailoverSeries {
  readonly route: string;
  readonly from: string;
  /** The next target's name, or empty when no target was left. */
  readonly to: string;
  readonly reason: string;
  count: number;
}

/**
 * Every route's failovers in the process since the exporter started, by label set. A series
 * goes with its breakers' names: once neither the breaker left (`from`) nor the next one (`to`)
 * is a name the exporter still keeps (the call series keep a name until it has had no live
 * breaker for `idleTimeout`, at most 1,000 idle names), the series is dropped,
 * so that routes over dynamic names (per tenant, per model) do not grow the exporter for ever.
 * Nothing runs on a timer: series are dropped when they are read and when a new one is made.
 */
export class FailoverCounts {
  readonly #series = new Map<string, FailoverSeries>();
  readonly #unfollow: () => void;

  /** @param kept whether the exporter still keeps breaker name `name`'s series. */
  constructor(readonly kept: (name: string) => boolean) {
    this.#unfollow = followFailovers((event) => this.#count(event));
  }

  values(): IterableIterator<FailoverSeries> {
    this.#sweep();
    return this.#series.values();
  }

  #sweep(): void {
    const kept = this.kept;
    for (const [key, { from, to }] of this.#series) {
      if (!kept(from) && (to === NONE || !kept(to))) this.#series.delete(key);
    }
  }

  reset(): void {
    for (const series of this.#series.values()) series.count = 0;
  }

  stop(): void {
    this.#unfollow();
  }

  #count(event: FailoverEvent): void {
    const to = event.to ?? NONE;
    const key = JSON.stringify([event.route, event.from, to, event.reason]);
    let series = this.#series.get(key);
    if (series === undefined) {
      // A new label set is rare (once per route, target and reason): the moment to drop the
      // series of names gone meanwhile, when nobody reads them.
      this.#sweep();
      series = { route: event.route, from: event.from, to, reason: event.reason, count: 0 };
      this.#series.set(key, series);
    }
    series.count++;
  }
}
