/**
 * One process of `bench/fleet.ts` holding many breakers on one RedisStore, driven over IPC:
 * `fleet-child.ts <json options>`. Public API only (`statebreaker`, `statebreaker/redis`).
 * Modes:
 * - `follow`: creates `count` breakers, makes one successful call on each, reports `ready`,
 *   then idles until told to `exit` (idle Redis commands, and writes per timed transition);
 * - `heap`: weighs `count` breakers (closed after one call each, or open after `failMax`
 *   failures each) as `memory-child.ts` does, reports `heap` and exits. Needs --expose-gc.
 */
import { Redis } from 'ioredis';
import { type BreakerOptions, CircuitBreaker, MemoryStore } from 'statebreaker';
import { RedisStore, type RedisStoreOptions } from 'statebreaker/redis';
import { collect, yieldToLoop } from './harness.js';

export interface FleetChildOptions {
  readonly mode: 'follow' | 'heap';
  readonly socket: string;
  readonly prefix: string;
  readonly count: number;
  readonly breaker?: BreakerOptions;
  readonly store?: RedisStoreOptions;
  /** `heap` only: what to weigh. */
  readonly weigh?: 'closed' | 'open';
  /** `heap` only: a MemoryStore instead of a RedisStore, for reference. */
  readonly memoryStore?: boolean;
}

export type ToFleetChild =
  /** Trips every breaker with one failing call each (failMax 1). */
  | { readonly type: 'trip' }
  /** Waits for pending writes, then reports how many breakers are in each state. */
  | { readonly type: 'count' }
  | { readonly type: 'exit' };

export type FromFleetChild =
  | { readonly type: 'ready' }
  | { readonly type: 'tripped' }
  | { readonly type: 'count'; readonly states: Readonly<Record<string, number>> }
  | {
      readonly type: 'heap';
      readonly bytesPerBreaker: number;
      /** Breakers not in the state weighed (a write that never landed, say). */
      readonly wrongState: number;
    };

const ok = async () => 1;
const down = async (): Promise<number> => {
  throw new Error('upstream down');
};
const send = (message: FromFleetChild) => process.send?.(message);

async function follow(options: FleetChildOptions): Promise<void> {
  const redis = new Redis({ path: options.socket });
  redis.on('error', () => {});
  const store = new RedisStore(redis, options.store);
  const breakers = Array.from(
    { length: options.count },
    (_, i) => new CircuitBreaker(`${options.prefix}${i}`, { store, ...options.breaker }),
  );
  for (const breaker of breakers) await breaker.call(ok);
  await Promise.all(breakers.map((b) => b.settled()));
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
      case 'exit':
        for (const b of breakers) b.dispose();
        void store
          .close()
          .then(() => redis.quit())
          .catch(() => {})
          .then(() => process.disconnect());
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
