import type { Cluster } from 'ioredis';
import { CircuitBreaker } from 'statebreaker';
import { RedisStore, type RedisStoreOptions } from 'statebreaker/redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ClusterNode, namesOnEveryMaster, RedisCluster } from './support/redis-cluster.js';
import { breakerSlot, keySlot as breakerSlotOfKey } from './support/redis-slots.js';
import { waitFor } from './support/redis-wait.js';

// RedisStore on a Redis Cluster of 3 masters and 3 replicas: where a breaker's keys live, how
// its change messages travel (sharded pub/sub by default, classic on request), and that the
// feed follows a slot that moves to another master.

// Bounds on waits and on the stores' calls to Redis, generous for a loaded machine: these checks
// are about where keys and messages go, not about how fast (a store whose Redis answers later
// than its timeout rightly degrades, which is not what is checked here).
const BOUND_MS = 20_000;
const STORE_TIMEOUT_MS = 5_000;
const START_BOUND_MS = 60_000;

let cluster: RedisCluster;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  cluster = await RedisCluster.start({ boundMs: START_BOUND_MS });
}, START_BOUND_MS);

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await cluster?.stop();
});

let run = 0;

function client(): Cluster {
  const redis = cluster.client();
  cleanups.push(() => redis.disconnect());
  return redis;
}

/** `count` stores, each on its own Cluster client, with a breaker of every name on each. */
async function fleet(names: string[], count: number, options: RedisStoreOptions = {}) {
  const members = Array.from({ length: count }, () => {
    const store = new RedisStore(client(), {
      resyncInterval: 60_000,
      timeout: STORE_TIMEOUT_MS,
      ...options,
    });
    const breakers = new Map(
      names.map((name) => [name, new CircuitBreaker(name, { store, failMax: 1 })]),
    );
    cleanups.push(async () => {
      for (const breaker of breakers.values()) breaker.dispose();
      await store.close();
    });
    return { store, breakers };
  });
  await Promise.all(members.flatMap((m) => [...m.breakers.values()].map((b) => b.settled())));
  return members;
}

async function trip(breaker: CircuitBreaker): Promise<void> {
  await breaker.call(() => Promise.reject(new Error('down'))).catch(() => {});
  await breaker.settled();
}

/** A counter of CLUSTER INFO or INFO on each node, by node. */
async function counters(pattern: RegExp, section: 'cluster' | 'commandstats') {
  const read = async (node: ClusterNode) => {
    const text = (
      section === 'cluster'
        ? await node.admin.call('CLUSTER', 'INFO')
        : await node.admin.call('INFO', 'commandstats')
    ) as string;
    return text
      .split('\r\n')
      .filter((line) => pattern.test(line))
      .reduce((sum, line) => sum + Number(/(?::|calls=)(\d+)/.exec(line)?.[1] ?? 0), 0);
  };
  return new Map(await Promise.all(cluster.live.map(async (n) => [n, await read(n)] as const)));
}

const delta = (after: Map<ClusterNode, number>, before: Map<ClusterNode, number>) =>
  new Map([...after].map(([node, n]) => [node, n - (before.get(node) ?? 0)]));

