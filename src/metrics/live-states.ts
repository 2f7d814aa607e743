import { heardStateOf, liveBreakers } from '../live-breakers.js';
import { CircuitState } from '../state.js';

/** Every top-level state, in the order the metrics list them. */
export const STATES: readonly CircuitState[] = Object.values(CircuitState);

/** How many live breakers of one name are in each state, and how many are degraded. */
export interface NameStates {
  readonly name: string;
  readonly states: Record<CircuitState, number>;
  degraded: number;
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
      };
      byName.set(breaker.name, entry);
    }
    entry.states[heardStateOf(breaker)]++;
    if (breaker.degraded) entry.degraded++;
  }
  return byName;
}
