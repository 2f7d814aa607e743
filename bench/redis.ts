/**
 * RedisStore figures for docs/performance-calls.md, on redis-servers this script starts on unix
 * sockets, for every Redis client family the store takes (ioredis 5 and 6, iovalkey, node-redis
 * 5 and 6, each as test/support/redis-clients.ts connects it: ioredis 6 and node-redis 6 on
 * RESP3), in one run:
 * 1. per family, one table: trip propagation (from the tripping write sent on one client to the
 *    first rejection on another client of the same family), p50 and p99; half-open admission
 *    (call start → probe runs), p50 and p99; Redis commands per closed success (0: the success
 *    path does not touch Redis); idle Redis commands per second for one store following 200
 *    closed breakers, all families idling at once, each on its own server;
 * 2. per family, Redis commands per transition (INFO commandstats);
 * 3. closed success-path overhead, RedisStore vs MemoryStore (same-round ratio; the path is the
 *    same whatever the client, so one family).
 * Run: npm run bench:redis
 */
import { cpus, loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { CircuitBreaker, MemoryStore } from '../src/index.js';
import type { StoredRecord } from '../src/stores/index.js';
import { RedisStore, type RedisStoreOptions } from '../src/stores/redis/index.js';
import {
  CLIENT_FAMILIES,
  type ClientFamily,
  closeClient,
  connectClient,
  type TestClient,
} from '../test/support/redis-clients.js';
import { RedisServer } from '../test/support/redis-server.js';
import {
  formatNumber,
  measure,
  median,
  table,
  type Variant,
  verdict,
  yieldToLoop,
} from './harness.js';

const one = async () => 1;
const down = () => Promise.reject(new Error('down'));
const TRIPS = 200;
const CLOSED_CALLS = 10_000;
const IDLE_BREAKERS = 200;
const IDLE_SECONDS = 12;
// Background checks out of the way where a figure counts commands of one path only.
const QUIET: RedisStoreOptions = { resyncInterval: 600_000, clockSyncInterval: 600_000 };

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return (
    sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN
  );
}

const ms = (value: number) => `${formatNumber(value, 3)} ms`;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, boundMs = 5_000): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('bench: a condition never held');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** A RedisStore that notes when each compare-and-set is sent. */
class TimedStore extends RedisStore {
  lastWriteAt = 0;
  override compareAndSet(name: string, expected: number, record: StoredRecord) {
    this.lastWriteAt = performance.now();
    return super.compareAndSet(name, expected, record);
  }
}

async function commandCounts(admin: Redis): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const line of (await admin.info('commandstats')).split('\n')) {
    const match = /^cmdstat_(\w+):calls=(\d+)/.exec(line.trim());
    if (match && match[1] !== 'info') counts.set(match[1] as string, Number(match[2]));
  }
  return counts;
}

/** The server's `total_commands_processed` (which counts commands run inside scripts too). */
async function totalCommands(admin: Redis): Promise<number> {
  const match = /total_commands_processed:(\d+)/.exec(await admin.info('stats'));
  return Number(match?.[1]);
}

/** Commands the server ran while `action` ran, less what the two readings cost themselves. */
async function commandsDuring(admin: Redis, action: () => Promise<void>): Promise<number> {
  const empty = -(await totalCommands(admin)) + (await totalCommands(admin));
  const before = await totalCommands(admin);
  await action();
  return (await totalCommands(admin)) - before - empty;
}

function difference(before: Map<string, number>, after: Map<string, number>): string {
  const parts: string[] = [];
  for (const [command, calls] of after) {
    const delta = calls - (before.get(command) ?? 0);
    if (delta > 0) parts.push(`${command} ${delta}`);
  }
  return parts.sort().join(', ');
}

