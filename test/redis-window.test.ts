import { Redis } from 'ioredis';
import { CircuitBreaker } from 'statebreaker';
import { RedisStore } from 'statebreaker/redis';
import { createSimulatedClock } from 'statebreaker/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { windowKey } from '../src/stores/redis/keys.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';

// The fleet window on a real redis-server: one script call per flush, however many calls were
// counted; a hash in the breaker's slot that forgets old buckets and expires on its own.

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

async function scriptCalls(): Promise<number> {
  const info = await admin.info('commandstats');
  let calls = 0;
  for (const line of info.split('\n')) {
    const match = /^cmdstat_(evalsha|eval):calls=(\d+)/.exec(line.trim());
    if (match) calls += Number(match[2]);
  }
  return calls;
}

async function fleet(count: number, options: Record<string, unknown>) {
  const clock = createSimulatedClock(Date.now());
  const name = `window ${++run}`;
  const clients = Array.from({ length: count }, () => new Redis({ path: server.path }));
  const stores = clients.map((redis) => new RedisStore(redis));
  const breakers = stores.map(
    (store) =>
      new CircuitBreaker(name, {
        store,
        clock,
        failMax: Number.POSITIVE_INFINITY,
        failureRateThreshold: 50,
        minimumCalls: 10,
        window: 10_000,
        ...options,
      }),
  );
  await Promise.all(breakers.map((breaker) => breaker.settled()));
  const close = async () => {
    for (const breaker of breakers) breaker.dispose();
    await Promise.all(stores.map((store) => store.close()));
    for (const redis of clients) redis.disconnect();
  };
  return { name, clock, breakers, close };
}

describe('the fleet window on Redis', () => {
  it('flushes once per windowFlush, however many calls were counted', async () => {
    const { breakers, clock, close } = await fleet(1, { windowFlush: 500 });
    const [breaker] = breakers as [CircuitBreaker];
    try {
      const before = await scriptCalls();
      await breaker.call(async () => 0);
      // The first count of a closed period is flushed at once (the fleet learns who counts).
      expect(await waitFor(async () => (await scriptCalls()) === before + 1)).toBe(true);
      for (let i = 1; i < 1_000; i++) await breaker.call(async () => i);
      // Counted, not sent: nothing more reaches Redis before the flush timer.
      expect(await scriptCalls()).toBe(before + 1);
      clock.increment(500);
      await breaker.settled();
      expect(await scriptCalls()).toBe(before + 2);
      // Idle: nothing counted since, nothing flushed.
      clock.increment(5_000);
      await breaker.settled();
      expect(await scriptCalls()).toBe(before + 2);
    } finally {
      await close();
    }
  });

  it('totals the counts of every instance: no instance reaches minimumCalls, the fleet trips', async () => {
    const { breakers, close } = await fleet(3, {});
    try {
      const fail = async () => {
        throw new Error('upstream');
      };
      // 4 calls each, 12 in all, half of them failed.
      for (const breaker of breakers) {
        await breaker.call(async () => 1);
        await breaker.call(fail).catch(() => {});
        await breaker.call(async () => 1);
        await breaker.call(fail).catch(() => {});
      }
      expect(breakers.map((b) => b.state)).toEqual(['closed', 'closed', 'closed']);
      for (const breaker of breakers) await breaker.settled();
      // The last flush saw 12 calls and tripped; the others hear it through the change feed.
      expect(await waitFor(() => breakers.every((b) => b.state === 'open'))).toBe(true);
      expect(breakers.map((b) => b.context.reason)).toEqual([
        'failureRateReached',
        'failureRateReached',
        'failureRateReached',
      ]);
    } finally {
      await close();
    }
  });

  it('keeps the window in the breaker hash slot, forgets old buckets, and expires on its own', async () => {
    const { name, breakers, clock, close } = await fleet(1, { window: 2_000 });
    const [breaker] = breakers as [CircuitBreaker];
    const key = windowKey('circuit_breaker:', name);
    try {
      expect(key).toBe(`circuit_breaker:{${name}}:window`);
      await breaker.call(async () => 1);
      await breaker.settled();
      // The bucket's calls and this instance's presence.
      const first = await admin.hkeys(key);
      expect(first).toHaveLength(2);
      const ttl = await admin.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(2_000 + 200 + 1_000);
      clock.increment(2_200);
      await breaker.call(async () => 1);
      await breaker.settled();
      // The first bucket left the window: the flush deleted it.
      const second = await admin.hkeys(key);
      expect(second).toHaveLength(2);
      expect(second).not.toEqual(first);
    } finally {
      await close();
    }
  });

  it('replaces a key of another type in the way, and keeps counting', async () => {
    const { name, breakers, close } = await fleet(1, { minimumCalls: 2 });
    const [breaker] = breakers as [CircuitBreaker];
    const errors: unknown[] = [];
    breaker.on('storeError', ({ error }) => errors.push(error));
    try {
      await admin.set(windowKey('circuit_breaker:', name), 'not a hash');
      await breaker
        .call(async () => {
          throw new Error('upstream');
        })
        .catch(() => {});
      await breaker
        .call(async () => {
          throw new Error('upstream');
        })
        .catch(() => {});
      await breaker.settled();
      expect(breaker.state).toBe('open');
      expect(errors).toEqual([]);
      expect(await admin.type(windowKey('circuit_breaker:', name))).toBe('hash');
    } finally {
      await close();
    }
  });
});
