import type { BreakerConfig, BreakerContext } from '../machine.js';
import type { PersistedBreakerSnapshot } from './shape.js';

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

/**
 * Every field of the shared configuration (`context.config`): what a record carries, what
 * instances compare, and what an operator's `create` takes.
 */
export const SHARED_CONFIG_KEYS = [...CONFIG_KEYS, ...POLICY_KEYS] as const;

/** A field of the shared configuration. */
export type SharedConfigKey = (typeof SHARED_CONFIG_KEYS)[number];

// A field added to BreakerConfig and not to the lists above would be neither stored, compared
// nor accepted by `create`: this does not compile then.
const everyField: Exclude<keyof BreakerConfig, SharedConfigKey> extends never ? true : never = true;
void everyField;

/** Whether `value` is an object that is not an array (JSON's `{...}`). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** What is wrong with a stored `context.config`, or `undefined` when it is a valid one. */
export function configProblem(config: unknown): string | undefined {
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
