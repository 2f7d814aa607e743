import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CircuitBreaker, LostRecordError } from 'statebreaker';
import { RedisStore, type RedisStoreOptions } from 'statebreaker/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashTag, keySlot } from '../src/stores/redis/slots.js';
import {
  type ClientFamily,
  closeClient,
  connectClusterClient,
  type TestClusterClient,
} from './support/redis-clients.js';
import { type ClusterNode, RedisCluster } from './support/redis-cluster.js';
import { breakerSlot } from './support/redis-slots.js';
import { waitFor } from './support/redis-wait.js';

// The idle cost of a Cluster: change messages are not numbered there, so every periodic check
// compares the stamp of every followed record. It does so with one script per master per 500
// breakers (compareStamps-1.lua, which reads keys of every slot of its node), counted here on
// the nodes themselves (INFO commandstats). A check must still find every record that differs:
// a change whose message was lost, a record deleted or cut in half behind the fleet's back, a
// slot that moved since the client read its slot map, and on a server that cannot compile the
// script (Redis 6, simulated) the breaker-by-breaker path, chosen once.

let cluster: RedisCluster;
const opened: TestClusterClient[] = [];
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  cluster = await RedisCluster.start({ replicasPerMaster: 0 });
});

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await Promise.all(opened.map((client) => closeClient(client)));
  await cluster?.stop();
});

async function connect(family: ClientFamily): Promise<TestClusterClient> {
  const client = await connectClusterClient(family, cluster.seeds);
  opened.push(client);
  return client;
}

// The periodic work kept out of the way: every check here is driven by the test.
const QUIET: RedisStoreOptions = {
  resyncInterval: 600_000,
  auditInterval: 600_000,
  clockSyncInterval: 600_000,
  timeout: 2_000,
};

interface Followed {
  readonly store: RedisStore;
  readonly breakers: Map<string, CircuitBreaker>;
  readonly storeErrors: unknown[];
}

/** A store following `count` breakers `${base} i`; every other one tripped (a record each). */
async function follow(
  client: TestClusterClient,
  prefix: string,
  base: string,
  count: number,
  options: RedisStoreOptions = {},
): Promise<Followed> {
  const store = new RedisStore(client, { ...QUIET, prefix, ...options });
  const storeErrors: unknown[] = [];
  const breakers = new Map<string, CircuitBreaker>();
  for (let i = 0; i < count; i++) {
    const name = `${base} ${i}`;
    const breaker = new CircuitBreaker(name, { store, failMax: 1, resetTimeout: 3_600_000 });
    breaker.on('storeError', ({ error }) => storeErrors.push(error));
    breakers.set(name, breaker);
  }
  closers.push(async () => {
    for (const breaker of breakers.values()) breaker.dispose();
    await store.close();
  });
  await Promise.all([...breakers.values()].map((breaker) => breaker.settled()));
  let i = 0;
  for (const breaker of breakers.values()) {
    if (i++ % 2 === 0) await trip(breaker);
  }
  return { store, breakers, storeErrors };
}

async function trip(breaker: CircuitBreaker): Promise<void> {
  await breaker.call(() => Promise.reject(new Error('upstream down'))).catch(() => {});
  await breaker.settled();
}

type Stats = Map<string, { calls: number; failed: number }>;

/** Calls (and failed or rejected calls) of every command on `node`, INFO left out. */
async function commandStats(node: ClusterNode): Promise<Stats> {
  const text = (await node.admin.call('INFO', 'commandstats')) as string;
  const stats: Stats = new Map();
  for (const line of text.split('\r\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+),.*rejected_calls=(\d+),failed_calls=(\d+)/.exec(
      line,
    );
    if (match === null || match[1] === 'info') continue;
    const failed = Number(match[3]) + Number(match[4]);
    stats.set(match[1] as string, { calls: Number(match[2]), failed });
  }
  return stats;
}

/** What changed between two readings of one node, by command. */
function delta(before: Stats, after: Stats): Map<string, { calls: number; failed: number }> {
  const changed = new Map<string, { calls: number; failed: number }>();
  for (const [command, stat] of after) {
    const was = before.get(command) ?? { calls: 0, failed: 0 };
    if (stat.calls === was.calls && stat.failed === was.failed) continue;
    changed.set(command, { calls: stat.calls - was.calls, failed: stat.failed - was.failed });
  }
  return changed;
}

