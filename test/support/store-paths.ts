import type { CircuitBreaker } from 'statebreaker';
import { type RedisClient, RedisStore, type RedisStoreOptions } from 'statebreaker/redis';
import {
  type BreakerPath,
  type BreakerPaths,
  createPathBreaker,
  createSimulatedClock,
  runBreakerPath,
} from 'statebreaker/testing';
import { topLevelState } from '../../src/state.js';

// The statechart's paths run against breakers whose record lives behind a RedisStore: one
// breaker, or a fleet of several, each on its own client and store, with the path's steps
// dealt round-robin. The fleet must behave as one statechart. The client is the caller's:
// a connection to a real redis-server, or an ioredis-mock.

/** Every member agrees with the store: same state, generation and counters as the stored record. */
async function converged(breakers: CircuitBreaker[], store: RedisStore, name: string) {
  // Polled with a bound: the change feed is asynchronous, a fixed sleep would be a guess.
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

let run = 0;

/** How runPathOnStores builds its stores. */
export interface PathStoreOptions<C extends RedisClient = RedisClient> {
  /** A `storeError` or `degraded` event fails the path too (for an in-memory client). */
  readonly noStoreErrors?: boolean;
  /** Options of every store, over the long intervals the paths use. */
  readonly store?: RedisStoreOptions;
  /** Called with each client after the path; default: disconnect it. */
  readonly release?: (redis: C) => void | Promise<void>;
}

/**
 * Runs `path` on `members` breakers of one name, each on a store of its own over a client
 * from `client()`, on one simulated clock. With `noStoreErrors`, a `storeError` or `degraded`
 * event fails the path too (for an in-memory client, where no timeout is expected).
 */
export async function runPathOnStores<C extends RedisClient>(
  path: BreakerPath,
  paths: BreakerPaths,
  members: number,
  client: () => C | Promise<C>,
  {
    noStoreErrors = false,
    store: storeOptions = {},
    release = (redis) => (redis as unknown as { disconnect(): void }).disconnect(),
  }: PathStoreOptions<C> = {},
): Promise<void> {
  const clock = createSimulatedClock(1_000_000);
  const name = `path ${++run}: ${members}`;
  const clients = await Promise.all(Array.from({ length: members }, client));
  // Long intervals: the test's own settle drives convergence, not a periodic resync.
  const stores = clients.map(
    (redis) =>
      new RedisStore(redis, {
        resyncInterval: 600_000,
        clockSyncInterval: 600_000,
        ...storeOptions,
      }),
  );
  const breakers = stores.map((store) =>
    createPathBreaker(name, { clock, store, config: paths.config }),
  );
  const storeErrors: string[] = [];
  for (const breaker of breakers) {
    breaker.on('storeError', ({ error }) => storeErrors.push(String(error)));
    breaker.on('degraded', ({ error }) => storeErrors.push(`degraded: ${String(error)}`));
  }
  try {
    await runBreakerPath(path, {
      breakers,
      clock,
      settle: () => converged(breakers, stores[0] as RedisStore, name),
      maxSettleRounds: 10,
    });
    if (noStoreErrors && storeErrors.length > 0) {
      throw new Error(`store errors on the path:\n${storeErrors.join('\n')}`);
    }
  } finally {
    for (const breaker of breakers) breaker.dispose();
    await Promise.all(stores.map((store) => store.close()));
    await Promise.all(clients.map((redis) => release(redis)));
  }
}
