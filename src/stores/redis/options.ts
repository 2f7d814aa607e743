import { checkDuration, describeValue } from '../../validate.js';
import { DEFAULT_PREFIX } from './keys.js';
import type { PubsubChoice } from './publication.js';

/** Options of {@link RedisStore}; every one is optional. */
export interface RedisStoreOptions {
  /**
   * Prefix of every key and of the change channel. Default `circuit_breaker:`, giving keys
   * such as `circuit_breaker:{openai}:state`. Must not contain `{` or `}` (the hash tag is
   * the name's).
   */
  prefix?: string;
  /**
   * Milliseconds any store call may take before it rejects with `RedisStoreTimeoutError`.
   * Default 500: a loopback or LAN round trip takes well under a millisecond, so 500 ms
   * rides out a GC pause or a brief reconnect, yet bounds what a half-open caller (the only
   * caller that waits for Redis) can lose when Redis is gone; the breaker then decides locally.
   */
  timeout?: number;
  /**
   * Milliseconds between checks for lost change messages. Default 10 000. On standalone Redis
   * a check is one GET of the change counter, however many breakers the store follows; a gap
   * (or a counter that moved without a message) starts a resync, which compares the stored
   * version of every followed record with what its breakers hold and reads only those that
   * differ. A subscriber that reconnects resyncs at once, and any write also heals (it
   * conflicts and adopts). On a Cluster, and under sharded pub/sub, every check is a resync.
   */
  resyncInterval?: number;
  /**
   * Milliseconds between full resyncs whatever the change counter says, which find a record
   * that lost one of its keys on its own (evicted or expired) while nobody wrote it. Default
   * 300 000. Any write to the record finds it at once.
   */
  auditInterval?: number;
  /** Milliseconds between readings of Redis server time. Default 60 000. */
  clockSyncInterval?: number;
  /**
   * Milliseconds the subscriber connection stays open after the last breaker stops following
   * a record, so that breakers created and disposed one after another share one. Default 5 000.
   */
  subscriberIdleTimeout?: number;
  /**
   * A transition that every instance's own timer makes at once (open to half-open, an expired
   * probe lease) is written by the instance that wrote the record being left; the others wait
   * between this many milliseconds and twice that, and adopt its record when it arrives (they
   * write it themselves only if it does not, e.g. when that instance is gone). Default 50;
   * 0 lets every instance write at once.
   */
  timedWriteSpread?: number;
  /**
   * Milliseconds after its last write that the keys of an idle breaker (closed, no failure
   * counted) expire, all together; unset (the default): never. For breakers with dynamic names
   * (per tenant, per model), whose keys would otherwise pile up. Every write renews it, and a
   * record in any other state (open, half-open, forced open, disabled, or closed with failures
   * counted) never expires. An idle record is worth no more than none: instances that held one
   * that expired carry on as if none had been written, and a record written since is adopted
   * whatever its version. Give every store of a prefix the same value. A whole number from
   * 1 000 (a second: shorter would let a record expire while its change message is still on its
   * way) to 31 536 000 000 (a year).
   */
  recordTtl?: number;
  /**
   * How change messages travel. `'sharded'`: SPUBLISH on each breaker's own channel
   * (`${prefix}{name}:changes`, in the slot of its keys), heard with SSUBSCRIBE, so that on a
   * Cluster a change travels only inside its shard and a store hears only the breakers it
   * follows. `'classic'`: PUBLISH on `${prefix}changes`, which a Cluster broadcasts to every
   * node; on standalone Redis these messages are numbered, so one GET finds a lost one.
   * `'auto'` (default): sharded on a Cluster, classic on standalone Redis. Sharded needs
   * SPUBLISH (Redis 7 or later; the store asks once; without it the store uses classic) and, on
   * a Cluster, a client with per-shard subscribers (ioredis 5.5 or later, node-redis): a Cluster
   * client without them (iovalkey 0.4, an older ioredis) uses classic under `'auto'` and warns
   * once, and is refused under `'sharded'`; every store of its fleet must then say `'classic'`
   * (see docs/redis-clients.md).
   */
  pubsub?: PubsubChoice;
  /**
   * This host's wall clock, used only as the starting point before Redis time is read and to
   * notice that the clock stepped. Default `Date.now`; tests inject a skewed or stepping one.
   */
  hostNow?: () => number;
}

