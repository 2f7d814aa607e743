/**
 * One process of `bench/fleet.ts` or `bench/followers.ts` holding many breakers on RedisStores,
 * driven over IPC: `fleet-child.ts <json options>`. Public API only (`statebreaker`,
 * `statebreaker/redis`). Modes:
 * - `follow`: opens `stores` RedisStores (one by default), each on a Redis client of its own
 *   (so each has its own two connections, client and subscriber), creates `count` breakers on
 *   each, makes one successful call on each breaker, reports `ready`, then idles until told to
 *   `exit` (idle Redis commands, writes per timed transition, many followers on one Redis);
 *   with `record`, it notes when each store heard each change (its breakers' stateChange);
 * - `heap`: weighs `count` breakers (closed after one call each, or open after `failMax`
 *   failures each) as `memory-child.ts` does, reports `heap` and exits. Needs --expose-gc.
 */
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { type BreakerOptions, CircuitBreaker, MemoryStore } from 'statebreaker';
import { RedisStore, type RedisStoreOptions } from 'statebreaker/redis';
import { waitFor } from '../test/support/redis-wait.js';
import { collect, yieldToLoop } from './harness.js';

export interface FleetChildOptions {
  readonly mode: 'follow' | 'heap';
  readonly socket: string;
  readonly prefix: string;
  /** Breakers per store. */
  readonly count: number;
  /** `follow` only: RedisStores in this process, each on its own client; 1 when absent. */
  readonly stores?: number;
  /** `follow` only: note when each store heard each change (see `heard`). */
  readonly record?: boolean;
  readonly breaker?: BreakerOptions;
  readonly store?: RedisStoreOptions;
  /** `heap` only: what to weigh. */
  readonly weigh?: 'closed' | 'open';
  /** `heap` only: a MemoryStore instead of a RedisStore, for reference. */
  readonly memoryStore?: boolean;
}

/**
 * When one store heard one change: `[store clock (Redis server time), host clock]`, both in ms
 * since the epoch. The host clock is `performance.timeOrigin + performance.now()`, which every
 * process of one machine shares.
 */
export type HeardAt = readonly [number, number];

export type ToFleetChild =
  /** Trips every breaker with one failing call each (failMax 1). */
  | { readonly type: 'trip' }
  /** Waits for pending writes, then reports how many breakers are in each state. */
  | { readonly type: 'count' }
  /** Reports the changes heard since the last `heard` (and forgets them). */
  | { readonly type: 'heard' }
  /** Reports how many changes the stores heard since the last `heard`. */
  | { readonly type: 'heardCount' }
  /** Reports the process's memory and CPU time. */
  | { readonly type: 'usage' }
  | { readonly type: 'exit' };

export type FromFleetChild =
  | { readonly type: 'ready' }
  | { readonly type: 'tripped' }
  | { readonly type: 'count'; readonly states: Readonly<Record<string, number>> }
  | {
      readonly type: 'heard';
      /** By `changeKey`: when each store heard it, one entry per store that did. */
      readonly changes: Readonly<Record<string, readonly HeardAt[]>>;
    }
  | { readonly type: 'heardCount'; readonly count: number }
  | {
      readonly type: 'usage';
      readonly rss: number;
      readonly heapUsed: number;
      /** User + system CPU time of the process since it started, in µs. */
      readonly cpuMicros: number;
      /** Breakers deciding alone now (their store did not answer in time). */
      readonly degraded: number;
    }
  | {
      readonly type: 'heap';
      readonly bytesPerBreaker: number;
      /** Breakers not in the state weighed (a write that never landed, say). */
      readonly wrongState: number;
    };

/** Names one change of one breaker: its name, the generation it made, the state it entered. */
export const changeKey = (name: string, generation: number, to: string) =>
  `${name}#${generation}#${to}`;

/** This machine's clock, in ms since the epoch, finer than `Date.now()`. */
export const hostNow = () => performance.timeOrigin + performance.now();

const ok = async () => 1;
const down = async (): Promise<number> => {
  throw new Error('upstream down');
};
const send = (message: FromFleetChild) => process.send?.(message);

