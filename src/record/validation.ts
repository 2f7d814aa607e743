import type { BreakerContext, TransitionReason } from '../machine.js';
import { breakerMachine, SCHEMA_VERSION } from '../machine.js';
import { configProblem, isPlainObject } from './config.js';
import { isVersion, MAX_VERSION } from './order.js';
import type { PersistedBreakerSnapshot, StoredRecord } from './shape.js';

const LEAF_STATES = new Set(
  Object.keys(breakerMachine.root.states).flatMap((name) => {
    const child = breakerMachine.root.states[name];
    const nested = child ? Object.keys(child.states) : [];
    return nested.length === 0 ? [name] : nested.map((leaf) => `${name}.${leaf}`);
  }),
);

function leafOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const entries = Object.entries(value);
  if (entries.length !== 1) return undefined;
  const [parent, child] = entries[0] as [string, unknown];
  return typeof child === 'string' ? `${parent}.${child}` : undefined;
}

// Every reason the statechart gives, checked against the type both ways: a reason added to the
// machine and not here, or one here the machine never gives, does not compile.
const REASONS: Readonly<Record<TransitionReason, true>> = {
  init: true,
  failMaxReached: true,
  failureRateReached: true,
  slowCallRateReached: true,
  retryAfter: true,
  resetTimeoutElapsed: true,
  successThresholdReached: true,
  probeFailed: true,
  probeLeaseExpired: true,
  panicProbe: true,
  forcedOpen: true,
  disabled: true,
  reset: true,
};

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

function contextProblem(context: unknown): string | undefined {
  if (context === null || typeof context !== 'object') return 'context is missing';
  const c = context as Record<string, unknown>;
  for (const key of ['failures', 'successes', 'generation'] as const) {
    if (!isCount(c[key])) return `context.${key} is ${JSON.stringify(c[key])}`;
  }
  if (c.openedAt !== null && (typeof c.openedAt !== 'number' || !Number.isFinite(c.openedAt))) {
    return `context.openedAt is ${JSON.stringify(c.openedAt)}`;
  }
  if (c.probes === null || typeof c.probes !== 'object' || Array.isArray(c.probes)) {
    return 'context.probes is not an object';
  }
  for (const [id, until] of Object.entries(c.probes)) {
    if (typeof until !== 'number' || !Number.isFinite(until)) {
      return `probe ${JSON.stringify(id)} has lease ${JSON.stringify(until)}`;
    }
  }
  if (typeof c.reason !== 'string' || !Object.hasOwn(REASONS, c.reason)) {
    return `context.reason is ${JSON.stringify(c.reason)}`;
  }
  if (
    c.openDuration !== undefined &&
    (typeof c.openDuration !== 'number' || !Number.isFinite(c.openDuration) || c.openDuration <= 0)
  ) {
    return `context.openDuration is ${JSON.stringify(c.openDuration)}`;
  }
  if (
    c.streak !== undefined &&
    !(Array.isArray(c.streak) && c.streak.every((id) => typeof id === 'string'))
  ) {
    return `context.streak is ${JSON.stringify(c.streak)}`;
  }
  return configProblem(c.config);
}

// What the statechart itself guarantees of every snapshot it makes: a record that breaks one of
// these was not written by this statechart, and restoring it could wedge the breaker (a lease
// held in `halfOpen.waiting` runs no lease timer, so it would reject every call for ever).
function invariantProblem(leaf: string, context: BreakerContext): string | undefined {
  const { config, failures, successes, openedAt, probes } = context;
  let probeCount = 0;
  for (const _ in probes) probeCount++;
  if (leaf === 'halfOpen.probing') {
    if (probeCount === 0 || probeCount > config.halfOpenMaxCalls) {
      return `${probeCount} probes in halfOpen.probing, halfOpenMaxCalls is ${config.halfOpenMaxCalls}`;
    }
  } else if (probeCount > 0) {
    return `${probeCount} probe leases in ${leaf}, where the statechart holds none`;
  }
  if (leaf === 'closed' ? failures >= config.failMax : failures !== 0) {
    return `${failures} failures in ${leaf} with failMax ${config.failMax}`;
  }
  if (leaf.startsWith('halfOpen') ? successes >= config.successThreshold : successes !== 0) {
    return `${successes} successes in ${leaf} with successThreshold ${config.successThreshold}`;
  }
  if (leaf === 'open' && openedAt === null) return 'open with no openedAt';
  const streak = context.streak?.length ?? 0;
  if (streak > (config.quorum ?? 1) || (leaf !== 'closed' && streak > 0)) {
    return `${streak} instances in the streak in ${leaf} with quorum ${config.quorum ?? 1}`;
  }
  return undefined;
}

