import { Redis, type RedisOptions } from 'ioredis';
import { type BreakerOptions, CircuitBreaker, CircuitBreakerError } from 'statebreaker';
import { RedisStore, type RedisStoreOptions } from 'statebreaker/redis';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { topLevelState } from '../../src/state.js';
import { decodeRecord } from '../../src/stores/redis/codec.js';
import { RedisServer } from './redis-server.js';
import { waitFor } from './redis-wait.js';

/** What a fault test watches on one breaker instance. */
export interface Member {
  readonly breaker: CircuitBreaker;
  readonly store: RedisStore;
  readonly redis: Redis;
  /** Events in order: `degraded`, `recovered`, `storeError:<error name>`. */
  readonly events: string[];
  readonly storeErrors: unknown[];
  readonly storeErrorKeys: (string | undefined)[];
  close(): Promise<void>;
}

/** The error every failing call in the fault tests throws: anything else came from elsewhere. */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
}

/**
 * One breaker instance with its own client and store on the server at `path`. Small store
 * timeout and resync interval keep the fault tests short.
 */
export function member(
  path: string,
  name: string,
  options: BreakerOptions = {},
  storeOptions: RedisStoreOptions = {},
  redisOptions: RedisOptions = {},
): Member {
  const redis = new Redis({ path, ...redisOptions });
  // ioredis reports a lost connection as an 'error' event; the store's timeouts handle it.
  redis.on('error', () => {});
  const store = new RedisStore(redis, {
    timeout: 100,
    resyncInterval: 200,
    auditInterval: 400,
    ...storeOptions,
  });
  const breaker = new CircuitBreaker(name, {
    store,
    failMax: 2,
    resetTimeout: 60_000,
    ...options,
  });
  const events: string[] = [];
  const storeErrors: unknown[] = [];
  const storeErrorKeys: (string | undefined)[] = [];
  breaker.on('degraded', () => events.push('degraded'));
  breaker.on('recovered', () => events.push('recovered'));
  breaker.on('storeError', ({ error, key }) => {
    events.push(`storeError:${error instanceof Error ? error.name : typeof error}`);
    storeErrors.push(error);
    storeErrorKeys.push(key);
  });
  return {
    breaker,
    store,
    redis,
    events,
    storeErrors,
    storeErrorKeys,
    async close() {
      breaker.dispose();
      await store.close();
      redis.disconnect();
    },
  };
}

/** How a call ended, or `hung` when it did not settle within the bound. */
export type Settled = 'ok' | 'upstream' | 'rejected' | 'hung' | { other: unknown };

/**
 * Calls through the breaker, failing with `UpstreamError` or returning 'ok', and says how the
 * call ended within `boundMs`: a bound against hanging forever, not a speed check.
 */
export async function settle(
  breaker: CircuitBreaker,
  outcome: 'fail' | 'ok',
  boundMs = 10_000,
): Promise<Settled> {
  const call = breaker
    .call(async () => {
      if (outcome === 'fail') throw new UpstreamError('upstream down');
      return 'ok';
    })
    .then(
      (value): Settled => (value === 'ok' ? 'ok' : { other: value }),
      (error: unknown): Settled => {
        if (error instanceof UpstreamError) return 'upstream';
        if (error instanceof CircuitBreakerError) return 'rejected';
        return { other: error };
      },
    );
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<Settled>((resolve) => {
    timer = setTimeout(() => resolve('hung'), boundMs);
  });
  return Promise.race([call, hung]).finally(() => clearTimeout(timer));
}

/** Whether every member shows the state, failures and generation of the record in Redis. */
export async function agreeWithRedis(admin: Redis, members: readonly Member[], name: string) {
  const keys = members[0]?.store.keys(name);
  if (keys === undefined) return false;
  let stored: ReturnType<typeof decodeRecord>;
  try {
    const [snapshot, version] = await admin.mget(keys.snapshot, keys.version);
    stored = decodeRecord(version, snapshot);
  } catch {
    return false;
  }
  const record = stored.record;
  if (record === null) return false;
  const state = topLevelState(record.snapshot.value);
  const { failures, generation } = record.snapshot.context;
  return members.every(
    ({ breaker }) =>
      breaker.state === state &&
      breaker.context.failures === failures &&
      breaker.context.generation === generation,
  );
}

/** Polls until the members agree with Redis; returns whether they did within the bound. */
export function converge(admin: Redis, members: readonly Member[], name: string, boundMs = 15_000) {
  return waitFor(() => agreeWithRedis(admin, members, name), boundMs);
}

/** The record Redis holds for `name`, decoded (`null` when absent or unreadable). */
export async function storedRecord(admin: Redis, member: Member, name: string) {
  const keys = member.store.keys(name);
  const [snapshot, version] = await admin.mget(keys.snapshot, keys.version);
  return decodeRecord(version, snapshot).record;
}

/**
 * Collects unhandled rejections while installed; a fault test fails if any arrived (vitest would
 * report them too, but only after the run, without naming the test).
 */
export function watchRejections(): { readonly seen: unknown[]; stop(): void } {
  const seen: unknown[] = [];
  const onRejection = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', onRejection);
  return { seen, stop: () => process.off('unhandledRejection', onRejection) };
}

/** One file's redis-server, its members and its rejection watch, set up by `useFaultHarness`. */
export interface FaultHarness {
  /** The file's own redis-server, started before its first test. */
  readonly server: RedisServer;
  /** The test's own connection, for reading, garbling and breaking what the members share. */
  readonly admin: Redis;
  /** A new connection to the server; lost connections are left to the test to notice. */
  connect(): Redis;
  /** A member on the server, closed after the test (arguments as for `member`). */
  join(
    name: string,
    options?: BreakerOptions,
    storeOptions?: RedisStoreOptions,
    redisOptions?: RedisOptions,
  ): Member;
  /**
   * Starts a test: unhandled rejections fail it from here on, and the breaker name returned,
   * `<label> <n>`, is one no earlier test of the file used.
   */
  begin(label: string): string;
  /** Restarts the server and gives `admin` a new connection to it. */
  restart(): Promise<void>;
}

/**
 * Registers the hooks every fault test file shares: a redis-server of its own for the file,
 * members closed after each test, which then fails if any rejection went unhandled.
 */
export function useFaultHarness(): FaultHarness {
  let server: RedisServer | undefined;
  let admin: Redis | undefined;
  const members: Member[] = [];
  let rejections: ReturnType<typeof watchRejections> | undefined;
  let run = 0;
  const started = () => {
    if (server === undefined) throw new Error('the fault harness is used before its beforeAll');
    return server;
  };
  const connect = () => {
    const redis = new Redis({ path: started().path });
    redis.on('error', () => {});
    return redis;
  };

  beforeAll(async () => {
    server = await RedisServer.start();
    admin = connect();
  });

  afterEach(async () => {
    for (const m of members.splice(0)) await m.close();
    rejections?.stop();
    expect(rejections?.seen ?? []).toEqual([]);
  });

  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  return {
    get server() {
      return started();
    },
    get admin() {
      if (admin === undefined) throw new Error('the fault harness is used before its beforeAll');
      return admin;
    },
    connect,
    join(name, options, storeOptions, redisOptions) {
      const m = member(started().path, name, options, storeOptions, redisOptions);
      members.push(m);
      return m;
    },
    begin(label) {
      rejections = watchRejections();
      return `${label} ${++run}`;
    },
    async restart() {
      admin?.disconnect();
      await started().restart();
      admin = connect();
    },
  };
}