/** Runs `act` and returns what each master ran meanwhile, by command. */
async function countedOn(masters: readonly ClusterNode[], act: () => Promise<unknown>) {
  const before = await Promise.all(masters.map(commandStats));
  await act();
  const after = await Promise.all(masters.map(commandStats));
  return masters.map((_, i) => delta(before[i] as Stats, after[i] as Stats));
}

/** How many of `names` each master serves, in the order of `masters`. */
async function perMaster(masters: readonly ClusterNode[], names: Iterable<string>, prefix: string) {
  const view = await cluster.view();
  const ranges = masters.map((master) => view.find((v) => v.id === master.id)?.slots ?? []);
  const counts = masters.map(() => 0);
  for (const name of names) {
    const slot = breakerSlot(name, prefix);
    const at = ranges.findIndex((r) => r.some(([a, b]) => slot >= a && slot <= b));
    counts[at] = (counts[at] ?? 0) + 1;
  }
  return counts;
}

const scripts = (changes: Map<string, { calls: number }>) =>
  (changes.get('evalsha')?.calls ?? 0) + (changes.get('eval')?.calls ?? 0);

describe.each([
  { family: 'ioredis5' as const, breakers: 1_600 },
  { family: 'node-redis6' as const, breakers: 1_600 },
  { family: 'ioredis6' as const, breakers: 300 },
  { family: 'node-redis5' as const, breakers: 300 },
  // iovalkey 0.4 has no sharded subscribers: classic pub/sub, unnumbered on a Cluster too.
  { family: 'iovalkey' as const, breakers: 300, pubsub: 'classic' as const },
])('$family Cluster, $breakers idle breakers on 3 masters', ({ family, breakers, pubsub }) => {
  it('a check sends at most one script per master per 500 breakers, and reads every breaker once', async () => {
    const client = await connect(family);
    const prefix = `idle-${family}:`;
    const followed = await follow(client, prefix, 'idle', breakers, pubsub ? { pubsub } : {});
    const masters = await cluster.masters();
    const counts = await perMaster(masters, followed.breakers.keys(), prefix);
    // The first check loads the script on every master (NOSCRIPT, then EVAL).
    await followed.store.resync();
    const changes = await countedOn(masters, () => followed.store.resync());
    changes.forEach((commands, i) => {
      const served = counts[i] as number;
      const on = `master ${i + 1} (${served} breakers): ${JSON.stringify([...commands])}`;
      expect(scripts(commands), on).toBeLessThanOrEqual(Math.ceil(served / 500));
      expect(scripts(commands), on).toBeGreaterThan(0);
      // Inside the scripts: the version and write id (GET) and the snapshot's length (STRLEN)
      // of each breaker of the node, once. Nothing else was sent.
      expect(commands.get('get')?.calls, on).toBe(2 * served);
      expect(commands.get('strlen')?.calls, on).toBe(served);
      const others = [...commands.keys()].filter(
        (command) => !['evalsha', 'eval', 'get', 'strlen'].includes(command),
      );
      expect(others, on).toEqual([]);
      expect(
        [...commands.values()].every((stat) => stat.failed === 0),
        on,
      ).toBe(true);
    });
    expect(followed.storeErrors).toEqual([]);
  });
});

