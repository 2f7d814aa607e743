import { Redis } from 'ioredis';
import { CircuitBreaker, CircuitState, MemoryStore } from 'statebreaker';
import { RedisStore } from 'statebreaker/redis';
import type { BreakerStore, StoredRecord, StoreFollower } from 'statebreaker/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';

// A breaker on a store that can unsubscribe by name and follower keeps no unsubscribe function:
// disposing it must stop it alone following, whatever else follows the name on that store.

let server: RedisServer;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  server = await RedisServer.start();
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await server?.stop();
});

const failing = () => Promise.reject(new Error('503'));

function redisStore(): RedisStore {
  const redis = new Redis({ path: server.path });
  const store = new RedisStore(redis);
  cleanups.push(() => redis.disconnect());
  cleanups.push(() => store.close());
  return store;
}

const stores: [string, () => BreakerStore][] = [
  ['MemoryStore', () => new MemoryStore()],
  ['RedisStore', redisStore],
];

/** A follower that keeps what it hears. */
function recorder(): StoreFollower & { heard: StoredRecord[] } {
  const heard: StoredRecord[] = [];
  return { heard, record: (record) => heard.push(record) };
}

let unique = 0;

describe.each(stores)('unsubscribing on a %s', (_, make) => {
  it('a disposed breaker stops following; another of the same name on the store still follows', async () => {
    const store = make();
    const name = `shared-${++unique}`;
    const first = new CircuitBreaker(name, { store, failMax: 1 });
    const second = new CircuitBreaker(name, { store, failMax: 1 });
    const writer = new CircuitBreaker(name, {
      store: make === redisStore ? redisStore() : store,
      failMax: 1,
    });
    cleanups.push(
      () => second.dispose(),
      () => writer.dispose(),
    );
    await Promise.all([first.settled(), second.settled(), writer.settled()]);

    first.dispose();
    await expect(writer.call(failing)).rejects.toThrow('503');
    await writer.settled();
    expect(await waitFor(() => second.state === CircuitState.OPEN)).toBe(true);
  });

  it('one follower, then two, then one: the one left hears every record', async () => {
    const store = make();
    const name = `followers-${++unique}`;
    const a = recorder();
    const b = recorder();
    const offA = store.subscribe(name, a);
    const offB = store.subscribe(name, b);
    offA();
    const writer = new CircuitBreaker(name, { store, failMax: 1 });
    cleanups.push(() => writer.dispose());
    await expect(writer.call(failing)).rejects.toThrow('503');
    await writer.settled();
    expect(await waitFor(() => b.heard.length > 0)).toBe(true);
    expect(a.heard).toHaveLength(0);
    offB();
  });

  it('an unsubscribe function called again after the follower subscribed anew leaves it following', async () => {
    const store = make();
    const name = `again-${++unique}`;
    const follower = recorder();
    const off = store.subscribe(name, follower);
    off();
    const offAgain = store.subscribe(name, follower);
    // The first subscription's function, called a second time, is spent: it ends nothing now.
    off();
    const writer = new CircuitBreaker(name, { store, failMax: 1 });
    cleanups.push(() => writer.dispose());
    await expect(writer.call(failing)).rejects.toThrow('503');
    await writer.settled();
    expect(await waitFor(() => follower.heard.length > 0)).toBe(true);
    offAgain();
  });
});