async function follow(options: FleetChildOptions): Promise<void> {
  let heard = new Map<string, HeardAt[]>();
  let heardCount = 0;
  const hear = (store: RedisStore, name: string, generation: number, to: string) => {
    const at: HeardAt = [store.clock.now(), hostNow()];
    const key = changeKey(name, generation, to);
    const list = heard.get(key);
    if (list === undefined) heard.set(key, [at]);
    else list.push(at);
    heardCount++;
  };
  // One store after the other: many stores starting at once in one process would hold its
  // event loop longer than a store's timeout, and their first reads would time out.
  const opened: { redis: Redis; store: RedisStore; breakers: CircuitBreaker[] }[] = [];
  for (let s = 0; s < (options.stores ?? 1); s++) {
    const redis = new Redis({ path: options.socket });
    redis.on('error', () => {});
    const store = new RedisStore(redis, options.store);
    const own = Array.from(
      { length: options.count },
      (_, i) => new CircuitBreaker(`${options.prefix}${i}`, { store, ...options.breaker }),
    );
    if (options.record) {
      for (const breaker of own) {
        breaker.on('stateChange', ({ name, generation, to }) => hear(store, name, generation, to));
      }
    }
    for (const breaker of own) await breaker.call(ok);
    await Promise.all(own.map((b) => b.settled()));
    opened.push({ redis, store, breakers: own });
  }
  const breakers = opened.flatMap((o) => o.breakers);
  // A loaded machine may time out a store's first reads: it recovers on its own, before the
  // figures begin.
  await waitFor(() => breakers.every((b) => !b.degraded), 60_000);
  process.on('message', (message: ToFleetChild) => {
    switch (message.type) {
      case 'trip':
        void (async () => {
          for (const breaker of breakers) await breaker.call(down).catch(() => {});
          await Promise.all(breakers.map((b) => b.settled()));
          send({ type: 'tripped' });
        })();
        break;
      case 'count':
        void Promise.all(breakers.map((b) => b.settled())).then(() => {
          const states: Record<string, number> = {};
          for (const b of breakers) states[b.state] = (states[b.state] ?? 0) + 1;
          send({ type: 'count', states });
        });
        break;
      case 'heard':
        send({ type: 'heard', changes: Object.fromEntries(heard) });
        heard = new Map();
        heardCount = 0;
        break;
      case 'heardCount':
        send({ type: 'heardCount', count: heardCount });
        break;
      case 'usage': {
        const { rss, heapUsed } = process.memoryUsage();
        const { user, system } = process.cpuUsage();
        const degraded = breakers.filter((b) => b.degraded).length;
        send({ type: 'usage', rss, heapUsed, cpuMicros: user + system, degraded });
        break;
      }
      case 'exit':
        for (const b of breakers) b.dispose();
        void Promise.all(
          opened.map(({ store, redis }) =>
            store
              .close()
              .then(() => redis.quit())
              .catch(() => {}),
          ),
        ).then(() => process.disconnect());
        break;
    }
  });
  send({ type: 'ready' });
}

async function heap(options: FleetChildOptions): Promise<void> {
  const redis = options.memoryStore ? null : new Redis({ path: options.socket });
  redis?.on('error', () => {});
  const store = redis === null ? new MemoryStore() : new RedisStore(redis, options.store);
  const failMax = options.breaker?.failMax ?? 5;
  const make = (name: string) => new CircuitBreaker(name, { store, ...options.breaker });
  const exercise = async (breaker: CircuitBreaker) => {
    if (options.weigh === 'open') {
      for (let i = 0; i < failMax; i++) await breaker.call(down).catch(() => undefined);
    } else await breaker.call(ok);
  };
  // Names and the holding array exist before the baseline, so only breakers are counted.
  const names = Array.from({ length: options.count }, (_, i) => `${options.prefix}${i}`);
  const held: CircuitBreaker[] = new Array(options.count).fill(null);
  const warm = make(`${options.prefix}warm-up`);
  await exercise(warm);
  await warm.settled();
  await yieldToLoop();
  collect();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < options.count; i++) held[i] = make(names[i] ?? '');
  for (const breaker of held) await exercise(breaker);
  await Promise.all(held.map((b) => b.settled()));
  // Let background writes and change messages settle before weighing.
  await yieldToLoop();
  await yieldToLoop();
  collect();
  const after = process.memoryUsage().heapUsed;
  // Names and breakers must stay reachable until weighed.
  if (held.length !== options.count || names.length !== options.count) {
    throw new Error('breakers were not held');
  }
  const wrongState = held.filter((b) => b.state !== (options.weigh ?? 'closed')).length;
  send({ type: 'heap', bytesPerBreaker: (after - before) / options.count, wrongState });
  for (const b of [warm, ...held]) b.dispose();
  if (store instanceof RedisStore) await store.close();
  await redis?.quit().catch(() => {});
  process.disconnect();
}

if (process.argv[1]?.endsWith('fleet-child.ts')) {
  const options = JSON.parse(process.argv[2] as string) as FleetChildOptions;
  await (options.mode === 'heap' ? heap(options) : follow(options));
}
