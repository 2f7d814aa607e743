import type { BreakerConfig, BreakerEvent } from '../machine.js';
import { checkName } from '../name.js';
import { type BreakerOptions, resolveOptions } from '../options.js';
import { recoverConfig, SHARED_CONFIG_KEYS, type SharedConfigKey } from '../record/config.js';
import { CorruptRecordError } from '../record/errors.js';
import { versionAbove } from '../record/order.js';
import type { StoredRecord } from '../record/shape.js';
import type { CircuitState } from '../state.js';
import type { BreakerStore, RecordEntry } from '../stores/store.js';
import { describeValue } from '../validate.js';
import { applyEvent, initialSnapshot, operatorRecord, operatorWriteId } from './apply.js';
import { BreakerNotFoundError, OperatorConflictError } from './errors.js';
import { checkedEntry, checkStore, readEntry } from './read.js';
import { type BreakerInfo, describeRecord } from './view.js';

/** The operator actions, by the statechart event each sends. */
export type OperatorAction = 'forceOpen' | 'disable' | 'reset';

const EVENTS = {
  forceOpen: 'FORCE_OPEN',
  disable: 'DISABLE',
  reset: 'RESET',
} as const satisfies Record<OperatorAction, BreakerEvent['type']>;

/**
 * The options that make a breaker's configuration, as {@link CreateOptions} takes them: every
 * field of the shared configuration (what `list --json` and `show --json` print as `config`,
 * `backoffMultiplier` and `backoffMax` included), and the breaker options `timeout` (which sets
 * the probe lease) and `backoff` (the same two fields as one option).
 */
export type ConfigOptions = Pick<BreakerOptions, 'timeout' | 'backoff'> & {
  readonly [K in SharedConfigKey]?: BreakerConfig[K];
};

/** Options of {@link forceOpen} and {@link disable}. */
export interface CreateOptions {
  /**
   * When the store holds no record of the breaker (one that never failed has none), create it
   * under the configuration these options make: the options the fleet's breakers are created
   * with (`{}` for the defaults). A different configuration would be reported by every instance
   * as a `ConfigMismatchError`. Without it, a missing record is a `BreakerNotFoundError`.
   */
  create?: ConfigOptions;
}

/** What an operator action did. */
export interface OperatorResult {
  /** The breaker as the store holds it now. */
  readonly breaker: BreakerInfo;
  /** The top-level state before; `null` when there was no readable record. */
  readonly from: CircuitState | null;
  /** Whether a record was written: `false` when the breaker was already there. */
  readonly changed: boolean;
}

// Conflicts are another writer's change: the action is applied again to the record that won.
// The operator's write carries a fence, so a store that supports it (Redis) holds the fleet's
// writes back after the first conflict and the second write lands. A store that does not, or
// another operator's fence, may take longer: the action gives up only after this much time.
const GIVE_UP_MS = 30_000;

// Derived from the record's own list, so that what `create` takes cannot drift from what a
// record holds.
const CONFIG_OPTIONS: ReadonlySet<string> = new Set<string>([
  ...SHARED_CONFIG_KEYS,
  'timeout',
  'backoff',
]);

/**
 * The configuration `options.create` makes, checked as {@link forceOpen} checks it (`undefined`
 * without one), so that a caller can refuse bad options before it reads the store.
 * @throws TypeError or RangeError naming the option and the value.
 */
