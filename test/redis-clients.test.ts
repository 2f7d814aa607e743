import { type AddressInfo, createServer } from 'node:net';
import fc from 'fast-check';
import { Redis as IORedis5 } from 'ioredis';
import { Redis as IORedis6 } from 'ioredis6';
import { Redis as IOValkey } from 'iovalkey';
import { createClient as createClient6, createCluster as createCluster6 } from 'redis';
import { createClient as createClient5 } from 'redis5';
import { CircuitBreaker } from 'statebreaker';
import {
  DEFAULT_PREFIX,
  type RedisClient,
  RedisStore,
  RedisStoreTimeoutError,
} from 'statebreaker/redis';
import type { StoredRecord } from 'statebreaker/store';
import { getBreakerPaths } from 'statebreaker/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portOf } from '../src/stores/redis/client.js';
import { fenceKey } from '../src/stores/redis/keys.js';
import { FaultProxy } from './support/fault-proxy.js';
import { FLEET_RESYNC_MS, FleetRun } from './support/fleet-model.js';
import { type CallOutcome, cheapCommand, fleetConfig } from './support/fleet-model-commands.js';
import { FleetRedis } from './support/fleet-model-redis.js';
import {
  CLIENT_FAMILIES,
  type ClientFamily,
  type ClientSetup,
  closeClient,
  connectClient,
  type ServerAddress,
  type TestClient,
} from './support/redis-clients.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';
import { runPathOnStores } from './support/store-paths.js';
import { snapshotJson } from './support/stored-snapshot.js';

// Every client family the store takes, on a real redis-server: the statechart's paths on a
// fleet of three, the fleet property, and the faults that reach a client's own code (Redis
// killed and restarted, frozen, the subscriber's connection killed, a reply delayed behind the
// feed), on RESP2 and RESP3 where the client speaks both. ioredis 5 runs the full breadth in the
// other files; here it is the reference the mixed fleet shares breakers with.

const paths = getBreakerPaths();
const cases = paths.paths.map((path) => [path.description, path] as const);
// Every path runs on ioredis 5 (test/redis-paths.test.ts); here what differs is the client's
// own code (its scripts, replies and pushes), which every path exercises: a family's default
// protocol runs every fourth path, another protocol or a reply option every eighth.
const everyFourth = cases.filter((_, i) => i % 4 === 0);
const everyEighth = cases.filter((_, i) => i % 8 === 0);

interface Variant {
  readonly family: ClientFamily;
  readonly setup: ClientSetup;
  readonly label: string;
  readonly full: boolean;
}

const VARIANTS: readonly Variant[] = [
  { family: 'ioredis6', setup: { resp: 3 }, label: 'RESP3', full: true },
  {
    family: 'ioredis6',
    setup: { resp: 3, replyMapping: 'resp3' },
    label: "RESP3, replyMapping 'resp3'",
    full: false,
  },
  { family: 'ioredis6', setup: { resp: 2 }, label: 'RESP2', full: false },
  { family: 'iovalkey', setup: {}, label: 'RESP2', full: true },
  { family: 'node-redis5', setup: { resp: 2 }, label: 'RESP2', full: true },
  { family: 'node-redis5', setup: { resp: 3 }, label: 'RESP3', full: false },
  { family: 'node-redis6', setup: { resp: 3 }, label: 'RESP3', full: true },
  { family: 'node-redis6', setup: { resp: 2 }, label: 'RESP2', full: false },
  {
    family: 'node-redis6',
    setup: { resp: 3, extra: { commandOptions: { typeMapping: { 36: Buffer } } } },
    label: 'RESP3, typeMapping: bulk strings as Buffers',
    full: false,
  },
];

let server: RedisServer;
let admin: IORedis5;

beforeAll(async () => {
  server = await RedisServer.start();
  admin = new IORedis5({ path: server.path });
});

afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

let names = 0;
const fresh = (base: string) => `${base} ${++names}`;

async function trip(breaker: CircuitBreaker): Promise<void> {
  await breaker.call(() => Promise.reject(new Error('upstream down'))).catch(() => {});
  await breaker.settled();
}

// Subscribed connections, by their subscription counts (CLIENT LIST's TYPE pubsub does not
// list a RESP3 subscriber on every Redis version).
async function subscriberIds(target: RedisServer): Promise<string[]> {
  const list = String(await (await adminOf(target)).call('CLIENT', 'LIST'));
  return list
    .split('\n')
    .filter((line) => /\b(sub|ssub)=[1-9]/.test(line))
    .map((line) => /\bid=(\d+)/.exec(line)?.[1] as string);
}

