import type { Cluster as IORedis5Cluster } from 'ioredis';
import { CircuitBreaker } from 'statebreaker';
import { RedisStore, type RedisStoreOptions, RedisStoreTimeoutError } from 'statebreaker/redis';
import { getBreakerPaths } from 'statebreaker/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLIENT_FAMILIES,
  type ClientFamily,
  closeClient,
  connectClusterClient,
  type TestClusterClient,
} from './support/redis-clients.js';
import { type ClusterNode, namesOnEveryMaster, RedisCluster } from './support/redis-cluster.js';
import { breakerSlot } from './support/redis-slots.js';
import { waitFor } from './support/redis-wait.js';
import { runPathOnStores } from './support/store-paths.js';

// Every Cluster client family on a real Redis Cluster of 3 masters and 3 replicas: a sample of
// the statechart's paths on a fleet of three, then one fleet mixing the families, whose trips
// must reach every member on every master, before and after a master is killed and its
// replica promoted. ioredis 5 runs every path in test/cluster-paths.test.ts and the failover
// under OS processes in test/cluster-failover.test.ts.
//
// A Cluster fleet shares one change feed: sharded pub/sub (the default where the server has
// SPUBLISH) needs clients with per-shard subscribers (ioredis 5.5+, node-redis); iovalkey 0.4
// has none, so its store falls back to classic with a warning and joins a fleet whose stores
// all say `pubsub: 'classic'`.

const paths = getBreakerPaths();
const sample = paths.paths
  .filter((_, i) => i % 8 === 0)
  .map((path) => [path.description, path] as const);
const SHARDED: readonly ClientFamily[] = ['ioredis5', 'ioredis6', 'node-redis5', 'node-redis6'];

let cluster: RedisCluster;
const opened: TestClusterClient[] = [];

// Generous for a loaded machine: where a check is not about timeouts, a store whose Redis answers
// later than the default 500 ms would rightly degrade and fail a path that expects no store error.
const STORE_TIMEOUT_MS = 5_000;
const START_BOUND_MS = 60_000;

beforeAll(async () => {
  cluster = await RedisCluster.start({ boundMs: START_BOUND_MS });
}, START_BOUND_MS);

afterAll(async () => {
  await Promise.all(opened.map((client) => closeClient(client)));
  await cluster?.stop();
});

async function connect(family: ClientFamily): Promise<TestClusterClient> {
  const client = await connectClusterClient(family, cluster.seeds);
  opened.push(client);
  return client;
}

async function trip(breaker: CircuitBreaker): Promise<void> {
  await breaker.call(() => Promise.reject(new Error('upstream down'))).catch(() => {});
  await breaker.settled();
}

describe.each([
  ...SHARDED.filter((family) => family !== 'ioredis5').map((family) => ({
    family,
    pubsub: 'auto' as const,
  })),
  { family: 'iovalkey' as const, pubsub: 'classic' as const },
])(
  '$family Cluster (pubsub $pubsub): a fleet of three, every eighth path',
  ({ family, pubsub }) => {
    // Three clients serve every path (each store still opens its own subscribers).
    const clients: TestClusterClient[] = [];
    let next = 0;
    const client = async () => {
      if (clients.length < 3) clients.push(await connect(family));
      return clients[next++ % clients.length] as TestClusterClient;
    };
    const options = {
      release: () => {},
      store: { pubsub, timeout: STORE_TIMEOUT_MS },
      noStoreErrors: true,
    };
    it.each(sample)('%s', (_, path) => runPathOnStores(path, paths, 3, client, options));
  },
);

describe('iovalkey Cluster (no sharded subscribers)', () => {
  it("under pubsub 'auto' uses classic pub/sub and warns once; refuses pubsub 'sharded'", async () => {
    const client = await connect('iovalkey');
    const warnings: string[] = [];
    const listener = (warning: Error & { code?: string }) => {
      if (warning.code === 'STATEBREAKER_CLASSIC_PUBSUB') warnings.push(warning.message);
    };
    process.on('warning', listener);
    const stores = [new RedisStore(client), new RedisStore(client)];
    try {
      await Promise.all(stores.map((store) => store.load('classic fallback')));
      expect(stores.map((store) => store.publication)).toEqual(['plain', 'plain']);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/no sharded subscribers.*pubsub: 'classic'/);
      expect(() => new RedisStore(client, { pubsub: 'sharded' })).toThrow(/pubsub "sharded"/);
    } finally {
      process.off('warning', listener);
      await Promise.all(stores.map((store) => store.close()));
    }
  });
});