export function createConfig(who: string, options: unknown): BreakerConfig | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${who}: options must be an object, got ${describeValue(options)}`);
  }
  const { create } = options as CreateOptions;
  if (create === undefined) return undefined;
  if (create === null || typeof create !== 'object' || Array.isArray(create)) {
    throw new TypeError(`${who}: option create must be an object, got ${describeValue(create)}`);
  }
  for (const key of Object.keys(create)) {
    if (!CONFIG_OPTIONS.has(key)) {
      throw new TypeError(
        `${who}: option create takes the configuration options (${[...CONFIG_OPTIONS].join(', ')}), got ${JSON.stringify(key)}`,
      );
    }
  }
  const { backoffMultiplier, backoffMax, ...rest } = create;
  const flat = [
    ...(backoffMultiplier === undefined ? [] : ['backoffMultiplier']),
    ...(backoffMax === undefined ? [] : ['backoffMax']),
  ];
  if (flat.length === 0) return resolveOptions(create).config;
  if (rest.backoff !== undefined) {
    throw new TypeError(
      `${who}: option create takes backoff or backoffMultiplier and backoffMax, not both, got backoff and ${flat.join(' and ')}`,
    );
  }
  if (flat.length === 1) {
    throw new TypeError(
      `${who}: option create takes backoffMultiplier and backoffMax together (the backoff option), got only ${flat[0]}`,
    );
  }
  return resolveOptions({ ...rest, backoff: { multiplier: backoffMultiplier, max: backoffMax } })
    .config;
}

/** The write an action makes on what the store holds, or the breaker when it has nothing to do. */
type Plan =
  | {
      readonly record: StoredRecord;
      readonly expectedVersion: number;
      readonly expectedWriteId: string | undefined;
      readonly from: CircuitState | null;
    }
  | { readonly unchanged: StoredRecord };

function plan(
  name: string,
  action: OperatorAction,
  entry: RecordEntry | null,
  create: BreakerConfig | undefined,
  now: number,
): Plan {
  const event = { type: EVENTS[action], at: now } as BreakerEvent;
  if (entry === null) {
    if (create === undefined || action === 'reset') throw new BreakerNotFoundError(name);
    const snapshot = applyEvent(initialSnapshot(create), event);
    if (snapshot === null) throw new BreakerNotFoundError(name);
    return {
      record: operatorRecord(null, snapshot, 1),
      expectedVersion: 0,
      expectedWriteId: undefined,
      from: null,
    };
  }
  if (entry.record === null) return planOverCorrupt(name, action, entry, now);
  const base = entry.record;
  const snapshot = applyEvent(base.snapshot, event);
  if (snapshot === null) return { unchanged: base };
  return {
    record: operatorRecord(base, snapshot, base.version + 1),
    expectedVersion: base.version,
    expectedWriteId: base.snapshot.writeId,
    from: describeRecord(name, base, now).state,
  };
}

// Only a reset replaces a corrupt record: it needs nothing of the old state but the fleet's
// configuration, which a snapshot garbled elsewhere may still hold. Forcing open or disabling
// would have to guess the state it leaves.
function planOverCorrupt(
  name: string,
  action: OperatorAction,
  entry: Extract<RecordEntry, { record: null }>,
  now: number,
): Plan {
  if (action !== 'reset') {
    throw new CorruptRecordError(
      name,
      `${entry.problem} (only a reset replaces a corrupt record)`,
      entry.key,
    );
  }
  const config = recoverConfig(entry.snapshot);
  if (config === undefined) {
    throw new CorruptRecordError(
      name,
      `${entry.problem}; its configuration cannot be read either, so a reset cannot rebuild it (delete its snapshot and version keys: the fleet writes it again at its next change)`,
      entry.key,
    );
  }
  const old = (entry.snapshot as { context?: { generation?: unknown } }).context?.generation;
  const generation = typeof old === 'number' && Number.isInteger(old) && old >= 0 ? old + 1 : 1;
  const initial = initialSnapshot(config);
  const snapshot = { ...initial, context: { ...initial.context, generation, reason: 'reset' } };
  return {
    // Above every version an instance may hold, whatever the stored one says: a reset for the
    // whole fleet must not be ignored as a late message by instances that hold a higher version
    // than a garbled key shows (and written over later with their old state).
    record: operatorRecord(
      null,
      snapshot as typeof initial,
      Math.max(entry.version + 1, versionAbove(now)),
    ),
    expectedVersion: entry.version,
    // A corrupt record's write id is not to be trusted: the version alone is compared.
    expectedWriteId: undefined,
    from: null,
  };
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

async function act(
  who: OperatorAction,
  storeArg: BreakerStore,
  name: string,
  options: unknown,
): Promise<OperatorResult> {
  const store = checkStore(storeArg, who);
  checkName(name, `${who}: breaker name`);
  const create = createConfig(who, options);
  let entry = await readEntry(store, name);
  const fence = operatorWriteId();
  const started = Date.now();
  // After a conflict the store may hold the fleet back for this action: lift that when the
  // action ends without its write (nothing left to do, or an error).
  let fenced = false;
  try {
    for (let attempt = 1; ; attempt++) {
      const now = store.clock.now();
      const next = plan(name, who, entry, create, now);
      if ('unchanged' in next) {
        return {
          breaker: describeRecord(name, next.unchanged, now),
          from: describeRecord(name, next.unchanged, now).state,
          changed: false,
        };
      }
      const result = await store.compareAndSet(
        name,
        next.expectedVersion,
        next.record,
        next.expectedWriteId,
        fence,
      );
      if (result.ok) {
        fenced = false;
        return {
          breaker: describeRecord(name, next.record, store.clock.now()),
          from: next.from,
          changed: true,
        };
      }
      fenced = true;
      if (Date.now() - started >= GIVE_UP_MS) throw new OperatorConflictError(name, attempt);
      // Without a fence (another operator holds it, or the store has none) a busy record may
      // win many rounds: pause a little from the third on, so that the retries do not spin.
      if (attempt > 2) await pause(Math.random() * Math.min(64, 2 ** attempt));
      // The conflict's reply holds the winner when it is readable; otherwise read what is there.
      entry =
        result.current !== null
          ? checkedEntry({ name, record: result.current })
          : await readEntry(store, name);
    }
  } finally {
    if (fenced) await store.liftFence?.(name, fence).catch(() => undefined);
  }
}

/**
 * Forces breaker `name` open for every instance sharing `store`, until a {@link reset}: the
 * statechart's `FORCE_OPEN`, applied to the stored record under the configuration it holds and
 * written with compare-and-set (re-read and applied again on a conflict). Resolves once the
 * store confirmed the write; instances adopt it from the change feed, with no configuration
 * mismatch reported.
 * @throws BreakerNotFoundError when the store holds no record (see {@link CreateOptions.create}).
 * @throws CorruptRecordError when the record cannot be restored (only `reset` replaces one).
 * @throws the store's error when it does not answer (`RedisStoreTimeoutError`); the write may
 * then have landed or not: read the breaker again.
 */
export function forceOpen(
  store: BreakerStore,
  name: string,
  options?: CreateOptions,
): Promise<OperatorResult> {
  return act('forceOpen', store, name, options);
}

/**
 * Disables breaker `name` for every instance sharing `store` (every call goes through, nothing
 * is recorded) until a {@link reset}. Written as {@link forceOpen} is, with the statechart's
 * `DISABLE`.
 */
export function disable(
  store: BreakerStore,
  name: string,
  options?: CreateOptions,
): Promise<OperatorResult> {
  return act('disable', store, name, options);
}

/**
 * Closes breaker `name` and clears its counters for every instance sharing `store`, with the
 * statechart's `RESET`. A corrupt record is replaced by a closed one under the configuration it
 * still holds (a `CorruptRecordError` when even that cannot be read). A closed breaker with no
 * failure counted is left as it is (`changed: false`).
 * @throws BreakerNotFoundError when the store holds no record.
 */
export function reset(store: BreakerStore, name: string): Promise<OperatorResult> {
  return act('reset', store, name, undefined);
}