describe.each(VARIANTS)('$family ($label): model-based', ({ family, setup, full }) => {
  const connect = () => connectClient(family, { path: server.path }, setup);
  const release = (client: TestClient) => closeClient(client);
  describe(`a fleet of three (steps round-robin), every ${full ? 'fourth' : 'eighth'} path`, () => {
    it.each(full ? everyFourth : everyEighth)('%s', (_, path) =>
      runPathOnStores(path, paths, 3, connect, { release, noStoreErrors: true }),
    );
  });
  if (full && family !== 'iovalkey') {
    describe('a fleet of three on sharded pub/sub, every eighth path', () => {
      const store = { pubsub: 'sharded' as const };
      it.each(everyEighth)('%s', (_, path) =>
        runPathOnStores(path, paths, 3, connect, { release, store, noStoreErrors: true }),
      );
    });
  }
});

const outcomes = fc.array(fc.constantFrom<CallOutcome>('success', 'failure', 'ignored'), {
  minLength: 1,
  maxLength: 4,
});

describe.each(CLIENT_FAMILIES)('%s', (family) => {
  // ioredis 5 runs it at length in test/fleet-property.test.ts.
  it.skipIf(family === 'ioredis5')(
    'the fleet property: three instances through fault proxies, the invariants hold',
    async () => {
      const fleet = await FleetRedis.start(3, { resyncInterval: FLEET_RESYNC_MS, family });
      let run = 0;
      try {
        await fc.assert(
          fc.asyncProperty(
            fleetConfig,
            fc.array(cheapCommand, { minLength: 5, maxLength: 25, size: 'max' }),
            outcomes,
            async (config, commands, settleWith) => {
              await fleet.flushAll();
              fleet.hostOffsets.fill(0);
              const fleetRun = new FleetRun(fleet, `${family} fleet ${++run}`, config);
              try {
                for (const command of commands) await fleetRun.step(command);
                await fleetRun.quiesce(settleWith);
              } finally {
                await fleetRun.dispose();
              }
            },
          ),
          { numRuns: 12 },
        );
      } finally {
        await fleet.close();
      }
      expect(run).toBeGreaterThanOrEqual(12);
    },
    120_000,
  );

  describe('faults', () => {
    let own: RedisServer;
    const clients: TestClient[] = [];
    const stores: RedisStore[] = [];

    beforeAll(async () => {
      own = await RedisServer.start();
    });

    afterAll(async () => {
      await Promise.all(stores.map((store) => store.close()));
      await Promise.all(clients.map((client) => closeClient(client)));
      await own?.stop();
    });

    async function pair(base: string, timeout = 300) {
      const name = fresh(base);
      const members = await Promise.all(
        [0, 1].map(async () => {
          const client = await connectClient(family, { path: own.path });
          clients.push(client);
          const store = new RedisStore(client, { timeout, resyncInterval: 500 });
          stores.push(store);
          const breaker = new CircuitBreaker(name, { store, failMax: 1, resetTimeout: 600_000 });
          await breaker.settled();
          return { client, store, breaker };
        }),
      );
      return members as [(typeof members)[0], (typeof members)[0]];
    }

    it('Redis killed and restarted empty: a trip after the restart reaches the other instance', async () => {
      const [a, b] = await pair('restart');
      await own.restart();
      await waitFor(
        async () => (await a.store.readRecord('ping').catch(() => false)) !== false,
        10_000,
      );
      await trip(a.breaker);
      expect(await waitFor(() => a.breaker.state === 'open', 10_000)).toBe(true);
      expect(await waitFor(() => b.breaker.state === 'open', 10_000)).toBe(true);
    });

    it('Redis frozen: calls reject in time naming the address; once it thaws, trips travel again', async () => {
      const [a, b] = await pair('frozen');
      own.pause();
      try {
        const error = await a.store.readRecord('frozen').catch((e: unknown) => e);
        expect(error).toBeInstanceOf(RedisStoreTimeoutError);
        expect(String(error)).toContain(own.path);
      } finally {
        own.resume();
      }
      await trip(b.breaker);
      expect(await waitFor(() => a.breaker.state === 'open', 10_000)).toBe(true);
    });

    it("the subscriber's connection killed: a trip written meanwhile still arrives", async () => {
      const [a, b] = await pair('subscriber');
      const before = await subscriberIds(own);
      expect(before.length).toBeGreaterThanOrEqual(2);
      const killer = await adminOf(own);
      for (const id of before) await killer.call('CLIENT', 'KILL', 'ID', id).catch(() => {});
      await trip(a.breaker);
      expect(await waitFor(() => b.breaker.state === 'open', 10_000)).toBe(true);
      // And the subscriber is back: the next change travels by the feed.
      expect(await waitFor(async () => (await subscriberIds(own)).length >= 2, 10_000)).toBe(true);
    });

    it('a reply delayed behind the feed: the writer keeps its own trip, both agree', async () => {
      const proxy = await FaultProxy.start(own.path);
      try {
        const name = fresh('late reply');
        const slow = await connectClient(family, { path: proxy.path });
        const fast = await connectClient(family, { path: own.path });
        clients.push(slow, fast);
        const [writer, other] = [slow, fast].map((client) => {
          const store = new RedisStore(client, { timeout: 1_000, resyncInterval: 60_000 });
          stores.push(store);
          return new CircuitBreaker(name, { store, failMax: 1, resetTimeout: 600_000 });
        }) as [CircuitBreaker, CircuitBreaker];
        await Promise.all([writer.settled(), other.settled()]);
        const errors: unknown[] = [];
        writer.on('storeError', ({ error }) => errors.push(error));
        proxy.commands.delayReplies(150);
        await trip(writer);
        expect(await waitFor(() => other.state === 'open', 10_000)).toBe(true);
        expect(writer.state).toBe('open');
        expect(writer.context.generation).toBe(other.context.generation);
        expect(errors).toEqual([]);
        expect(proxy.counters.repliesDelayed).toBeGreaterThan(0);
        expect(proxy.errors).toEqual([]);
      } finally {
        proxy.commands.clear();
        await proxy.close();
      }
    });

    it("close() ends the store's subscriber and leaves the caller's client open", async () => {
      const client = await connectClient(family, { path: own.path });
      clients.push(client);
      const store = new RedisStore(client, { subscriberIdleTimeout: 50 });
      const breaker = new CircuitBreaker(fresh('close'), { store });
      await breaker.settled();
      const ownSubscribers = async () => (await subscriberIds(own)).length;
      expect(await ownSubscribers()).toBeGreaterThanOrEqual(1);
      const before = await ownSubscribers();
      await store.close();
      expect(await waitFor(async () => (await ownSubscribers()) === before - 1)).toBe(true);
      expect(await ping(client)).toBe('PONG');
    });

    it.each([
      ['a socket path with no server', 'ENOENT'],
      ['a TCP port nobody listens on', 'ECONNREFUSED'],
    ] as const)('%s: the timeout names the address, with the cause (%s)', async (_, code) => {
      const address: ServerAddress =
        code === 'ENOENT'
          ? { path: `${own.path}.missing` }
          : { host: '127.0.0.1', port: await freePort() };
      const client = unreachable(family, address);
      try {
        const store = new RedisStore(client as RedisClient, { timeout: 300 });
        const error = (await store.load('anything').catch((e: unknown) => e)) as Error;
        await store.close();
        expect(error).toBeInstanceOf(RedisStoreTimeoutError);
        expect(error.message).toContain(
          'path' in address ? address.path : `127.0.0.1:${address.port}`,
        );
        expect((error.cause as NodeJS.ErrnoException | undefined)?.code).toBe(code);
      } finally {
        await closeClient(client as TestClient);
      }
    });
  });
});