describe('keys', () => {
  it("keeps each breaker's keys in one slot, on that slot's master, for names on every master", async () => {
    const names = (await namesOnEveryMaster(cluster, `keys ${++run}`, breakerSlot)).flat();
    const [member] = await fleet(names, 1);
    for (const breaker of member?.breakers.values() ?? []) await trip(breaker);
    const masters = await cluster.masters();
    expect(masters).toHaveLength(3);
    for (const name of names) {
      const keys = Object.values(member?.store.keys(name) ?? {});
      const slot = breakerSlot(name);
      expect(new Set(keys.map(breakerSlotOfKey)).size).toBe(1);
      const owner = await cluster.masterOf(slot);
      for (const master of masters) {
        const held = (await master.admin.call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
        // Every key of the record (a trip writes all six), on the owner alone.
        expect(keys.filter((key) => held.includes(key))).toEqual(master === owner ? keys : []);
      }
    }
  });
});

describe('sharded pub/sub (the default on a Cluster)', () => {
  it('publishes a change only inside its shard, to the stores that follow the breaker', async () => {
    const names = (await namesOnEveryMaster(cluster, `sharded ${++run}`, breakerSlot)).flat();
    const members = await fleet(names, 3);
    expect(members[0]?.store.publication).toBe('sharded');
    const busBefore = await counters(/messages_publish(shard)?_received/, 'cluster');
    const classicBefore = await counters(/^cmdstat_publish:/, 'commandstats');
    const shardedBefore = await counters(/^cmdstat_spublish:/, 'commandstats');
    for (const name of names) await trip(members[0]?.breakers.get(name) as CircuitBreaker);
    for (const member of members) {
      for (const breaker of member.breakers.values()) {
        expect(await waitFor(() => breaker.state === 'open', BOUND_MS)).toBe(true);
      }
    }
    // One SPUBLISH per change, on the breaker's master; no PUBLISH anywhere.
    const spublished = delta(await counters(/^cmdstat_spublish:/, 'commandstats'), shardedBefore);
    const published = delta(await counters(/^cmdstat_publish:/, 'commandstats'), classicBefore);
    for (const name of names) {
      const owner = await cluster.masterOf(breakerSlot(name));
      expect(spublished.get(owner)).toBe(1);
    }
    expect([...published.values()].every((n) => n === 0)).toBe(true);
    // On the cluster bus each change went to its master's replica only: 3 messages in all,
    // where a classic PUBLISH would reach every other node (5 each).
    let bus = new Map<ClusterNode, number>();
    const sum = () => [...bus.values()].reduce((a, b) => a + b, 0);
    await waitFor(async () => {
      bus = delta(await counters(/messages_publish(shard)?_received/, 'cluster'), busBefore);
      return sum() >= names.length;
    }, BOUND_MS);
    await new Promise((resolve) => setTimeout(resolve, 100));
    bus = delta(await counters(/messages_publish(shard)?_received/, 'cluster'), busBefore);
    expect(sum()).toBe(names.length);
    for (const replica of await Promise.all(
      (await cluster.masters()).map(async (m) => (await cluster.replicasOf(m))[0]),
    )) {
      expect(bus.get(replica as ClusterNode)).toBe(1);
    }
  });

  it('follows a slot that moves to another master: its breakers still hear every change', async () => {
    const [[moving] = [], [other] = []] = await namesOnEveryMaster(
      cluster,
      `moving ${++run}`,
      breakerSlot,
    );
    const names = [moving as string, other as string];
    const [a, b] = await fleet(names, 2);
    const slot = breakerSlot(moving as string);
    const from = await cluster.masterOf(slot);
    const to = (await cluster.masters()).find((master) => master !== from) as ClusterNode;
    await cluster.moveSlot(slot, to);
    expect((await cluster.masterOf(slot)).id).toBe(to.id);
    // The old master ended the subscriptions of the slot; they come back on the new one.
    const channel = `circuit_breaker:{${moving}}:changes`;
    const subscribed = async () => {
      const reply = (await to.admin.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number];
      return Number(reply[1]) === 2;
    };
    expect(await waitFor(subscribed, BOUND_MS)).toBe(true);
    // The breaker's record moved with the slot, and its changes reach the other store (whose
    // resync runs every minute: this is the feed).
    await trip(a?.breakers.get(moving as string) as CircuitBreaker);
    expect(await waitFor(() => b?.breakers.get(moving as string)?.state === 'open', BOUND_MS)).toBe(
      true,
    );
    await cluster.moveSlot(slot, from);
  });

  it('subscribes again when the master that keeps the slot ends its subscriptions', async () => {
    const [[name] = []] = await namesOnEveryMaster(cluster, `kept ${++run}`, breakerSlot);
    const [a, b] = await fleet([name as string], 2);
    const slot = breakerSlot(name as string);
    const owner = await cluster.masterOf(slot);
    const channel = `circuit_breaker:{${name}}:changes`;
    const subscribed = async () => {
      const reply = (await owner.admin.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number];
      return Number(reply[1]) === 2;
    };
    expect(await waitFor(subscribed, BOUND_MS)).toBe(true);
    // Told again that the slot is its own, Redis 7.0 ends the slot's sharded subscriptions with
    // a SUNSUBSCRIBE (as when it gives the slot away), though the slot map stays the same.
    await owner.admin.call('CLUSTER', 'SETSLOT', String(slot), 'NODE', owner.id);
    expect((await cluster.masterOf(slot)).id).toBe(owner.id);
    expect(await waitFor(subscribed, BOUND_MS)).toBe(true);
    await trip(a?.breakers.get(name as string) as CircuitBreaker);
    expect(await waitFor(() => b?.breakers.get(name as string)?.state === 'open', BOUND_MS)).toBe(
      true,
    );
  });

  it('subscribes a breaker whose slot moved before the feed knew (SSUBSCRIBE meets MOVED)', async () => {
    const [[known, moved] = []] = await namesOnEveryMaster(
      cluster,
      `stale ${++run}`,
      breakerSlot,
      2,
    );
    // The feeds are open, with the slot map of before the move.
    const [a, b] = await fleet([known as string], 2);
    const slot = breakerSlot(moved as string);
    const from = await cluster.masterOf(slot);
    const to = (await cluster.masters()).find((master) => master !== from) as ClusterNode;
    await cluster.moveSlot(slot, to);
    // No subscription of that slot existed, so nothing told the feeds. Following the breaker
    // sends its SSUBSCRIBE to the old master, which answers MOVED.
    const problems: string[] = [];
    const follow = (store: RedisStore | undefined) => {
      const breaker = new CircuitBreaker(moved as string, {
        store: store as RedisStore,
        failMax: 1,
      });
      breaker.on('storeError', ({ error }) => problems.push(String(error)));
      breaker.on('degraded', ({ error }) => problems.push(`degraded: ${String(error)}`));
      cleanups.push(() => breaker.dispose());
      return breaker;
    };
    const [one, two] = [follow(a?.store), follow(b?.store)];
    await Promise.all([one.settled(), two.settled()]);
    expect(problems).toEqual([]);
    await trip(one);
    expect(await waitFor(() => two.state === 'open', BOUND_MS)).toBe(true);
    expect(problems).toEqual([]);
    await cluster.moveSlot(slot, from);
  });
});

describe('classic pub/sub on a Cluster (pubsub: classic)', () => {
  it('reaches every store through one channel, broadcast to every node', async () => {
    const names = (await namesOnEveryMaster(cluster, `classic ${++run}`, breakerSlot)).flat();
    const members = await fleet(names, 2, { pubsub: 'classic' });
    expect(members[0]?.store.publication).toBe('plain');
    const busBefore = await counters(/messages_publish_received/, 'cluster');
    for (const name of names) await trip(members[0]?.breakers.get(name) as CircuitBreaker);
    for (const name of names) {
      expect(await waitFor(() => members[1]?.breakers.get(name)?.state === 'open', BOUND_MS)).toBe(
        true,
      );
    }
    // Every change reached every other node of the cluster over the bus.
    const received = async () =>
      [...delta(await counters(/messages_publish_received/, 'cluster'), busBefore).values()].reduce(
        (a, b) => a + b,
        0,
      );
    expect(await waitFor(async () => (await received()) >= names.length * 5, BOUND_MS)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await received()).toBe(names.length * 5);
  });
});
