import type { StateValue } from 'xstate';

/** The breaker's top-level state; the values are the statechart's state names. */
export const CircuitState = {
  CLOSED: 'closed',
  OPEN: 'open',
  HALF_OPEN: 'halfOpen',
  FORCED_OPEN: 'forcedOpen',
  DISABLED: 'disabled',
} as const;

/** One of the values of {@link CircuitState}. */
export type CircuitState = (typeof CircuitState)[keyof typeof CircuitState];

const STATES = new Set<string>(Object.values(CircuitState));

/** Whether a string names a top-level state of the statechart. */
export function isCircuitState(value: unknown): value is CircuitState {
  return typeof value === 'string' && STATES.has(value);
}

/** The top-level state of a statechart state value (`{ halfOpen: 'probing' }` → `halfOpen`). */
export function topLevelState(value: StateValue): CircuitState {
  const name = typeof value === 'string' ? value : Object.keys(value)[0];
  if (!isCircuitState(name)) throw new TypeError(`unknown breaker state ${JSON.stringify(value)}`);
  return name;
}