describe.each(['ioredis5', 'node-redis6'] as const)('%s Cluster: what a check finds', (family) => {
  it('a change whose message was lost, a deleted record and half a record, on every master', async () => {
    const prefix = `finds-${family}:`;
    // Followed through sharded pub/sub; the writer publishes on the classic channel, which the
    // follower does not hear: its changes are lost messages.
    const follower = await follow(await connect(family), prefix, 'finds', 60);
    const writer = new RedisStore(await connect(family), { ...QUIET, prefix, pubsub: 'classic' });
    closers.push(() => writer.close());
    const names = [...follower.breakers.keys()];
    const masters = await cluster.masters();
    const onMaster = (i: number) => async (name: string) =>
      (await cluster.masterOf(breakerSlot(name, prefix))) === masters[i];
    const pick = async (i: number, closed: boolean) => {
      for (const name of names) {
        const state = follower.breakers.get(name)?.state;
        if ((state === 'closed') === closed && (await onMaster(i)(name))) return name;
      }
      throw new Error(`no ${closed ? 'closed' : 'open'} breaker on master ${i + 1}`);
    };
    const changed = [await pick(0, true), await pick(1, true), await pick(2, true)];
    const deleted = await pick(0, false);
    const halved = await pick(1, false);
    await follower.store.resync();
    for (const name of changed) {
      const breaker = new CircuitBreaker(name, { store: writer, failMax: 1 });
      await breaker.settled();
      await trip(breaker);
      breaker.dispose();
    }
    const keysOf = (name: string) => follower.store.keys(name);
    const masterOf = (name: string) => cluster.masterOf(breakerSlot(name, prefix));
    const gone = keysOf(deleted);
    await (await masterOf(deleted)).admin.del(gone.snapshot, gone.version, gone.write);
    await (await masterOf(halved)).admin.del(keysOf(halved).snapshot);
    const stateOf = (name: string) => follower.breakers.get(name)?.state;
    expect(changed.map(stateOf)).toEqual(['closed', 'closed', 'closed']);

    await follower.store.resync();
    expect(changed.map(stateOf)).toEqual(['open', 'open', 'open']);
    const lost = follower.storeErrors.filter((error) => error instanceof LostRecordError);
    expect(lost.map((error) => (error as LostRecordError).breaker).sort()).toEqual(
      [deleted, halved].sort(),
    );
    // The breakers that held them write them back.
    for (const name of [deleted, halved]) {
      expect(await waitFor(async () => (await writer.load(name))?.snapshot.value === 'open')).toBe(
        true,
      );
    }
  });

  it('a slot that moved after the client read its slot map is still checked, and the next check is one script per master again', async () => {
    const prefix = `moved-${family}:`;
    // Classic pub/sub: no sharded subscription follows the slot and starts a resync of its own.
    const client = await connect(family);
    const follower = await follow(client, prefix, 'moved', 30, { pubsub: 'classic' });
    const writer = new RedisStore(await connect(family), { ...QUIET, prefix });
    closers.push(() => writer.close());
    await follower.store.resync();
    const name = [...follower.breakers].find(([, b]) => b.state === 'closed')?.[0] as string;
    const slot = breakerSlot(name, prefix);
    const from = await cluster.masterOf(slot);
    const masters = await cluster.masters();
    const to = masters.find((master) => master !== from) as ClusterNode;
    // Moved by the cluster's own connections: the follower's client still names `from`.
    await cluster.moveSlot(slot, to);
    const breaker = new CircuitBreaker(name, { store: writer, failMax: 1 });
    await breaker.settled();
    await trip(breaker);
    breaker.dispose();
    expect(follower.breakers.get(name)?.state).toBe('closed');

    const first = await countedOn(masters, () => follower.store.resync());
    expect(follower.breakers.get(name)?.state).toBe('open');
    // The node-wide script met a key its node no longer serves (or was redirected), and the
    // batch was read breaker by breaker.
    const refused = first.reduce(
      (sum, changes) =>
        sum + (changes.get('evalsha')?.failed ?? 0) + (changes.get('eval')?.failed ?? 0),
      0,
    );
    expect(refused).toBeGreaterThan(0);
    expect(followed(first)).toBeGreaterThan(masters.length);

    // The redirection taught the client the new map. ioredis, on MOVED, first points the whole
    // range of the slot at the new node and reads the map again in the background: wait for it.
    const view = await cluster.view();
    const [[low, high] = [0, 0]] = view.find((v) => v.id === from.id)?.slots ?? [];
    const kept = low === slot ? high : low;
    const current = () =>
      mappedMaster(client, slot) === `127.0.0.1:${to.port}` &&
      mappedMaster(client, kept) === `127.0.0.1:${from.port}`;
    expect(await waitFor(current)).toBe(true);
    const second = await countedOn(masters, () => follower.store.resync());
    expect(second.map(scripts)).toEqual(masters.map(() => 1));
    expect(second.every((changes) => changes.get('evalsha')?.failed === 0)).toBe(true);
  });

  it('on a server that cannot compile the script (Redis 6) checks breaker by breaker, deciding once', async () => {
    const prefix = `redis6-${family}:`;
    const client = await connect(family);
    const attempts = await refuseCompareStamps(client, family);
    const follower = await follow(client, prefix, 'redis6', 30);
    const writer = new RedisStore(await connect(family), { ...QUIET, prefix, pubsub: 'classic' });
    closers.push(() => writer.close());
    const name = [...follower.breakers].find(([, b]) => b.state === 'closed')?.[0] as string;
    const breaker = new CircuitBreaker(name, { store: writer, failMax: 1 });
    await breaker.settled();
    await trip(breaker);
    breaker.dispose();

    await follower.store.resync();
    expect(follower.breakers.get(name)?.state).toBe('open');
    const tried = attempts.count;
    expect(tried).toBeGreaterThan(0);
    const masters = await cluster.masters();
    const again = await countedOn(masters, () => follower.store.resync());
    expect(attempts.count).toBe(tried);
    // One call per breaker.
    expect(again.reduce((sum, changes) => sum + scripts(changes), 0)).toBe(30);
  });
});

