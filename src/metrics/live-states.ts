import { heardStateOf, liveBreakers } from '../live-breakers.js';
import { CircuitState } from '../state.js';
import type { WindowRates } from '../window/window-rates.js';

/** Every top-level state, in the order the metrics list them. */
export const STATES: readonly CircuitState[] = Object.values(CircuitState);

/** How many live breakers of one name are in each state, and how many are degraded. */
export interface NameStates {
  readonly name: string;
  readonly states: Record<CircuitState, number>;
  degraded: number;
  /**
   * The fleet's failure rate over the window (percent, -1 below `minimumCalls`); `undefined`
   * without a failure-rate rule. Of the breaker of this name whose window holds most calls.
   */
  failureRate: number | undefined;
  /** The same for the slow-call rate; `undefined` without a slow-call rule. */
  slowCallRate: number | undefined;
  /** Calls in the window the rates come from (-1 before any breaker of the name has one). */
  rateCalls: number;
}

/**
 * The live breakers' states, by name, read now. Usually one breaker per name, so each count is
 * 1 or 0; breakers of one name on different stores are each counted.
 */
export function liveStates(): Map<string, NameStates> {
  const byName = new Map<string, NameStates>();
  for (const breaker of liveBreakers()) {
    let entry = byName.get(breaker.name);
    if (entry === undefined) {
      entry = {
        name: breaker.name,
        states: { closed: 0, open: 0, halfOpen: 0, forcedOpen: 0, disabled: 0 },
        degraded: 0,
        failureRate: undefined,
        slowCallRate: undefined,
        rateCalls: -1,
      };
      byName.set(breaker.name, entry);
    }
    entry.states[heardStateOf(breaker)]++;
    if (breaker.degraded) entry.degraded++;
    const rates = breaker.rates;
    if (rates !== undefined && rates.calls > entry.rateCalls)
      useRates(entry, rates, breaker.config);
  }
  return byName;
}

function useRates(
  entry: NameStates,
  rates: WindowRates,
  config: { failureRateThreshold?: number; slowCallRateThreshold?: number },
): void {
  entry.rateCalls = rates.calls;
  entry.failureRate = config.failureRateThreshold === undefined ? undefined : rates.failureRate;
  entry.slowCallRate = config.slowCallRateThreshold === undefined ? undefined : rates.slowCallRate;
}
