import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { RedisStore } from '../stores/redis/index.js';
import { UsageError } from './command.js';
import type { CommonOptions } from './common-options.js';
import { withoutUserinfo } from './secrets.js';

/** Where to connect, parsed from `--redis`. */
export interface RedisTarget {
  /** The URL as messages show it, the password masked. */
  readonly display: string;
  /** Connection options of a standalone server, or of each Cluster node. */
  readonly options: RedisOptions;
  /** Cluster seeds; `undefined` for a standalone server. */
  readonly seeds: readonly { readonly host: string; readonly port: number }[] | undefined;
}

/** A connected store and what closes it. */
export interface Connection {
  readonly store: RedisStore;
  /**
   * Hears the connection go away and come back (once each, in turn): a long-running command
   * says that it heard nothing meanwhile. Returns the function that stops listening.
   */
  onLinkChange(listener: (up: boolean) => void): () => void;
  close(): Promise<void>;
}

/** A failure to reach Redis: exit code 1 with this one line. */
export class RedisUnreachableError extends Error {
  override readonly name = 'RedisUnreachableError';
}

function parseOne(text: string): { url: URL; options: RedisOptions } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(
      `--redis must be a redis://, rediss:// or unix:// URL, got ${JSON.stringify(withoutUserinfo(text))}`,
    );
  }
  const db =
    url.searchParams.get('db') ?? (url.protocol === 'unix:' ? null : url.pathname.slice(1));
  const options: RedisOptions = {};
  if (db !== null && db !== '') {
    if (!/^[0-9]+$/.test(db))
      throw new UsageError(`--redis: the database must be a number, got ${JSON.stringify(db)}`);
    options.db = Number(db);
  }
  const password = url.password || url.searchParams.get('password');
  if (url.username !== '') options.username = decodeURIComponent(url.username);
  if (password) options.password = decodeURIComponent(password);
  switch (url.protocol) {
    case 'unix:':
      if (url.pathname === '' || url.pathname === '/') {
        throw new UsageError(`--redis: a unix URL names the socket, as unix:///path/to/redis.sock`);
      }
      options.path = decodeURIComponent(url.pathname);
      return { url, options };
    case 'rediss:':
      options.tls = { servername: url.hostname };
      break;
    case 'redis:':
      break;
    default:
      throw new UsageError(
        `--redis must be a redis://, rediss:// or unix:// URL, got ${JSON.stringify(mask(url))}`,
      );
  }
  options.host = url.hostname === '' ? '127.0.0.1' : url.hostname.replace(/^\[|\]$/g, '');
  options.port = url.port === '' ? 6379 : Number(url.port);
  return { url, options };
}

function mask(url: URL): string {
  if (url.password === '' && !url.searchParams.has('password')) return url.href;
  const masked = new URL(url.href);
  if (masked.password !== '') masked.password = '***';
  if (masked.searchParams.has('password')) masked.searchParams.set('password', '***');
  return masked.href;
}

/**
 * The connection `--redis` (and `--cluster`) describe.
 * @throws UsageError when the URL is not one.
 */
export function parseTarget(text: string, cluster: boolean): RedisTarget {
  if (!cluster) {
    const { url, options } = parseOne(text);
    return { display: mask(url), options, seeds: undefined };
  }
  const parsed = text.split(',').map((part) => parseOne(part.trim()));
  const first = parsed[0] as (typeof parsed)[number];
  if (parsed.some(({ options }) => options.path !== undefined)) {
    throw new UsageError('--cluster takes redis:// or rediss:// seeds, not a unix socket');
  }
  if (parsed.some(({ options }) => (options.db ?? 0) !== 0)) {
    throw new UsageError('--cluster: a Redis Cluster has only database 0');
  }
  const { host: _h, port: _p, db: _d, ...nodeOptions } = first.options;
  return {
    display: parsed.map(({ url }) => mask(url)).join(','),
    options: nodeOptions,
    seeds: parsed.map(({ options }) => ({
      host: options.host as string,
      port: options.port as number,
    })),
  };
}

const DISCONNECT_MS = 50;

// ioredis is an optional peer dependency: the package loads without it, and the command says
// what is missing instead of failing to start.
async function loadIoredis(): Promise<{ Redis: typeof Redis; Cluster: typeof Cluster }> {
  try {
    const { Redis, Cluster } = await import('ioredis');
    return { Redis, Cluster };
  } catch {
    throw new RedisUnreachableError(
      'this command needs ioredis (an optional peer dependency): npm install ioredis',
    );
  }
}

function bounded<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/**
 * Connects to the Redis `options` name and opens a store on it. The first connection either
 * succeeds within the timeout or fails at once (no reconnect loop before it); once connected,
 * ioredis reconnects with a short backoff, which a long-running `watch` needs.
 * @throws RedisUnreachableError naming the URL and the cause.
 */
export async function connect(options: CommonOptions): Promise<Connection> {
  const target = parseTarget(options.redis, options.cluster);
  const ioredis = await loadIoredis();
  let connected = false;
  const retry = (times: number) => (connected ? Math.min(100 * 2 ** times, 2_000) : null);
  const common: RedisOptions = {
    ...target.options,
    lazyConnect: true,
    connectTimeout: options.timeout,
    retryStrategy: retry,
    // ioredis keeps a closing socket (and so the process) up to this long for a server that does
    // not close its side: a frozen one, or a socket that failed. Everything was awaited by then.
    disconnectTimeout: DISCONNECT_MS,
  };
  const redis: Redis | Cluster =
    target.seeds === undefined
      ? new ioredis.Redis(common)
      : new ioredis.Cluster([...target.seeds], {
          lazyConnect: true,
          clusterRetryStrategy: retry,
          slotsRefreshTimeout: options.timeout,
          redisOptions: {
            ...target.options,
            connectTimeout: options.timeout,
            disconnectTimeout: DISCONNECT_MS,
          },
        } satisfies ClusterOptions);
  let lastError: Error | undefined;
  // ioredis reports every failed attempt as an 'error' event; the calls that fail report them.
  redis.on('error', (error: Error) => {
    lastError = error;
  });
  try {
    await bounded(
      redis.connect(),
      options.timeout,
      () =>
        new RedisUnreachableError(
          `Redis at ${target.display} did not answer within ${options.timeout} ms`,
        ),
    );
  } catch (error) {
    redis.disconnect();
    if (error instanceof RedisUnreachableError) throw error;
    const cause = lastError ?? (error as Error);
    throw new RedisUnreachableError(`cannot reach Redis at ${target.display}: ${cause.message}`);
  }
  connected = true;
  const listeners = new Set<(up: boolean) => void>();
  let up = true;
  let closing = false;
  const tell = (now: boolean) => {
    if (closing || now === up) return;
    up = now;
    for (const listener of listeners) listener(now);
  };
  redis.on('close', () => tell(false));
  redis.on('ready', () => tell(true));
  const store = new RedisStore(redis, {
    prefix: options.prefix,
    timeout: options.timeout,
    ...(options.recordTtl === undefined ? {} : { recordTtl: options.recordTtl }),
  });
  return {
    store,
    onLinkChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      closing = true;
      await store.close();
      redis.disconnect();
    },
  };
}
