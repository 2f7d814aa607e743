import {
  type BreakerConfig,
  openDurationOf,
  type TransitionReason,
  type WindowCounts,
} from '../machine.js';
import { type CircuitState, topLevelState } from '../state.js';
import type { StoredRecord } from '../stores/store.js';

export { escapeText } from '../escape-text.js';

/** A breaker as its stored record shows it: what operator tools list and show. */
export interface BreakerInfo {
  readonly name: string;
  readonly corrupt: false;
  /** The top-level state. */
  readonly state: CircuitState;
  /** The statechart's state down to its leaf, e.g. `halfOpen.probing`. */
  readonly stateValue: string;
  /** Why the circuit last changed its top-level state. */
  readonly reason: TransitionReason;
  /** Consecutive counted failures while closed. */
  readonly failures: number;
  /** Probe successes in the current half-open round. */
  readonly successes: number;
  /** When the circuit last opened, epoch ms on the store's clock; `null` if it never did. */
  readonly openedAt: number | null;
  /**
   * For an open circuit, ms until it may half-open (`openedAt + openDuration - now` on the
   * store's clock, at least 0); `null` in every other state.
   */
  readonly retryAfterMs: number | null;
  /**
   * How long the circuit stays open before it may half-open, in ms: `resetTimeout`, grown by
   * `backoff` on reopens, or an upstream's retry-after.
   */
  readonly openDurationMs: number;
  /** Probes in flight (half-open). */
  readonly probes: number;
  /** Increments on every change of top-level state. */
  readonly generation: number;
  /** The record's version. */
  readonly version: number;
  /** The id of the write that made the record. */
  readonly writeId: string | undefined;
  /** The configuration the record was written under: the fleet's. */
  readonly config: BreakerConfig;
  /** The stored record as it is. */
  readonly record: StoredRecord;
}

/** A breaker whose stored record cannot be restored; its breakers read it as absent. */
export interface CorruptBreaker {
  readonly name: string;
  readonly corrupt: true;
  /** What is wrong with it. */
  readonly problem: string;
  /** The key to blame (a Redis key), when the store knows. */
  readonly key: string | undefined;
  /** The version compare-and-set compares with (0 when the version itself is unreadable). */
  readonly version: number;
}

/** One breaker in a listing: readable, or corrupt. */
export type BreakerListing = BreakerInfo | CorruptBreaker;

function leafOf(value: StoredRecord['snapshot']['value']): string {
  if (typeof value === 'string') return value;
  const [parent, child] = Object.entries(value)[0] ?? ['', ''];
  return typeof child === 'string' ? `${parent}.${child}` : parent;
}

/** `record` of breaker `name` seen at `now` (ms on the store's clock). */
export function describeRecord(name: string, record: StoredRecord, now: number): BreakerInfo {
  const { snapshot, version } = record;
  const { context } = snapshot;
  const state = topLevelState(snapshot.value);
  const retryAfterMs =
    state === 'open' && context.openedAt !== null
      ? Math.max(0, context.openedAt + openDurationOf(context) - now)
      : null;
  return {
    name,
    corrupt: false,
    state,
    stateValue: leafOf(snapshot.value),
    reason: context.reason,
    failures: context.failures,
    successes: context.successes,
    openedAt: context.openedAt,
    retryAfterMs,
    openDurationMs: openDurationOf(context),
    probes: Object.keys(context.probes).length,
    generation: context.generation,
    version,
    writeId: snapshot.writeId,
    config: context.config,
    record,
  };
}

/**
 * "No limit" as operator tools write and read it in JSON (the CLI's `--json` and `--create`, the
 * dashboard's API and tiles): the string `"Infinity"`. JSON has no Infinity (`JSON.stringify`
 * writes `null`, which reads as "unset"); `failMax: Infinity` turns the consecutive rule off.
 */
export const NO_LIMIT = 'Infinity';

/** A `JSON.stringify` replacer that writes Infinity as {@link NO_LIMIT}. */
export function writeNoLimit(_key: string, value: unknown): unknown {
  return value === Number.POSITIVE_INFINITY ? NO_LIMIT : value;
}

/** A `JSON.parse` reviver that reads {@link NO_LIMIT} as Infinity. */
export function readNoLimit(_key: string, value: unknown): unknown {
  return value === NO_LIMIT ? Number.POSITIVE_INFINITY : value;
}

/**
 * A breaker's fleet-wide rates over its window, as its rate rules judge them: percent of the
 * counted calls, or -1 while the window holds fewer than `minimumCalls` (the rule cannot trip
 * yet; resilience4j's convention). `null` for a rule the breaker does not have.
 */
export interface FleetRates {
  /** Counted calls in the window, fleet-wide. */
  readonly calls: number;
  readonly minimumCalls: number;
  readonly failureRate: number | null;
  readonly slowCallRate: number | null;
}

/** Whether `config` has a rate rule (failure rate or slow-call rate). */
export function hasRateRule(config: BreakerConfig): boolean {
  return config.failureRateThreshold !== undefined || config.slowCallRateThreshold !== undefined;
}

/** The rates `counts` (the fleet's window totals) make under `config`'s rules. */
export function fleetRates(config: BreakerConfig, counts: WindowCounts): FleetRates {
  // As the machine's guards count: a rule may trip from minimumCalls counted calls on.
  const minimumCalls = config.minimumCalls ?? 1;
  const rate = (part: number) =>
    counts.calls >= minimumCalls && counts.calls > 0 ? (part * 100) / counts.calls : -1;
  return {
    calls: counts.calls,
    minimumCalls,
    failureRate: config.failureRateThreshold === undefined ? null : rate(counts.failures),
    slowCallRate: config.slowCallRateThreshold === undefined ? null : rate(counts.slow),
  };
}