/** A family's clients on one server, ended together. */
class Clients {
  readonly #open: TestClient[] = [];
  constructor(
    readonly family: ClientFamily,
    readonly path: string,
  ) {}
  async connect(): Promise<TestClient> {
    const client = await connectClient(this.family, { path: this.path });
    this.#open.push(client);
    return client;
  }
  async close(): Promise<void> {
    await Promise.all(this.#open.splice(0).map((client) => closeClient(client)));
  }
}

async function closedOverhead(socket: string): Promise<string> {
  const redis = new Redis({ path: socket });
  const store = new RedisStore(redis);
  const onRedis = new CircuitBreaker('bench-closed', { store });
  const inMemory = new CircuitBreaker('bench-closed', { store: new MemoryStore() });
  await onRedis.settled();
  let sink = 0;
  const loop =
    (breaker: CircuitBreaker): Variant['run'] =>
    async (n) => {
      for (let i = 0; i < n; i++) {
        sink += await breaker.call(one);
        if (i % 1000 === 999) await yieldToLoop();
      }
    };
  const variants: Variant[] = [
    { name: 'MemoryStore', run: loop(inMemory) },
    { name: 'RedisStore', run: loop(onRedis) },
  ];
  // Both variants run the same code (no store work on this path): more rounds tame the noise.
  const results = await measure(variants, { references: ['MemoryStore'], rounds: 11 });
  onRedis.dispose();
  await store.close();
  redis.disconnect();
  const ratio = results[1]?.ratios.MemoryStore ?? Number.NaN;
  return [
    '### Closed success path: RedisStore vs MemoryStore',
    table(
      ['store', 'ns/call (median)', 'ratio to MemoryStore (same round)'],
      results.map((r) => [
        r.name,
        formatNumber(r.nsPerOp, 1),
        formatNumber(r.ratios.MemoryStore ?? 0, 3),
      ]),
    ),
    verdict(
      'RedisStore / MemoryStore',
      formatNumber(ratio, 3),
      'equal within noise (0.9-1.1)',
      ratio < 1.1 && ratio > 0.9,
    ),
    `(sink ${sink > 0 ? 'ok' : '?'})`,
  ].join('\n\n');
}

async function tripPropagation(clients: Clients): Promise<number[]> {
  const leaderStore = new TimedStore(await clients.connect());
  const followerStore = new RedisStore(await clients.connect());
  const latencies: number[] = [];
  for (let i = 0; i < TRIPS; i++) {
    const name = `bench-trip-${process.pid}-${i}`;
    const leader = new CircuitBreaker(name, { store: leaderStore, failMax: 1 });
    const follower = new CircuitBreaker(name, { store: followerStore, failMax: 1 });
    let rejectingAt = 0;
    follower.on('stateChange', ({ to }) => {
      if (to === 'open' && rejectingAt === 0) rejectingAt = performance.now();
    });
    await leader.settled();
    await follower.settled();
    await leader.call(down).catch(() => {});
    await until(() => rejectingAt > 0);
    // The follower now rejects without calling.
    let called = false;
    await follower
      .call(async () => {
        called = true;
      })
      .catch(() => {});
    if (called) throw new Error(`bench: the follower on ${clients.family} called after the trip`);
    latencies.push(rejectingAt - leaderStore.lastWriteAt);
    leader.dispose();
    follower.dispose();
  }
  await leaderStore.close();
  await followerStore.close();
  return latencies;
}

async function admissions(breaker: CircuitBreaker): Promise<number[]> {
  const latencies: number[] = [];
  while (latencies.length < TRIPS) {
    if (breaker.state === 'closed') await breaker.call(down).catch(() => {});
    await until(() => breaker.state === 'halfOpen');
    let admittedAt = 0;
    const start = performance.now();
    await breaker
      .call(() => {
        admittedAt = performance.now();
        return down();
      })
      .catch(() => {});
    if (admittedAt > 0) latencies.push(admittedAt - start);
  }
  return latencies;
}

const PROBING = { failMax: 1, resetTimeout: 5, successThreshold: 1 };

async function halfOpenAdmission(clients: Clients): Promise<number[]> {
  const store = new RedisStore(await clients.connect());
  const breaker = new CircuitBreaker(`bench-probe-${process.pid}`, { store, ...PROBING });
  await breaker.settled();
  const latencies = await admissions(breaker);
  breaker.dispose();
  await store.close();
  return latencies;
}

/** Redis commands per successful call of a closed breaker (its store's checks held off). */
async function commandsPerClosedSuccess(clients: Clients, admin: Redis): Promise<number> {
  const store = new RedisStore(await clients.connect(), QUIET);
  const breaker = new CircuitBreaker(`bench-closed-${process.pid}`, { store });
  await breaker.settled();
  for (let i = 0; i < 100; i++) await breaker.call(one);
  await breaker.settled();
  const commands = await commandsDuring(admin, async () => {
    for (let i = 0; i < CLOSED_CALLS; i++) {
      await breaker.call(one);
      if (i % 1000 === 999) await yieldToLoop();
    }
    await breaker.settled();
  });
  breaker.dispose();
  await store.close();
  return commands / CLOSED_CALLS;
}

/** Idle commands per second of one store (default options) following closed breakers. */
async function idleCommands(clients: Clients, admin: Redis): Promise<number> {
  const store = new RedisStore(await clients.connect());
  const breakers = Array.from(
    { length: IDLE_BREAKERS },
    (_, i) => new CircuitBreaker(`bench-idle-${i}`, { store }),
  );
  await Promise.all(breakers.map((breaker) => breaker.call(one)));
  await Promise.all(breakers.map((breaker) => breaker.settled()));
  const started = performance.now();
  const commands = await commandsDuring(admin, () => sleep(IDLE_SECONDS * 1000));
  const seconds = (performance.now() - started) / 1000;
  for (const breaker of breakers) breaker.dispose();
  await store.close();
  return commands / seconds;
}

async function commandsPerTransition(clients: Clients, admin: Redis): Promise<string[][]> {
  const stores = [
    new RedisStore(await clients.connect(), QUIET),
    new RedisStore(await clients.connect(), QUIET),
  ];
  const name = `bench-commands-${process.pid}`;
  const [a, b] = stores.map(
    (store) =>
      new CircuitBreaker(name, { store, failMax: 1, resetTimeout: 200, successThreshold: 1 }),
  ) as [CircuitBreaker, CircuitBreaker];
  await a.settled();
  await b.settled();
  const rows: string[][] = [];
  const step = async (label: string, action: () => Promise<void>) => {
    const before = await commandCounts(admin);
    await action();
    await a.settled();
    await b.settled();
    rows.push([clients.family, label, difference(before, await commandCounts(admin))]);
  };
  await step('closed → open (one trips, the other follows the feed)', async () => {
    await a.call(down).catch(() => {});
    await until(() => b.state === 'open');
  });
  await step('open → halfOpen (both timers; one writes, the other adopts or conflicts)', () =>
    until(() => a.state === 'halfOpen' && b.state === 'halfOpen'),
  );
  await step('halfOpen: probe admitted, succeeds → closed', async () => {
    await a.call(one);
    await until(() => b.state === 'closed');
  });
  for (const breaker of [a, b]) breaker.dispose();
  await Promise.all(stores.map((store) => store.close()));
  return rows;
}

/** A server of the family's own, so that INFO counts its commands alone. */
interface Bench {
  readonly family: ClientFamily;
  readonly server: RedisServer;
  readonly admin: Redis;
  readonly clients: Clients;
}

const benches: Bench[] = await Promise.all(
  CLIENT_FAMILIES.map(async (family) => {
    const server = await RedisServer.start();
    const admin = new Redis({ path: server.path });
    return { family, server, admin, clients: new Clients(family, server.path) };
  }),
);
try {
  const load = loadavg()
    .map((value) => value.toFixed(1))
    .join(' ');
  console.log(
    `# RedisStore figures per client family (Node ${process.version}, ${cpus().length} CPUs, load average ${load}, redis-server on a unix socket)\n`,
  );
  const rows: string[][] = [];
  const transitions: string[][] = [];
  // Latencies one family at a time, so that families do not share the CPU while timed.
  for (const { family, admin, clients } of benches) {
    const trips = await tripPropagation(clients);
    const probes = await halfOpenAdmission(clients);
    const perSuccess = await commandsPerClosedSuccess(clients, admin);
    transitions.push(...(await commandsPerTransition(clients, admin)));
    await clients.close();
    rows.push([
      family,
      ms(median(trips)),
      ms(percentile(trips, 99)),
      ms(median(probes)),
      ms(percentile(probes, 99)),
      formatNumber(perSuccess, 4),
    ]);
  }
  // Idle figures at once: each family on its own server, 12 s in all.
  const idle = await Promise.all(
    benches.map(async ({ admin, clients }) => {
      const perSecond = await idleCommands(clients, admin);
      await clients.close();
      return perSecond;
    }),
  );
  const memory = new CircuitBreaker('bench-probe', { store: new MemoryStore(), ...PROBING });
  const memoryProbes = await admissions(memory);
  memory.dispose();
  console.log(
    [
      `### Per client family (${TRIPS} trips, ${TRIPS} probes, ${formatNumber(CLOSED_CALLS)} closed successes, ${IDLE_BREAKERS} idle breakers for ${IDLE_SECONDS} s)`,
      table(
        [
          'client',
          'trip propagation p50',
          'p99',
          'half-open admission p50',
          'p99',
          'Redis commands per closed success',
          'idle Redis commands/s',
        ],
        rows.map((row, i) => [...row, formatNumber(idle[i] ?? Number.NaN, 2)]),
      ),
      `Trip propagation: from the tripping compare-and-set sent on one client to the state change on a second client of the same family (each with its own store and subscriber). Half-open admission: call start → probe runs, one compare-and-set; MemoryStore for reference: p50 ${ms(median(memoryProbes))}, p99 ${ms(percentile(memoryProbes, 99))}. Commands: \`total_commands_processed\` (scripts' inner commands included), less what reading it costs. Idle: default options (resyncInterval 10 s, clockSyncInterval 60 s): one change-counter check per resyncInterval, whatever the number of breakers.`,
      verdict(
        'Redis commands per closed success, every client',
        rows.map((row) => row[5]).join(' / '),
        '0',
        rows.every((row) => Number(row[5]) === 0),
      ),
    ].join('\n\n'),
  );
  console.log();
  console.log(
    [
      '### Redis commands per transition (2 instances; commands inside the script counted by Redis too)',
      table(['client', 'transition', 'commands (INFO commandstats delta)'], transitions),
      'Client round trips: one `EVALSHA` per write attempt; the script reads, writes, counts and publishes in one step (TIME, GET, MSET, SET or DEL, INCR, PUBLISH inside it). A conflict costs one more attempt after adopting the record it returned. The first write of a client is an `EVALSHA` answered NOSCRIPT, then an `EVAL`. Followers send nothing: the change reaches them on their subscriber.',
    ].join('\n\n'),
  );
  console.log();
  const [first] = benches as [Bench];
  console.log(`${await closedOverhead(first.server.path)}\n`);
} finally {
  await Promise.all(
    benches.map(async ({ server, admin, clients }) => {
      await clients.close();
      admin.disconnect();
      await server.stop();
    }),
  );
}