/**
 * What is wrong with a value meant to be a persisted breaker snapshot, or `undefined` when it
 * is one this version of the statechart can restore: the schema, the state, the context's
 * types, and the statechart's invariants (probes only in `halfOpen.probing` and at most
 * `halfOpenMaxCalls`, counters below their thresholds, `openedAt` set when open).
 */
export function snapshotProblem(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return 'the snapshot is not an object';
  const snapshot = value as Record<string, unknown>;
  if (snapshot.schema !== SCHEMA_VERSION) {
    return `schema version ${JSON.stringify(snapshot.schema)}, this statebreaker reads ${SCHEMA_VERSION}`;
  }
  if (snapshot.status !== 'active') return `status is ${JSON.stringify(snapshot.status)}`;
  const leaf = leafOf(snapshot.value);
  if (leaf === undefined || !LEAF_STATES.has(leaf)) {
    return `the state ${JSON.stringify(snapshot.value)} is not a state of the statechart`;
  }
  // XState restores `children` without a check (a missing one throws from the actor), and this
  // statechart spawns no child actor: an empty object is the only valid value.
  const { children, historyValue } = snapshot;
  if (!isPlainObject(children) || Object.keys(children).length > 0) {
    return `children is ${JSON.stringify(children)}, the statechart runs no child actors`;
  }
  if (historyValue !== undefined && !isPlainObject(historyValue)) {
    return `historyValue is ${JSON.stringify(historyValue)}`;
  }
  if (snapshot.writeId !== undefined && typeof snapshot.writeId !== 'string') {
    return `writeId is ${JSON.stringify(snapshot.writeId)}`;
  }
  if (snapshot.lineage !== undefined && typeof snapshot.lineage !== 'string') {
    return `lineage is ${JSON.stringify(snapshot.lineage)}`;
  }
  if (snapshot.origin !== undefined && typeof snapshot.origin !== 'string') {
    return `origin is ${JSON.stringify(snapshot.origin)}`;
  }
  return (
    contextProblem(snapshot.context) ?? invariantProblem(leaf, snapshot.context as BreakerContext)
  );
}

/** What is wrong with a record: its version (see `isVersion`), then its snapshot. */
export function recordProblem(record: StoredRecord): string | undefined {
  if (!isVersion(record.version)) {
    return `version ${JSON.stringify(record.version)} is not a version (a whole number from 1 to below ${MAX_VERSION})`;
  }
  return snapshotProblem(record.snapshot);
}

/**
 * A stored version's text as a version: a whole number from 1 to below `MAX_VERSION`, written in
 * decimal digits; `null` for anything else (a store's compare-and-set reads it as no record, so
 * that the next write replaces it).
 */
export function parseVersion(text: string): number | null {
  if (!/^[0-9]+$/.test(text)) return null;
  const version = Number(text);
  return isVersion(version) ? version : null;
}

// JSON has no Infinity: `failMax: Infinity` (the consecutive rule off) is written as null.
function revive(key: string, value: unknown): unknown {
  return key === 'failMax' && value === null ? Number.POSITIVE_INFINITY : value;
}

/** A snapshot as stores keep it: JSON, with `failMax: Infinity` written as `null`. */
export function encodeSnapshot(snapshot: PersistedBreakerSnapshot): string {
  return JSON.stringify(snapshot);
}

/**
 * A stored snapshot's JSON decoded and checked ({@link snapshotProblem}): the snapshot, or what
 * is wrong with it.
 */
export function decodeSnapshot(
  json: string,
): { readonly snapshot: PersistedBreakerSnapshot } | { readonly problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(json, revive);
  } catch (error) {
    return { problem: `not JSON (${(error as Error).message})` };
  }
  const problem = snapshotProblem(value);
  return problem === undefined ? { snapshot: value as PersistedBreakerSnapshot } : { problem };
}
