import { Redis } from 'ioredis';
import {
  BreakerNotFoundError,
  type BreakerTransition,
  CorruptRecordError,
  forceOpen,
  listBreakers,
  readBreaker,
  reset,
  watchBreakers,
} from 'statebreaker/admin';
import { RedisStore, RedisStoreTimeoutError } from 'statebreaker/redis';
import { afterEach, describe, expect, it } from 'vitest';
import { settle, useFaultHarness } from './support/fault-fleet.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';
import { snapshotJson } from './support/stored-snapshot.js';

// The admin API on a real redis-server: listing with SCAN, operator actions that every instance
// adopts, corrupt records, a Redis that does not answer, and a live watch over the change feed.

const harness = useFaultHarness();
const stores: RedisStore[] = [];

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

function adminStore(prefix?: string): RedisStore {
  const store = new RedisStore(harness.connect(), prefix === undefined ? {} : { prefix });
  stores.push(store);
  return store;
}

/** Calls per command so far, from the server's own statistics. */
async function commandCalls(): Promise<Record<string, number>> {
  const info = await harness.admin.info('commandstats');
  const calls: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_(\w+):calls=(\d+)/gm)) {
    calls[match[1] as string] = Number(match[2]);
  }
  return calls;
}

async function trip(member: ReturnType<typeof harness.join>, failures = 2) {
  for (let i = 0; i < failures; i++) await settle(member.breaker, 'fail');
  await member.breaker.settled();
}

describe('listing on Redis', () => {
  it('lists every breaker once with SCAN (never KEYS), names with braces and spaces intact', async () => {
    const label = harness.begin('list');
    const names = [`${label} plain`, `${label} {braced}`, `${label} 100%`, `${label}\nline`];
    for (const name of names) await trip(harness.join(name), 1);
    // Enough records beside them that SCAN takes several rounds and reads go in batches.
    const bulk = harness.admin.pipeline();
    const keys = adminStore().keys.bind(adminStore());
    for (let i = 0; i < 1_200; i++) {
      const k = keys(`${label} bulk ${i}`);
      bulk.mset(k.version, '3', k.snapshot, snapshotJson('closed', { failures: 1 }, `w${i}`));
    }
    await bulk.exec();

    const before = await commandCalls();
    const listed = await listBreakers(adminStore());
    const after = await commandCalls();

    const ours = listed.filter((entry) => entry.name.startsWith(label));
    expect(ours).toHaveLength(1_204);
    expect(new Set(ours.map((entry) => entry.name)).size).toBe(1_204);
    for (const name of names) {
      expect(ours.find((entry) => entry.name === name)).toMatchObject({
        corrupt: false,
        state: 'closed',
        failures: 1,
      });
    }
    expect((after.scan ?? 0) - (before.scan ?? 0)).toBeGreaterThan(1);
    expect(after.keys ?? 0).toBe(before.keys ?? 0);
  });

  it('sees only the breakers of its prefix, glob characters in it included', async () => {
    const label = harness.begin('prefix');
    await trip(harness.join(label, {}, { prefix: 'other_app:' }), 1);
    // Unescaped, the pattern of `glob[1]*:` would match the keys of `glob1:` too.
    await trip(harness.join(`${label} globbed`, {}, { prefix: 'glob[1]*:' }), 1);
    await trip(harness.join(`${label} plain`, {}, { prefix: 'glob1:' }), 1);
    expect((await listBreakers(adminStore())).some((entry) => entry.name === label)).toBe(false);
    expect(await listBreakers(adminStore('other_app:'))).toMatchObject([
      { name: label, failures: 1 },
    ]);
    expect((await listBreakers(adminStore('glob[1]*:'))).map((entry) => entry.name)).toEqual([
      `${label} globbed`,
    ]);
  });

  it('lists a corrupt record as corrupt with its key; reading it rejects; only reset replaces it', async () => {
    const label = harness.begin('corrupt');
    const store = adminStore();
    const k = store.keys(label);
    await harness.admin.mset(k.version, '7', k.snapshot, '{"status": "act');
    const other = store.keys(`${label} hash`);
    await harness.admin.hset(other.version, 'a', '1');
    await harness.admin.set(other.snapshot, snapshotJson('closed'));

    const listed = (await listBreakers(store)).filter((entry) => entry.name.startsWith(label));
    expect(listed).toMatchObject([
      { name: label, corrupt: true, key: k.snapshot, problem: expect.stringMatching(/not JSON/) },
      { name: `${label} hash`, corrupt: true, key: other.version },
    ]);
    await expect(readBreaker(store, label)).rejects.toThrow(CorruptRecordError);
    await expect(forceOpen(store, label)).rejects.toThrow(/only a reset replaces/);
    await expect(reset(store, label)).rejects.toThrow(/configuration cannot be read/);
    expect(await harness.admin.get(k.snapshot)).toBe('{"status": "act');
  });

  it('resets a corrupt record under the configuration it still holds, which a live breaker adopts quietly', async () => {
    const label = harness.begin('corrupt reset');
    const store = adminStore();
    const k = store.keys(label);
    // Valid JSON and configuration, but a lease where the statechart holds none.
    await harness.admin.mset(
      k.version,
      '7',
      k.snapshot,
      snapshotJson('closed', { probes: { stray: 1 }, generation: 4 }),
    );
    const { breaker } = await reset(store, label);
    expect(breaker).toMatchObject({ state: 'closed', generation: 5, reason: 'reset' });
    expect(breaker.version).toBeGreaterThan(7);
    const member = harness.join(label, {
      failMax: 2,
      resetTimeout: 60_000,
      probeLease: 60_000,
      successThreshold: 1,
    });
    await trip(member, 2);
    expect(member.breaker.state).toBe('open');
    expect(member.storeErrors).toEqual([]);
  });
});

