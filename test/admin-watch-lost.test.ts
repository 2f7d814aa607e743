import { Redis } from 'ioredis';
import { CircuitBreaker } from 'statebreaker';
import { type BreakerListing, listBreakers, watchBreakers } from 'statebreaker/admin';
import { RedisStore } from 'statebreaker/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LiveBreakers } from '../src/dashboard/live.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';

// A watch of every breaker shows what Redis holds: after a data loss, a breaker that no running
// instance held starts again at a low version, and the watch follows it; an idle record that
// expired (`recordTtl`) leaves the watch as it leaves `list`.

let server: RedisServer;
let admin: Redis;
let run = 0;

beforeAll(async () => {
  server = await RedisServer.start();
  admin = new Redis({ path: server.path });
});

afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

const fail = (breaker: CircuitBreaker) =>
  breaker
    .call(async () => {
      throw new Error('upstream');
    })
    .catch(() => undefined);

function watching(store: RedisStore) {
  const latest = new Map<string, BreakerListing>();
  const removed: string[] = [];
  const watch = watchBreakers(store, () => {}, {
    onChange: (listing) => latest.set(listing.name, listing),
    onRemove: (name) => {
      removed.push(name);
      latest.delete(name);
    },
  });
  return { watch, latest, removed };
}

describe('a watch of every breaker after a data loss', () => {
  it('follows a breaker that starts again at a low version', async () => {
    const name = `lost ${++run}`;
    const clients = [0, 1, 2].map(() => new Redis({ path: server.path }));
    const [first, second, watcher] = clients.map((redis) => new RedisStore(redis)) as [
      RedisStore,
      RedisStore,
      RedisStore,
    ];
    const before = new CircuitBreaker(name, { store: first, failMax: 100 });
    for (let i = 0; i < 6; i++) {
      await fail(before);
      await before.settled();
    }
    before.dispose();
    const { watch, latest } = watching(watcher);
    try {
      const listed = await watch.ready;
      expect(listed.find((b) => b.name === name)?.version).toBe(6);
      await admin.flushall();
      // A new instance, which never held the lost record, starts the breaker again.
      const after = new CircuitBreaker(name, { store: second, failMax: 2 });
      await fail(after);
      await fail(after);
      await after.settled();
      expect(after.state).toBe('open');
      expect(
        await waitFor(() => {
          const seen = latest.get(name);
          return seen !== undefined && !seen.corrupt && seen.state === 'open';
        }, 10_000),
      ).toBe(true);
      after.dispose();
    } finally {
      watch.close();
      await Promise.all([first.close(), second.close(), watcher.close()]);
      for (const redis of clients) redis.disconnect();
    }
  }, 30_000);
});

describe('a watch of every breaker with records that expire', () => {
  it('drops an idle record once it expired, as list does', async () => {
    const name = `expiring ${++run}`;
    const clients = [0, 1].map(() => new Redis({ path: server.path }));
    const fleet = new RedisStore(clients[0] as Redis, { recordTtl: 1_000 });
    // The operator's store does not know the fleet's recordTtl.
    const operator = new RedisStore(clients[1] as Redis);
    const { watch, latest, removed } = watching(operator);
    const dashboard = new LiveBreakers(operator, false);
    const tiles = () => dashboard.snapshot().breakers.map((b) => b.name);
    try {
      await watch.ready;
      await dashboard.ready;
      const breaker = new CircuitBreaker(name, { store: fleet, failMax: 3 });
      await fail(breaker);
      await breaker.call(async () => 'ok');
      await breaker.settled();
      expect(await waitFor(() => latest.has(name) && tiles().includes(name))).toBe(true);
      breaker.dispose();
      expect(await waitFor(() => removed.includes(name), 10_000)).toBe(true);
      expect(await waitFor(() => !tiles().includes(name))).toBe(true);
      const listed: string[] = [];
      for (const entry of await listBreakers(operator)) listed.push(entry.name);
      expect(listed).not.toContain(name);
    } finally {
      watch.close();
      dashboard.close();
      await Promise.all([fleet.close(), operator.close()]);
      for (const redis of clients) redis.disconnect();
    }
  }, 30_000);
});
