import type { Cluster } from 'ioredis';
import { CircuitBreaker } from 'statebreaker';
import { type BreakerTransition, forceOpen, listBreakers, watchBreakers } from 'statebreaker/admin';
import { RedisStore } from 'statebreaker/redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { namesOnEveryMaster, RedisCluster } from './support/redis-cluster.js';
import { breakerSlot } from './support/redis-slots.js';
import { waitFor } from './support/redis-wait.js';

// The operator tools on a Redis Cluster of 3 masters: a listing scans every master, and a watch
// of every breaker hears each master's breakers under sharded pub/sub, where a store hears only
// the channels it subscribed, a breaker first written after the watch began included.

let cluster: RedisCluster;
const cleanups: (() => unknown)[] = [];

// Generous for a loaded machine: these checks are about listing and forcing, not about how fast
// Redis answers (a store whose Redis answers later than its timeout rightly degrades).
const STORE_TIMEOUT_MS = 5_000;
const START_BOUND_MS = 60_000;

beforeAll(async () => {
  cluster = await RedisCluster.start({ replicasPerMaster: 0, boundMs: START_BOUND_MS });
}, START_BOUND_MS);

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await cluster?.stop();
});

function store(resyncInterval = 60_000, pubsub: 'auto' | 'classic' = 'auto'): RedisStore {
  const redis: Cluster = cluster.client();
  const made = new RedisStore(redis, { resyncInterval, pubsub, timeout: STORE_TIMEOUT_MS });
  cleanups.push(async () => {
    await made.close();
    redis.disconnect();
  });
  return made;
}

async function trip(on: RedisStore, name: string): Promise<CircuitBreaker> {
  const breaker = new CircuitBreaker(name, { store: on, failMax: 1, resetTimeout: 60_000 });
  cleanups.push(() => breaker.dispose());
  await breaker.call(async () => Promise.reject(new Error('down'))).catch(() => {});
  await breaker.settled();
  return breaker;
}

describe('operator tools on a Redis Cluster', () => {
  it('lists the breakers of every master once each, and forces one open for the fleet', async () => {
    const lists = await namesOnEveryMaster(cluster, 'listed', breakerSlot, 2);
    const names = lists.flat();
    expect(lists.every((list) => list.length === 2)).toBe(true);
    const fleet = store();
    for (const name of names) await trip(fleet, name);
    const member = new CircuitBreaker('listed 0', {
      store: fleet,
      failMax: 1,
      resetTimeout: 60_000,
    });
    cleanups.push(() => member.dispose());

    const operator = store();
    const listed = await listBreakers(operator);
    expect(listed.map((entry) => entry.name).sort()).toEqual([...names].sort());
    expect(listed.every((entry) => !entry.corrupt && entry.state === 'open')).toBe(true);

    const [first] = names as [string];
    await forceOpen(operator, first);
    const forced = new CircuitBreaker(first, { store: store(), failMax: 1, resetTimeout: 60_000 });
    cleanups.push(() => forced.dispose());
    await forced.settled();
    expect(forced.state).toBe('forcedOpen');
  });

  it("watches every master's breakers under sharded pub/sub, new ones included", async () => {
    const lists = await namesOnEveryMaster(cluster, 'watched', breakerSlot);
    const [early, ...late] = lists.flat() as [string, ...string[]];
    const fleet = store();
    const earlyBreaker = new CircuitBreaker(early, { store: fleet, failMax: 2 });
    cleanups.push(() => earlyBreaker.dispose());
    // A record that exists before the watch: one failure counted, still closed.
    await earlyBreaker.call(async () => Promise.reject(new Error('down'))).catch(() => {});
    await earlyBreaker.settled();

    const operator = store(300);
    const heard: BreakerTransition[] = [];
    const watch = watchBreakers(operator, (transition) => heard.push(transition));
    cleanups.push(() => watch.close());
    await watch.ready;
    expect(operator.publication).toBe('sharded');

    await earlyBreaker.call(async () => Promise.reject(new Error('down'))).catch(() => {});
    await earlyBreaker.settled();
    // Breakers first written after the watch began, one on every master.
    for (const name of late) await trip(fleet, name);
    const opened = () => new Set(heard.filter((t) => t.to === 'open').map((t) => t.name));
    expect(await waitFor(() => opened().size === 1 + late.length, 10_000)).toBe(true);
    expect([...opened()].sort()).toEqual([early, ...late].sort());
  });

  it('hands a watcher a change of a watched breaker that its feed missed, at the next listing', async () => {
    const [name] = (await namesOnEveryMaster(cluster, 'missed', breakerSlot)).flat() as [string];
    const fleet = store();
    const breaker = new CircuitBreaker(name, { store: fleet, failMax: 2 });
    cleanups.push(() => breaker.dispose());
    await breaker.call(async () => Promise.reject(new Error('down'))).catch(() => {});
    await breaker.settled();

    const operator = store(300);
    const heard: BreakerTransition[] = [];
    const watch = watchBreakers(operator, (transition) => heard.push(transition));
    cleanups.push(() => watch.close());
    await watch.ready;
    // A change the watcher's shard subscription never hears: published on the classic channel.
    const elsewhere = new CircuitBreaker(name, { store: store(60_000, 'classic'), failMax: 2 });
    cleanups.push(() => elsewhere.dispose());
    await elsewhere.call(async () => Promise.reject(new Error('down'))).catch(() => {});
    await elsewhere.settled();
    expect(elsewhere.state).toBe('open');
    expect(await waitFor(() => heard.some((t) => t.name === name && t.to === 'open'), 10_000)).toBe(
      true,
    );
  });
});
