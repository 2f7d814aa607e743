import type { BreakerConfig, BreakerEvent, WindowCounts } from '../machine.js';

/**
 * The fleet's rates over a breaker's window, as the statechart last judged them (the counts of
 * the last `WINDOW` event: the fleet's totals a flush brought back). A rate is -1 while the
 * window holds fewer than `minimumCalls` counted calls (as resilience4j reports it), and for a
 * rule that is not configured.
 */
export interface WindowRates {
  /** Counted calls in the fleet's window (successful or failed; ignored calls count in neither). */
  readonly calls: number;
  /** Percent (0-100) of the counted calls that failed; -1 below `minimumCalls`. */
  readonly failureRate: number;
  /** Percent (0-100) of the counted calls that were slow; -1 below `minimumCalls`. */
  readonly slowCallRate: number;
}

/** The rates of `counts` under `config`'s rules. */
export function windowRates(
  config: BreakerConfig,
  counts: Pick<WindowCounts, 'calls' | 'failures' | 'slow'> | undefined,
): WindowRates {
  const calls = counts?.calls ?? 0;
  const judged = counts !== undefined && calls > 0 && calls >= (config.minimumCalls ?? 1);
  const rate = (part: number, rule: number | undefined) =>
    judged && rule !== undefined ? (part * 100) / calls : -1;
  return {
    calls,
    failureRate: rate(counts?.failures ?? 0, config.failureRateThreshold),
    slowCallRate: rate(counts?.slow ?? 0, config.slowCallRateThreshold),
  };
}

/**
 * The counts of the last `WINDOW` event a breaker's window sent its statechart, kept so that
 * metrics and views can show the rates the statechart decides on. Counts of an older generation
 * (the circuit tripped or was reset since) or older than the window are an empty window.
 */
export class LastWindowCounts {
  #counts: WindowCounts | undefined;
  #generation = -1;
  #at = 0;

  /** Keeps the counts of a `WINDOW` event; other events pass by. */
  heard(event: BreakerEvent): void {
    if (event.type !== 'WINDOW') return;
    this.#counts = event;
    this.#generation = event.generation;
    this.#at = event.at;
  }

  /** The rates now, for a statechart in `generation`. */
  rates(config: BreakerConfig, generation: number, now: number): WindowRates {
    const current =
      generation === this.#generation && now - this.#at < (config.window ?? 0)
        ? this.#counts
        : undefined;
    return windowRates(config, current);
  }
}