/** The master `client`'s slot map names for `slot`, as `host:port`. */
function mappedMaster(client: TestClusterClient, slot: number): string | undefined {
  const entry = (client as unknown as { slots: readonly unknown[] }).slots[slot];
  // ioredis: the slot's nodes, the master first; node-redis: the slot's shard.
  if (Array.isArray(entry)) return entry[0] as string | undefined;
  return (entry as { master?: { address?: string } } | undefined)?.master?.address;
}

/** Script calls on every master together. */
function followed(changes: Map<string, { calls: number }>[]): number {
  return changes.reduce((sum, commands) => sum + scripts(commands), 0);
}

const compareStamps = readFileSync(
  new URL('../src/stores/lua/compareStamps-1.lua', import.meta.url),
  'utf8',
);
const compareStampsSha = createHash('sha1').update(compareStamps).digest('hex');
const REDIS6_ANSWER =
  "ERR Error compiling script (new function): user_script:1: unexpected symbol near '#'";

// node-redis tells a server's error by its class.
class ErrorReply extends Error {}

/**
 * Makes the connection to every master of `client` answer `compareStamps-1.lua` as Redis 6 does
 * (EVALSHA: NOSCRIPT; EVAL: it cannot compile the shebang), and counts the attempts; every other
 * command goes to the cluster.
 */
async function refuseCompareStamps(client: TestClusterClient, family: ClientFamily) {
  const attempts = { count: 0 };
  const ours = (args: readonly unknown[]) =>
    args.some((arg) => arg === compareStampsSha || arg === compareStamps);
  const answer = (command: unknown) =>
    command === 'EVALSHA' ? 'NOSCRIPT No matching script' : REDIS6_ANSWER;
  if (family.startsWith('node-redis')) {
    const cluster = client as unknown as {
      masters: readonly unknown[];
      nodeClient(node: unknown): unknown;
    };
    for (const master of cluster.masters) {
      const node = (await cluster.nodeClient(master)) as {
        sendCommand(args: readonly unknown[], options?: unknown): unknown;
      };
      const send = node.sendCommand.bind(node);
      node.sendCommand = (args, options) => {
        if (!ours(args)) return send(args, options);
        attempts.count++;
        const error = new ErrorReply('');
        error.message = answer(args[0]);
        return Promise.reject(error);
      };
    }
  } else {
    interface Command {
      name: string;
      args: unknown[];
      reject(error: Error): void;
      promise: Promise<unknown>;
    }
    const cluster = client as unknown as {
      nodes(role: 'master'): { sendCommand(command: Command): unknown }[];
    };
    for (const node of cluster.nodes('master')) {
      const send = node.sendCommand.bind(node);
      node.sendCommand = (command) => {
        if (!ours(command.args)) return send(command);
        attempts.count++;
        const error = new Error(answer(command.name.toUpperCase()));
        error.name = 'ReplyError';
        command.reject(error);
        return command.promise;
      };
    }
  }
  return attempts;
}