interface Member {
  readonly family: ClientFamily;
  readonly store: RedisStore;
  readonly breakers: Map<string, CircuitBreaker>;
}

async function mixedFleet(
  families: readonly ClientFamily[],
  names: readonly string[],
  options: RedisStoreOptions,
): Promise<Member[]> {
  return Promise.all(
    families.map(async (family) => {
      const store = new RedisStore(await connect(family), {
        timeout: 500,
        resyncInterval: 500,
        ...options,
      });
      const breakers = new Map(
        names.map((name) => [
          name,
          new CircuitBreaker(name, { store, failMax: 1, resetTimeout: 600_000 }),
        ]),
      );
      await Promise.all([...breakers.values()].map((breaker) => breaker.settled()));
      return { family, store, breakers };
    }),
  );
}

const allAre = (fleet: readonly Member[], name: string, state: string) =>
  fleet.every((member) => member.breakers.get(name)?.state === state);

async function closeFleet(fleet: readonly Member[]): Promise<void> {
  for (const member of fleet) for (const breaker of member.breakers.values()) breaker.dispose();
  await Promise.all(fleet.map((member) => member.store.close()));
}

describe('a fleet mixing client families on one Cluster', () => {
  it("classic pub/sub (pubsub: 'classic' on every store): every family with iovalkey, a trip on each master reaches all", async () => {
    const names = (await namesOnEveryMaster(cluster, 'classic mix', breakerSlot)).flat();
    const fleet = await mixedFleet(CLIENT_FAMILIES, names, { pubsub: 'classic' });
    try {
      for (const [i, name] of names.entries()) {
        const tripper = fleet[i % fleet.length] as Member;
        await trip(tripper.breakers.get(name) as CircuitBreaker);
        expect(
          await waitFor(() => allAre(fleet, name, 'open'), 10_000),
          `${name} by ${tripper.family}`,
        ).toBe(true);
      }
    } finally {
      await closeFleet(fleet);
    }
  });

  // The periodic check kept out of the way (resyncInterval 10 min): after the failover the feed
  // itself must deliver, on every family.
  it('sharded pub/sub: trips reach every family on every master, and through the feed after a master fails over', async () => {
    const lists = await namesOnEveryMaster(cluster, 'sharded mix', breakerSlot, SHARDED.length + 1);
    const names = lists.flat();
    const fleet = await mixedFleet(SHARDED, names, { resyncInterval: 600_000 });
    try {
      expect(fleet.map((member) => member.store.publication)).toEqual(SHARDED.map(() => 'sharded'));
      // Before: on each master, a trip by each family.
      for (const list of lists) {
        for (const [i, member] of fleet.entries()) {
          const name = list[i] as string;
          await trip(member.breakers.get(name) as CircuitBreaker);
          expect(
            await waitFor(() => allAre(fleet, name, 'open'), 10_000),
            `${name} by ${member.family}`,
          ).toBe(true);
        }
      }
      // A master killed: its replica takes the slots; every family's subscribers follow.
      const last = lists.map((list) => list[SHARDED.length] as string);
      const master: ClusterNode = await cluster.masterOf(breakerSlot(last[0] as string));
      await cluster.kill(master);
      expect(await cluster.waitForFailover(master, 30_000)).toBe(true);
      for (const [i, name] of last.entries()) {
        const member = fleet[i % fleet.length] as Member;
        // The write may meet the failover: the breaker retries on its next call.
        expect(
          await waitFor(async () => {
            await trip(member.breakers.get(name) as CircuitBreaker);
            return member.breakers.get(name)?.state === 'open';
          }, 20_000),
        ).toBe(true);
        const agreed = await waitFor(() => allAre(fleet, name, 'open'), 20_000);
        if (!agreed) {
          console.error(
            name,
            fleet.map((m) => `${m.family}: ${m.breakers.get(name)?.state}`),
          );
        }
        expect(agreed, `${name} by ${member.family} after failover`).toBe(true);
      }
    } finally {
      await closeFleet(fleet);
    }
  }, 90_000);
});

