import { checkDuration, describeValue } from '../validate.js';
import { DEFAULT_PREFIX } from './redis-keys.js';

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
   * Milliseconds between reloads of every subscribed breaker's record, which heal a change
   * message lost in a disconnect. Default 10 000. Any write also heals (it conflicts and
   * adopts), so this bounds staleness only for instances that write nothing meanwhile.
   */
  resyncInterval?: number;
  /** Milliseconds between measurements of the offset to Redis server time. Default 60 000. */
  clockSyncInterval?: number;
  /**
   * This host's clock, which the server-time offset is measured against. Default `Date.now`;
   * tests inject a skewed one to show that breakers still agree.
   */
  hostNow?: () => number;
}

/** Options after defaults and validation. */
export interface ResolvedRedisStoreOptions {
  readonly prefix: string;
  readonly timeout: number;
  readonly resyncInterval: number;
  readonly clockSyncInterval: number;
  readonly hostNow: () => number;
}

/** Defaults of {@link RedisStoreOptions}. */
export const REDIS_STORE_DEFAULTS = {
  prefix: DEFAULT_PREFIX,
  timeout: 500,
  resyncInterval: 10_000,
  clockSyncInterval: 60_000,
} as const;

const KNOWN = new Set(['prefix', 'timeout', 'resyncInterval', 'clockSyncInterval', 'hostNow']);

function duration(name: string, value: unknown, fallback: number): number {
  return value === undefined ? fallback : checkDuration(`RedisStore option ${name}`, value);
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
    clockSyncInterval: duration(
      'clockSyncInterval',
      given.clockSyncInterval,
      REDIS_STORE_DEFAULTS.clockSyncInterval,
    ),
    hostNow: hostNow as () => number,
  };
}