/** Options after defaults and validation. */
export interface ResolvedRedisStoreOptions {
  readonly prefix: string;
  readonly timeout: number;
  readonly resyncInterval: number;
  readonly auditInterval: number;
  readonly clockSyncInterval: number;
  readonly subscriberIdleTimeout: number;
  readonly timedWriteSpread: number;
  readonly recordTtl: number | undefined;
  readonly pubsub: PubsubChoice;
  readonly hostNow: () => number;
}

/** Defaults of {@link RedisStoreOptions}. */
export const REDIS_STORE_DEFAULTS = {
  prefix: DEFAULT_PREFIX,
  timeout: 500,
  resyncInterval: 10_000,
  auditInterval: 300_000,
  clockSyncInterval: 60_000,
  subscriberIdleTimeout: 5_000,
  timedWriteSpread: 50,
  pubsub: 'auto',
} as const;

const KNOWN = new Set([
  'prefix',
  'timeout',
  'resyncInterval',
  'auditInterval',
  'clockSyncInterval',
  'subscriberIdleTimeout',
  'timedWriteSpread',
  'recordTtl',
  'pubsub',
  'hostNow',
]);

/** The shortest and longest `recordTtl`, in ms: a second and a year. */
export const RECORD_TTL_RANGE = { min: 1_000, max: 31_536_000_000 } as const;

function duration(name: string, value: unknown, fallback: number): number {
  return value === undefined ? fallback : checkDuration(`RedisStore option ${name}`, value);
}

// 0 is allowed here, unlike the other delays: it turns spreading off.
function spread(value: unknown): number {
  if (value === undefined) return REDIS_STORE_DEFAULTS.timedWriteSpread;
  return value === 0 ? 0 : checkDuration('RedisStore option timedWriteSpread', value);
}

function recordTtl(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number') {
    throw new TypeError(
      `RedisStore option recordTtl must be a number of milliseconds, got ${describeValue(value)}`,
    );
  }
  const { min, max } = RECORD_TTL_RANGE;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `RedisStore option recordTtl must be a whole number of milliseconds from ${min} to ${max}, got ${describeValue(value)}`,
    );
  }
  return value;
}

/**
 * Applies defaults and validates the options of a `RedisStore`.
 * @throws TypeError or RangeError naming the option and the value.
 */
export function resolveRedisStoreOptions(options: unknown): ResolvedRedisStoreOptions {
  if (options === undefined) options = {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`RedisStore options must be an object, got ${describeValue(options)}`);
  }
  const given = options as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!KNOWN.has(key)) throw new TypeError(`unknown RedisStore option ${JSON.stringify(key)}`);
  }
  const prefix = given.prefix ?? REDIS_STORE_DEFAULTS.prefix;
  if (typeof prefix !== 'string') {
    throw new TypeError(`RedisStore option prefix must be a string, got ${describeValue(prefix)}`);
  }
  if (/[{}]/.test(prefix)) {
    throw new RangeError(
      `RedisStore option prefix must not contain "{" or "}" (the hash tag is the breaker name's), got ${describeValue(prefix)}`,
    );
  }
  const pubsub = given.pubsub ?? REDIS_STORE_DEFAULTS.pubsub;
  if (pubsub !== 'auto' && pubsub !== 'sharded' && pubsub !== 'classic') {
    throw new RangeError(
      `RedisStore option pubsub must be 'auto', 'sharded' or 'classic', got ${describeValue(pubsub)}`,
    );
  }
  const hostNow = given.hostNow ?? Date.now;
  if (typeof hostNow !== 'function') {
    throw new TypeError(
      `RedisStore option hostNow must be a function, got ${describeValue(hostNow)}`,
    );
  }
  return {
    prefix,
    timeout: duration('timeout', given.timeout, REDIS_STORE_DEFAULTS.timeout),
    resyncInterval: duration(
      'resyncInterval',
      given.resyncInterval,
      REDIS_STORE_DEFAULTS.resyncInterval,
    ),
    auditInterval: duration(
      'auditInterval',
      given.auditInterval,
      REDIS_STORE_DEFAULTS.auditInterval,
    ),
    clockSyncInterval: duration(
      'clockSyncInterval',
      given.clockSyncInterval,
      REDIS_STORE_DEFAULTS.clockSyncInterval,
    ),
    subscriberIdleTimeout: duration(
      'subscriberIdleTimeout',
      given.subscriberIdleTimeout,
      REDIS_STORE_DEFAULTS.subscriberIdleTimeout,
    ),
    timedWriteSpread: spread(given.timedWriteSpread),
    recordTtl: recordTtl(given.recordTtl),
    pubsub,
    hostNow: hostNow as () => number,
  };
}
