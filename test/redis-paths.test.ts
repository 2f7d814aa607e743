import { Redis } from 'ioredis';
import type { CircuitBreaker } from 'statebreaker';
import { RedisStore } from 'statebreaker/redis';
import {
  type BreakerPath,
  createPathBreaker,
  createSimulatedClock,
  getBreakerPaths,
  runBreakerPath,
} from 'statebreaker/testing';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { topLevelState } from '../src/state.js';
import { RedisServer } from './support/redis-server.js';

// The statechart's paths (edge coverage), run against breakers whose record lives in a real
// redis-server: one breaker, then a fleet of three, each on its own connection and store,
// with the path's steps dealt round-robin. The fleet must behave as one statechart.

const paths = getBreakerPaths();
let server: RedisServer;
let run = 0;

beforeAll(async () => {
  server = await RedisServer.start();
});

afterAll(async () => {
  await server?.stop();
});

// Every member agrees with Redis: same state, generation and counters as the stored record.
// Polled with a bound: the change feed is asynchronous, a fixed sleep would be a guess.
async function converged(breakers: CircuitBreaker[], store: RedisStore, name: string) {
  const deadline = Date.now() + 1_000;
  for (;;) {
    await Promise.all(breakers.map((breaker) => breaker.settled()));
    const record = await store.load(name);
    const agree =
      record === null ||
      breakers.every((breaker) => {
        const mine = breaker.context;
        const stored = record.snapshot.context;
        return (
          breaker.state === topLevelState(record.snapshot.value) &&
          mine.generation === stored.generation &&
          mine.failures === stored.failures &&
          mine.successes === stored.successes &&
          Object.keys(mine.probes).join() === Object.keys(stored.probes).join()
        );
      });
    if (agree || Date.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

async function runOnRedis(path: BreakerPath, members: number): Promise<void> {
  const clock = createSimulatedClock(1_000_000);
  const name = `path ${++run}: ${members}`;
  const clients = Array.from({ length: members }, () => new Redis({ path: server.path }));
  // Long intervals: the test's own settle drives convergence, not a periodic resync.
  const stores = clients.map(
    (redis) => new RedisStore(redis, { resyncInterval: 600_000, clockSyncInterval: 600_000 }),
  );
  const breakers = stores.map((store) =>
    createPathBreaker(name, { clock, store, config: paths.config }),
  );
  try {
    await runBreakerPath(path, {
      breakers,
      clock,
      settle: () => converged(breakers, stores[0] as RedisStore, name),
      maxSettleRounds: 10,
    });
  } finally {
    for (const breaker of breakers) breaker.dispose();
    await Promise.all(stores.map((store) => store.close()));
    for (const redis of clients) redis.disconnect();
  }
}

const cases = paths.paths.map((path) => [path.description, path] as const);

describe(`model-based on Redis (${paths.paths.length} paths, ${paths.edges} edges)`, () => {
  describe('one breaker on a RedisStore', () => {
    it.each(cases)('%s', (_, path) => runOnRedis(path, 1));
  });
  describe('a fleet of three breakers, each on its own connection (steps round-robin)', () => {
    it.each(cases)('%s', (_, path) => runOnRedis(path, 3));
  });
});
