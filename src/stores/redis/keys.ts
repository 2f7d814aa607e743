import { checkName } from '../../name.js';

/** The default key prefix, the origin design's: `circuit_breaker:{name}:state` and so on. */
export const DEFAULT_PREFIX = 'circuit_breaker:';

/** The Redis keys of one breaker's record, in the order the compare-and-set script takes them. */
export interface BreakerKeys {
  readonly snapshot: string;
  readonly version: string;
  readonly state: string;
  readonly counter: string;
  readonly openedAt: string;
  /** The write id of the stored snapshot, which compare-and-set compares without decoding JSON. */
  readonly write: string;
}

const ESCAPES: Record<string, string> = { '%': '%25', '{': '%7B', '}': '%7D' };

/**
 * Maps a breaker name into the hash tag of its keys.
 *
 * Only `%`, `{` and `}` are percent-encoded (`%25`, `%7B`, `%7D`); every other character
 * (spaces, colons, newlines, unicode) is kept as is, so keys stay readable with `redis-cli`.
 * - No `}` survives, so the name cannot end the Redis Cluster hash tag early: all of a
 *   breaker's keys hash on the whole encoded name and land in one slot.
 * - Encoding `%` itself makes the mapping injective: `a}` → `a%7D`, `a%7D` → `a%257D`.
 *
 * The keys are `${prefix}{${encodeName(name)}}:${field}`, e.g. `circuit_breaker:{openai}:state`.
 */
export function encodeName(name: string): string {
  return name.replace(/[%{}]/g, (c) => ESCAPES[c] as string);
}

const UNESCAPES: Record<string, string> = { '%25': '%', '%7B': '{', '%7D': '}' };

/**
 * The name {@link encodeName} maps to `encoded`, or `null` when no name maps to it (a `%` that
 * starts none of the three escapes, a raw brace): such keys were not written by this store.
 */
export function decodeName(encoded: string): string | null {
  if (/[{}]/.test(encoded) || /%(?!25|7B|7D)/.test(encoded)) return null;
  return encoded.replace(/%(?:25|7B|7D)/g, (code) => UNESCAPES[code] as string);
}

/**
 * Refuses names a breaker refuses: not a string, empty, longer than `MAX_NAME_LENGTH`, or not
 * well-formed UTF-16 (two names with different lone surrogates would share one key).
 * @throws TypeError or RangeError naming the problem.
 */
export function checkStoreName(name: unknown): string {
  return checkName(name, 'RedisStore: breaker name');
}

/** The store's change counter under `prefix`, which numbers every change message. */
export function sequenceKey(prefix: string): string {
  return `${prefix}seq`;
}

/**
 * The channel of breaker `name`'s change messages under sharded pub/sub: it carries the hash
 * tag of the breaker's keys, so on a Cluster SPUBLISH and SSUBSCRIBE go to the shard that holds
 * them (a script may publish only in the slot of its keys).
 */
export function breakerChannel(prefix: string, name: string): string {
  return `${prefix}{${encodeName(checkStoreName(name))}}:changes`;
}

/**
 * What the keys of breaker `name` under `prefix` begin with, `${prefix}{name}:`: each key is
 * this and its field (see {@link KEY_FIELDS}).
 */
export function breakerKeyBase(prefix: string, name: string): string {
  return `${prefix}{${encodeName(checkStoreName(name))}}:`;
}

/** The field each key of a breaker ends with, after its {@link breakerKeyBase}. */
export const KEY_FIELDS = {
  snapshot: 'snapshot',
  version: 'version',
  state: 'state',
  counter: 'counter',
  openedAt: 'opened_at',
  write: 'write',
} as const satisfies Record<keyof BreakerKeys, string>;

/** The keys of breaker `name` under `prefix`. */
export function breakerKeys(prefix: string, name: string): BreakerKeys {
  const base = breakerKeyBase(prefix, name);
  return {
    snapshot: `${base}${KEY_FIELDS.snapshot}`,
    version: `${base}${KEY_FIELDS.version}`,
    state: `${base}${KEY_FIELDS.state}`,
    counter: `${base}${KEY_FIELDS.counter}`,
    openedAt: `${base}${KEY_FIELDS.openedAt}`,
    write: `${base}${KEY_FIELDS.write}`,
  };
}

/**
 * The operator fence of breaker `name`: present (for a short while) when an operator's write
 * met a conflict; the fleet's writes yield to it. Not a field of the record.
 */
export function fenceKey(prefix: string, name: string): string {
  return `${prefix}{${encodeName(checkStoreName(name))}}:fence`;
}

const FIELDS: ReadonlySet<string> = new Set(Object.values(KEY_FIELDS));

/**
 * A `SCAN ... MATCH` pattern for every breaker key under `prefix`. Glob characters in the prefix
 * are escaped; the braces of the pattern are literal in Redis's glob.
 */
export function breakerKeyPattern(prefix: string): string {
  return `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}{*}:*`;
}

/**
 * The breaker whose key `key` is under `prefix`, or `null` for a key that is not a breaker key
 * of this layout (another prefix, an unknown field, an encoding no name maps to).
 */
export function nameOfKey(prefix: string, key: string): string | null {
  if (!key.startsWith(`${prefix}{`)) return null;
  const close = key.indexOf('}', prefix.length + 1);
  if (close < 0 || key[close + 1] !== ':' || !FIELDS.has(key.slice(close + 2))) return null;
  const name = decodeName(key.slice(prefix.length + 1, close));
  if (name === null) return null;
  try {
    return checkStoreName(name);
  } catch {
    return null;
  }
}

/**
 * The key of breaker `name`'s fleet window under `prefix` (a hash of counts per generation and
 * time bucket), in the hash slot of the breaker's other keys.
 */
export function windowKey(prefix: string, name: string): string {
  return `${prefix}{${encodeName(checkStoreName(name))}}:window`;
}

/**
 * The key that marks flush `flushId` of breaker `name`'s window as applied, in the breaker's
 * hash slot: a flush sent twice (a client's resend after a reconnect) adds its counts once.
 */
export function windowFlushKey(prefix: string, name: string, flushId: string): string {
  return `${windowKey(prefix, name)}:${flushId}`;
}