// After the failover above: one master has no replica left. node-redis puts a cluster's classic
// subscriber on a node of its choosing; the test kills that node (a replica, or a master that a
// replica takes over) and writes a trip at once, with the periodic check kept out of the way.
describe('node-redis Cluster, classic pub/sub', () => {
  async function holderOf(clientName: string): Promise<ClusterNode | undefined> {
    for (const node of cluster.live) {
      const list = String(await node.admin.call('CLIENT', 'LIST').catch(() => ''));
      const lines = list.split('\n');
      if (lines.some((l) => l.includes(`name=${clientName} `) && /\bsub=[1-9]/.test(l)))
        return node;
    }
    return undefined;
  }

  it('trips reach the store through the feed after the node holding its subscriber dies', async () => {
    const name = 'classic holder';
    const tripper = new RedisStore(await connect('ioredis5'), { pubsub: 'classic' });
    let store: RedisStore | undefined;
    let breaker: CircuitBreaker | undefined;
    let holder: ClusterNode | undefined;
    // A holder whose death the cluster survives: a replica, or a master with a live replica.
    for (let attempt = 0; holder === undefined && attempt < 10; attempt++) {
      const clientName = `classic${attempt}`;
      const client = await connectClusterClient('node-redis6', cluster.seeds, {
        extra: { defaults: { name: clientName } },
      });
      opened.push(client);
      store = new RedisStore(client, { pubsub: 'classic', resyncInterval: 600_000 });
      breaker = new CircuitBreaker(name, { store, failMax: 1, resetTimeout: 600_000 });
      await breaker.settled();
      const node = await holderOf(clientName);
      const view = (await cluster.view()).find((v) => v.port === node?.port);
      const survivable =
        view?.role === 'replica' ||
        (node !== undefined &&
          (await cluster.replicasOf(node)).some((r) => cluster.live.includes(r)));
      if (survivable) holder = node;
      else {
        breaker.dispose();
        await store.close();
      }
    }
    const tripping = new CircuitBreaker(name, {
      store: tripper,
      failMax: 1,
      resetTimeout: 600_000,
    });
    try {
      expect(holder).toBeDefined();
      const role = (await cluster.view()).find((v) => v.port === holder?.port)?.role;
      await cluster.kill(holder as ClusterNode);
      if (role === 'master')
        expect(await cluster.waitForFailover(holder as ClusterNode, 30_000)).toBe(true);
      expect(
        await waitFor(async () => {
          await trip(tripping);
          return tripping.state === 'open';
        }, 20_000),
      ).toBe(true);
      expect(await waitFor(() => breaker?.state === 'open', 20_000)).toBe(true);
    } finally {
      tripping.dispose();
      breaker?.dispose();
      await Promise.all([tripper.close(), store?.close()]);
    }
  }, 90_000);
});

describe('an ioredis Cluster with keyPrefix', () => {
  it("is refused with advice that works on a Cluster: a duplicate without keyPrefix and the store's prefix", async () => {
    const app = (await connectClusterClient('ioredis5', cluster.seeds, {
      extra: { keyPrefix: 'app:' },
    })) as IORedis5Cluster;
    opened.push(app);
    expect(() => new RedisStore(app)).toThrow(
      "new RedisStore(cluster.duplicate([], { keyPrefix: '', redisOptions: { ...cluster.options.redisOptions, keyPrefix: '' } }), { prefix: \"app:circuit_breaker:\" })",
    );
    // The advice, followed as written.
    const advised = app.duplicate([], {
      keyPrefix: '',
      redisOptions: { ...app.options.redisOptions, keyPrefix: '' },
    });
    opened.push(advised);
    const store = new RedisStore(advised, { prefix: 'app:circuit_breaker:' });
    const breaker = new CircuitBreaker('prefixed', { store, failMax: 1, resetTimeout: 600_000 });
    try {
      await trip(breaker);
      expect(breaker.state).toBe('open');
      expect(await app.get('circuit_breaker:{prefixed}:state')).toBe('open');
    } finally {
      breaker.dispose();
      await store.close();
    }
  });
});

// Last, as it ends the cluster: every node killed.
describe('a Cluster whose nodes are all gone', () => {
  it("each family's timeout names the nodes' connection error as its cause", async () => {
    const families = ['ioredis5', 'node-redis6'] as const;
    const stores = await Promise.all(
      families.map(async (family) => new RedisStore(await connect(family), { timeout: 500 })),
    );
    try {
      await Promise.all(stores.map((store) => store.load('warm')));
      for (const node of cluster.live) await cluster.kill(node);
      for (const [i, store] of stores.entries()) {
        let error: unknown;
        const named = await waitFor(async () => {
          error = await store.load('gone').then(
            () => null,
            (e: unknown) => e,
          );
          return error instanceof RedisStoreTimeoutError && error.cause instanceof Error;
        }, 10_000);
        expect(named, `${families[i]}: ${String(error)}`).toBe(true);
        expect(((error as Error).cause as Error).message).toMatch(/ECONNREFUSED|connect/i);
      }
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });
});
