import type { BreakerConfig, BreakerContext } from './machine.js';
import { breakerMachine, SCHEMA_VERSION } from './machine.js';
import type { PersistedBreakerSnapshot } from './stores/store.js';

/** A stored record that cannot be used: bad JSON, another schema, an unknown state. */
export class CorruptRecordError extends Error {
  override readonly name = 'CorruptRecordError';
  /** The breaker's name. */
  readonly breaker: string;
  /** Where the record lives (a Redis key), when the store knows. */
  readonly key: string | undefined;
  /** What is wrong with it, e.g. `not JSON (...)`. */
  readonly problem: string;

  constructor(breaker: string, problem: string, key?: string) {
    super(`corrupt record for breaker "${breaker}"${key ? ` at ${key}` : ''}: ${problem}`);
    this.breaker = breaker;
    this.key = key;
    this.problem = problem;
  }
}

/** Instances of one name configured differently; the local configuration governs locally. */
export class ConfigMismatchError extends Error {
  override readonly name = 'ConfigMismatchError';
  /** The breaker's name. */
  readonly breaker: string;
  /** The options that differ, as `name (local vs stored)`. */
  readonly differences: readonly string[];

  constructor(breaker: string, differences: readonly string[]) {
    super(
      `breaker "${breaker}" is configured differently on another instance: ${differences.join(', ')}`,
    );
    this.breaker = breaker;
    this.differences = differences;
  }
}

const CONFIG_KEYS = [
  'failMax',
  'resetTimeout',
  'successThreshold',
  'halfOpenMaxCalls',
  'probeLease',
] as const satisfies readonly (keyof BreakerConfig)[];

// Set only when the policy is on; part of the shared configuration like the others, since the
// statechart decides with them.
const POLICY_KEYS = [
  'window',
  'minimumCalls',
  'failureRateThreshold',
  'slowCallDuration',
  'slowCallRateThreshold',
  'backoffMultiplier',
  'backoffMax',
  'retryAfterFloor',
  'quorum',
] as const satisfies readonly (keyof BreakerConfig)[];

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

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

function configProblem(config: unknown): string | undefined {
  if (config === null || typeof config !== 'object') return 'context.config is missing';
  const record = config as Record<string, unknown>;
  for (const key of CONFIG_KEYS) {
    const value = record[key];
    // failMax Infinity (the consecutive rule off) is the one threshold that may be infinite.
    const infinite = key === 'failMax' && value === Number.POSITIVE_INFINITY;
    if (typeof value !== 'number' || !(Number.isFinite(value) || infinite) || value <= 0) {
      return `context.config.${key} is ${JSON.stringify(value)}`;
    }
  }
  for (const key of POLICY_KEYS) {
    const value = record[key];
    if (
      value !== undefined &&
      (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
    ) {
      return `context.config.${key} is ${JSON.stringify(value)}`;
    }
  }
  return undefined;
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
  if (typeof c.reason !== 'string') return 'context.reason is missing';
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

/**
 * The configuration a stored value holds in `context.config`, when it is a valid one, even if
 * the rest of the snapshot is not: what an operator's reset of a corrupt record keeps.
 */
export function recoverConfig(snapshot: unknown): BreakerConfig | undefined {
  if (!isPlainObject(snapshot) || !isPlainObject(snapshot.context)) return undefined;
  const { config } = snapshot.context;
  if (configProblem(config) !== undefined) return undefined;
  const valid = config as Record<string, number | undefined>;
  // Policies are stored only when on: an unset one stays unset.
  return Object.fromEntries(
    [...CONFIG_KEYS, ...POLICY_KEYS].flatMap((key) =>
      valid[key] === undefined ? [] : [[key, valid[key]]],
    ),
  ) as unknown as BreakerConfig;
}

/** The options of `stored` that differ from `local`, as `name (local vs stored)`. */
export function configDifferences(local: BreakerConfig, stored: BreakerConfig): string[] {
  return [...CONFIG_KEYS, ...POLICY_KEYS]
    .filter((key) => local[key] !== stored[key])
    .map((key) => `${key} (${local[key] ?? 'unset'} vs ${stored[key] ?? 'unset'})`);
}

/** `snapshot` with its configuration replaced by `config`. */
export function withConfig(
  snapshot: PersistedBreakerSnapshot,
  config: BreakerConfig,
): PersistedBreakerSnapshot {
  const context: BreakerContext = { ...snapshot.context, config };
  return { ...snapshot, context };
}