// A port that was free a moment ago: listened on, then closed.
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const admins = new Map<RedisServer, IORedis5>();
async function adminOf(target: RedisServer): Promise<IORedis5> {
  let found = admins.get(target);
  if (found === undefined) {
    found = new IORedis5({ path: target.path });
    found.on('error', () => {});
    admins.set(target, found);
  }
  return found;
}
afterAll(() => {
  for (const client of admins.values()) client.disconnect();
});

async function ping(client: TestClient): Promise<unknown> {
  return 'sendCommand' in client && !('defineCommand' in client)
    ? (client as { sendCommand(args: string[]): Promise<unknown> }).sendCommand(['PING'])
    : (client as IORedis5).ping();
}

// A client pointed at nothing, as a user's would be before its server is up: connecting, with
// an error listener, never awaited.
function unreachable(family: ClientFamily, address: ServerAddress): object {
  const retry = { ...address, retryStrategy: () => 50, maxRetriesPerRequest: null };
  let client: object;
  if (family === 'ioredis5') client = new IORedis5(retry);
  else if (family === 'ioredis6') client = new IORedis6(retry);
  else if (family === 'iovalkey') client = new IOValkey(retry);
  else {
    const options = { socket: { ...address, reconnectStrategy: () => 50 } };
    const made = family === 'node-redis5' ? createClient5(options) : createClient6(options);
    made.on('error', () => {});
    made.connect().catch(() => {});
    return made;
  }
  (client as IORedis5).on('error', () => {});
  return client;
}

