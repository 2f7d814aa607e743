import { MAX_DELAY } from '../validate.js';
import type { CommandOption } from './command.js';
import { UsageError } from './command.js';

/** The options every command shares, resolved. */
export interface CommonOptions {
  /** The Redis URL (`--redis`, else `$REDIS_URL`, else the local default). */
  readonly redis: string;
  /** Whether the URL is a Redis Cluster seed. */
  readonly cluster: boolean;
  readonly prefix: string;
  readonly json: boolean;
  /** Milliseconds any Redis call may take. */
  readonly timeout: number;
  /** The fleet's `recordTtl`, for the records an operator's action writes. */
  readonly recordTtl: number | undefined;
}

export const DEFAULT_REDIS = 'redis://127.0.0.1:6379';
export const DEFAULT_TIMEOUT = 2_000;

/** The shared options as `util.parseArgs` takes them, with help. */
export const COMMON_OPTIONS = {
  redis: {
    type: 'string',
    value: 'URL',
    help: `redis://, rediss:// or unix:///path/to/redis.sock (default: $REDIS_URL, else ${DEFAULT_REDIS})`,
  },
  cluster: { type: 'boolean', help: 'the URL is a Redis Cluster seed (several: comma-separated)' },
  prefix: { type: 'string', value: 'PREFIX', help: 'key prefix (default: circuit_breaker:)' },
  json: { type: 'boolean', help: 'machine-readable output' },
  timeout: {
    type: 'string',
    value: 'MS',
    help: `ms any Redis call may take (default: ${DEFAULT_TIMEOUT})`,
  },
  'record-ttl': {
    type: 'string',
    value: 'MS',
    help: "the fleet's recordTtl, if its stores have one (idle records written expire)",
  },
  help: { type: 'boolean', help: 'this help' },
} as const satisfies Record<string, CommandOption>;

/** @throws UsageError naming the option and the value. */
export function resolveCommonOptions(
  values: Readonly<Record<string, string | boolean | undefined>>,
  env: Readonly<Record<string, string | undefined>>,
): CommonOptions {
  const given = (name: string) => values[name] as string | undefined;
  const prefix = given('prefix') ?? 'circuit_breaker:';
  if (/[{}]/.test(prefix)) {
    throw new UsageError(
      `--prefix must not contain "{" or "}" (the breaker name is the key's hash tag), got ${JSON.stringify(prefix)}`,
    );
  }
  const timeoutText = given('timeout');
  let timeout = DEFAULT_TIMEOUT;
  if (timeoutText !== undefined) {
    timeout = Number(timeoutText);
    if (!/^[0-9]+$/.test(timeoutText) || timeout < 1 || timeout > MAX_DELAY) {
      throw new UsageError(
        `--timeout must be a whole number of ms from 1 to ${MAX_DELAY}, got ${JSON.stringify(timeoutText)}`,
      );
    }
  }
  const ttlText = given('record-ttl');
  let recordTtl: number | undefined;
  if (ttlText !== undefined) {
    recordTtl = Number(ttlText);
    if (!/^[0-9]+$/.test(ttlText) || recordTtl < 1_000 || recordTtl > 31_536_000_000) {
      throw new UsageError(
        `--record-ttl must be a whole number of ms from 1000 to 31536000000, got ${JSON.stringify(ttlText)}`,
      );
    }
  }
  const envUrl = env.REDIS_URL === '' ? undefined : env.REDIS_URL;
  return {
    redis: given('redis') ?? envUrl ?? DEFAULT_REDIS,
    cluster: values.cluster === true,
    prefix,
    json: values.json === true,
    timeout,
    recordTtl,
  };
}