describe('operator actions on Redis', () => {
  it('force open reaches an instance on another connection, which rejects; reset closes it; no mismatch', async () => {
    const label = harness.begin('force');
    const member = harness.join(label);
    await trip(member, 1);
    const store = adminStore();
    const result = await forceOpen(store, label);
    expect(result).toMatchObject({
      from: 'closed',
      changed: true,
      breaker: { state: 'forcedOpen' },
    });
    expect(await waitFor(() => member.breaker.state === 'forcedOpen')).toBe(true);
    expect(await settle(member.breaker, 'ok')).toBe('rejected');
    expect(await harness.admin.get(store.keys(label).state)).toBe('forcedOpen');

    await reset(store, label);
    expect(await waitFor(() => member.breaker.state === 'closed')).toBe(true);
    expect(await settle(member.breaker, 'ok')).toBe('ok');
    expect(member.storeErrors).toEqual([]);
  });

  it('a breaker that does not exist: BreakerNotFoundError, no key written', async () => {
    const label = harness.begin('missing');
    const store = adminStore();
    await expect(forceOpen(store, label)).rejects.toThrow(BreakerNotFoundError);
    expect(await harness.admin.exists(...Object.values(store.keys(label)))).toBe(0);
  });

  it('a Redis that does not answer: RedisStoreTimeoutError, nothing thrown elsewhere', async () => {
    harness.begin('frozen');
    const frozen = await RedisServer.start();
    const redis = new Redis({ path: frozen.path });
    redis.on('error', () => {});
    const store = new RedisStore(redis, { timeout: 200 });
    try {
      await redis.ping();
      frozen.pause();
      await expect(readBreaker(store, 'any')).rejects.toThrow(RedisStoreTimeoutError);
      await expect(forceOpen(store, 'any')).rejects.toThrow(RedisStoreTimeoutError);
      await expect(listBreakers(store)).rejects.toThrow(RedisStoreTimeoutError);
    } finally {
      await store.close();
      redis.disconnect();
      await frozen.stop();
    }
  });
});

describe('watching on Redis', () => {
  it('hears transitions written by any instance or operator, and changes missed while the feed was away', async () => {
    const label = harness.begin('watch');
    const store = adminStore();
    const transitions: BreakerTransition[] = [];
    const watch = watchBreakers(store, (t) => {
      if (t.name.startsWith(label)) transitions.push(t);
    });
    await watch.ready;
    const member = harness.join(label);
    await trip(member, 2);
    await forceOpen(store, label);
    expect(await waitFor(() => transitions.length === 2)).toBe(true);
    expect(transitions.map((t) => [t.from, t.to, t.reason])).toEqual([
      ['closed', 'open', 'failMaxReached'],
      ['open', 'forcedOpen', 'forcedOpen'],
    ]);
    expect(transitions[1]?.version).toBeGreaterThan(transitions[0]?.version ?? 0);

    // The watch's subscriber is cut off; a change lands meanwhile; the reconnect reads it.
    const subscribers = (await harness.admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string;
    expect(subscribers).not.toBe('');
    await harness.admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    member.breaker.dispose();
    await reset(adminStore(), label);
    expect(await waitFor(() => transitions.length === 3, 10_000)).toBe(true);
    expect(transitions[2]).toMatchObject({ from: 'forcedOpen', to: 'closed', reason: 'reset' });
    watch.close();
  });
});