describe('what the store refuses', () => {
  it.each(['ioredis5', 'ioredis6', 'iovalkey'] as const)(
    '%s with keyPrefix: a TypeError that says to use the prefix option',
    async (family) => {
      const client = await connectClient(
        family,
        { path: server.path },
        { extra: { keyPrefix: 'app:' } },
      );
      try {
        expect(() => new RedisStore(client)).toThrow(/keyPrefix "app:".*prefix/);
      } finally {
        await closeClient(client);
      }
    },
  );

  it('something that is no client: a TypeError naming what was given', () => {
    expect(() => new RedisStore({} as RedisClient)).toThrow(/node-redis.*got an object/);
    expect(() => new RedisStore('redis://x' as unknown as RedisClient)).toThrow(
      /got "redis:\/\/x"/,
    );
  });
});

// The operator fence goes through the client port like every other command: each family
// carries the fence's key and arguments, its FENCED reply, liftFence's script and PTTL.
describe.each(CLIENT_FAMILIES)('%s: the operator fence', (family) => {
  let client: TestClient;
  let store: RedisStore;

  beforeAll(async () => {
    client = await connectClient(family, { path: server.path });
    store = new RedisStore(client, { timeout: 5_000 });
  });

  afterAll(async () => {
    await store.close();
    await closeClient(client);
  });

  const record = (version: number, writeId: string): StoredRecord => ({
    version,
    snapshot: JSON.parse(snapshotJson('closed', {}, writeId)),
  });
  const fenceOf = (name: string) => admin.get(fenceKey(DEFAULT_PREFIX, name));

  it("an operator's conflict holds the fleet's writes back until its next write lands", async () => {
    const name = fresh(`fence ${family}`);
    expect(await store.compareAndSet(name, 0, record(1, 'fleet:1'))).toMatchObject({ ok: true });
    // The operator wrote on what it read before the fleet's write: a conflict sets its fence.
    const conflict = await store.compareAndSet(name, 0, record(1, 'op:1'), undefined, 'op');
    expect(conflict).toMatchObject({ ok: false, currentVersion: 1 });
    expect(await fenceOf(name)).toBe('op');
    const fleetWrite = store.compareAndSet(name, 1, record(2, 'fleet:2'), 'fleet:1');
    const operatorWrite = await store.compareAndSet(name, 1, record(2, 'op:2'), 'fleet:1', 'op');
    expect(operatorWrite.ok).toBe(true);
    // The fleet's write waited behind the fence, then met the operator's record.
    const fleet = await fleetWrite;
    expect(fleet).toMatchObject({ ok: false, currentVersion: 2 });
    expect(fleet.ok === false && fleet.current?.snapshot.writeId).toBe('op:2');
    expect(await fenceOf(name)).toBeNull();
  });

  it('liftFence lifts only its own fence; the fleet then writes', async () => {
    const name = fresh(`lift ${family}`);
    await store.compareAndSet(name, 0, record(1, 'fleet:1'));
    await store.compareAndSet(name, 0, record(1, 'op:1'), undefined, 'op');
    await store.liftFence(name, 'another operator');
    expect(await fenceOf(name)).toBe('op');
    await store.liftFence(name, 'op');
    expect(await fenceOf(name)).toBeNull();
    expect(await store.compareAndSet(name, 1, record(2, 'fleet:2'), 'fleet:1')).toMatchObject({
      ok: true,
    });
  });

  it('recordExpiry reads the PTTL of the record: null while it has none or is not there', async () => {
    const name = fresh(`expiry ${family}`);
    expect(await store.recordExpiry(name)).toBeNull();
    await store.compareAndSet(name, 0, record(1, 'fleet:1'));
    expect(await store.recordExpiry(name)).toBeNull();
    await admin.pexpire(store.keys(name).version, 60_000);
    const ms = await store.recordExpiry(name);
    expect(ms).toBeGreaterThan(0);
    expect(ms).toBeLessThanOrEqual(60_000);
  });
});