describe('hash slots', () => {
  it("the store's slot of a key is the cluster's (CLUSTER KEYSLOT)", async () => {
    const [node] = cluster.nodes as [ClusterNode];
    const keys = [
      'circuit_breaker:{openai}:version',
      'plain key',
      '{}:empty tag',
      'a{b}{c}',
      'x{unclosed',
      'circuit_breaker:{ünïcødé 模型}:snapshot',
      'circuit_breaker:{with%7Dbrace}:write',
      ...Array.from({ length: 50 }, (_, i) => `p:{tenant-${i * 7919}}:version`),
    ];
    for (const key of keys) {
      expect(keySlot(key), key).toBe(await node.admin.call('CLUSTER', 'KEYSLOT', key));
    }
    expect(hashTag('a{b}{c}')).toBe('b');
  });
});

/** Two breaker names whose keys hash to one slot, and that slot. */
function sharingASlot(base: string, prefix: string): [string, string, number] {
  const seen = new Map<number, string>();
  for (let i = 0; ; i++) {
    const name = `${base} ${i}`;
    const slot = breakerSlot(name, prefix);
    const other = seen.get(slot);
    if (other !== undefined) return [other, name, slot];
    seen.set(slot, name);
  }
}

describe.each(['ioredis5', 'node-redis6'] as const)(
  '%s Cluster: a slot half migrated',
  (family) => {
    it('a record not yet migrated is found although the script was redirected (ASK) to the importing node', async () => {
      const prefix = `ask-${family}:`;
      const [first, second, slot] = sharingASlot('ask', prefix);
      const client = await connect(family);
      const store = new RedisStore(client, { ...QUIET, prefix });
      const storeErrors: unknown[] = [];
      const breakers = [first, second].map((name) => {
        const breaker = new CircuitBreaker(name, { store, failMax: 1, resetTimeout: 3_600_000 });
        breaker.on('storeError', ({ error }) => storeErrors.push(error));
        return breaker;
      });
      closers.push(async () => {
        for (const breaker of breakers) breaker.dispose();
        await store.close();
      });
      await Promise.all(breakers.map((breaker) => breaker.settled()));
      // The first has a record the store holds; the second none.
      await trip(breakers[0] as CircuitBreaker);
      await store.resync();
      // Another process writes the second's first record; its message is lost (classic channel).
      const writer = new RedisStore(await connect(family), { ...QUIET, prefix, pubsub: 'classic' });
      closers.push(() => writer.close());
      const other = new CircuitBreaker(second, {
        store: writer,
        failMax: 1,
        resetTimeout: 3_600_000,
      });
      await other.settled();
      await trip(other);
      other.dispose();
      expect(breakers[1]?.state).toBe('closed');

      // A resharding under way: the first breaker's keys have moved, the second's not yet.
      const from = await cluster.masterOf(slot);
      const to = (await cluster.masters()).find((master) => master !== from) as ClusterNode;
      const at = String(slot);
      // Moves `keys` of the slot from its old master to the new one, as redis-cli does.
      const migrate = (keys: string[]) =>
        from.admin.call('MIGRATE', '127.0.0.1', String(to.port), '', '0', '5000', 'KEYS', ...keys);
      await to.admin.call('CLUSTER', 'SETSLOT', at, 'IMPORTING', from.id);
      await from.admin.call('CLUSTER', 'SETSLOT', at, 'MIGRATING', to.id);
      try {
        const keys = (await from.admin.call('CLUSTER', 'GETKEYSINSLOT', at, '100')) as string[];
        const base = store.keys(first).version.replace(/version$/, '');
        const moving = keys.filter((key) => key.startsWith(base));
        expect(moving.length).toBeGreaterThan(0);
        await migrate(moving);

        await store.resync();
        expect(breakers[1]?.state).toBe('open');
        expect(storeErrors).toEqual([]);
      } finally {
        for (;;) {
          const keys = (await from.admin.call('CLUSTER', 'GETKEYSINSLOT', at, '100')) as string[];
          if (keys.length === 0) break;
          await migrate(keys);
        }
        for (const node of await cluster.masters()) {
          await node.admin.call('CLUSTER', 'SETSLOT', at, 'NODE', to.id);
        }
      }
    });
  },
);