describe('a fleet mixing every client family on one breaker', () => {
  it.each(['classic', 'sharded'] as const)(
    '%s pub/sub: a trip by any member reaches all, and so does the reset',
    async (pubsub) => {
      const name = fresh(`mixed ${pubsub}`);
      const clients = await Promise.all(
        CLIENT_FAMILIES.map((family) => connectClient(family, { path: server.path })),
      );
      const stores = clients.map((client) => new RedisStore(client, { pubsub }));
      const breakers = stores.map(
        (store) => new CircuitBreaker(name, { store, failMax: 1, resetTimeout: 600_000 }),
      );
      try {
        await Promise.all(breakers.map((breaker) => breaker.settled()));
        for (const [i, tripper] of breakers.entries()) {
          await trip(tripper);
          const family = CLIENT_FAMILIES[i] as string;
          expect(
            await waitFor(() => breakers.every((b) => b.state === 'open'), 10_000),
            `trip by ${family}`,
          ).toBe(true);
          await tripper.reset();
          expect(
            await waitFor(() => breakers.every((b) => b.state === 'closed'), 10_000),
            `reset by ${family}`,
          ).toBe(true);
        }
      } finally {
        for (const breaker of breakers) breaker.dispose();
        await Promise.all(stores.map((store) => store.close()));
        // The stores left every client open.
        for (const client of clients) expect(await ping(client)).toBe('PONG');
        await Promise.all(clients.map((client) => closeClient(client)));
      }
    },
  );
});

describe('the address a message names', () => {
  // A password may hold an unencoded `@`: the user part ends at the last one before the host.
  it.each([
    ['redis://:s3cr@t-pass@127.0.0.1:1', 's3cr@t-pass'],
    ['redis://default:pa@zz9w@127.0.0.1:1/0', 'pa@zz9w'],
    ['redis://user:p%40zz9w@127.0.0.1:1', 'p%40zz9w'],
  ])(
    'node-redis with url %s: the timeout names 127.0.0.1:1 and no part of the password',
    async (url, secret) => {
      const client = createClient6({ url, socket: { reconnectStrategy: () => 50 } });
      client.on('error', () => {});
      client.connect().catch(() => {});
      const store = new RedisStore(client as unknown as RedisClient, { timeout: 200 });
      try {
        const error = (await store.load('x').catch((e: unknown) => e)) as RedisStoreTimeoutError;
        expect(error).toBeInstanceOf(RedisStoreTimeoutError);
        expect(error.message).toContain('127.0.0.1:1');
        for (const part of [...secret.split('@'), 'user']) {
          expect(error.message).not.toContain(part);
          expect(error.address).not.toContain(part);
        }
      } finally {
        await store.close();
        client.destroy();
      }
    },
  );

  it('a node-redis cluster seeded by URLs: its seeds, without their user part', () => {
    const cluster = createCluster6({
      rootNodes: [{ url: 'redis://app:pa@zz9w@10.9.8.7:7001' }, { url: 'redis://10.9.8.8' }],
    });
    const port = portOf(cluster);
    port.release();
    expect(port.address).toBe('Cluster 10.9.8.7:7001,10.9.8.8:6379');
  });
});

describe('a node-redis client handed over before connect()', () => {
  it.each(['5', '6'] as const)(
    'node-redis %s: a call names the address and says to connect; once connected, the store works',
    async (major) => {
      const options = { socket: { path: server.path, tls: false as const } };
      const client = major === '5' ? createClient5(options) : createClient6(options);
      client.on('error', () => {});
      const store = new RedisStore(client as unknown as RedisClient, { timeout: 500 });
      try {
        const error = (await store.load('early').catch((e: unknown) => e)) as Error;
        expect(error.message).toContain(server.path);
        expect(error.message).toContain('await client.connect()');
        await client.connect();
        expect(await store.load('early')).toBeNull();
      } finally {
        await store.close();
        client.destroy();
      }
    },
  );
});
