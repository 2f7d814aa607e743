/**
 * RedisStore figures for the README, on a redis-server this script starts on a unix socket:
 * 1. closed success-path overhead, RedisStore vs MemoryStore (same-round ratio);
 * 2. trip propagation: from the tripping write (compare-and-set sent) on one connection to
 *    the first rejection on another (the follower's state flips to open), median and p99;
 * 3. Redis commands and client round trips per transition (INFO commandstats);
 * 4. half-open admission latency (call start → probe runs), RedisStore vs MemoryStore.
 * Run: npm run bench:redis
 */
import { cpus, loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { CircuitBreaker, MemoryStore, type StoredRecord } from '../src/index.js';
import { RedisStore } from '../src/stores/redis/index.js';
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

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return (
    sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN
  );
}

const ms = (value: number) => `${formatNumber(value, 3)} ms`;

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

function difference(before: Map<string, number>, after: Map<string, number>): string {
  const parts: string[] = [];
  for (const [command, calls] of after) {
    const delta = calls - (before.get(command) ?? 0);
    if (delta > 0) parts.push(`${command} ${delta}`);
  }
  return parts.sort().join(', ');
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

async function tripPropagation(socket: string): Promise<string> {
  const leaderRedis = new Redis({ path: socket });
  const followerRedis = new Redis({ path: socket });
  const leaderStore = new TimedStore(leaderRedis);
  const followerStore = new RedisStore(followerRedis);
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
    if (called) throw new Error('bench: the follower called after the trip');
    latencies.push(rejectingAt - leaderStore.lastWriteAt);
    leader.dispose();
    follower.dispose();
  }
  await leaderStore.close();
  await followerStore.close();
  leaderRedis.disconnect();
  followerRedis.disconnect();
  const p99 = percentile(latencies, 99);
  return [
    `### Trip propagation (${TRIPS} trips, two connections, one process)`,
    table(
      ['median', 'p90', 'p99', 'max'],
      [[ms(median(latencies)), ms(percentile(latencies, 90)), ms(p99), ms(Math.max(...latencies))]],
    ),
    verdict('trip propagation p99', ms(p99), '< 5 ms on loopback', p99 < 5),
  ].join('\n\n');
}

async function commandsPerTransition(socket: string): Promise<string> {
  const admin = new Redis({ path: socket });
  const clients = [new Redis({ path: socket }), new Redis({ path: socket })];
  const stores = clients.map(
    (redis) => new RedisStore(redis, { resyncInterval: 600_000, clockSyncInterval: 600_000 }),
  );
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
    rows.push([label, difference(before, await commandCounts(admin))]);
  };
  await step('closed → open (one instance trips, the other follows the feed)', async () => {
    await a.call(down).catch(() => {});
    await until(() => b.state === 'open');
  });
  await step(
    'open → halfOpen (the first timer to fire writes; the other instance adopts the feed or conflicts)',
    async () => {
      await until(() => a.state === 'halfOpen' && b.state === 'halfOpen');
    },
  );
  await step('halfOpen: probe admitted, succeeds → closed', async () => {
    await a.call(one);
    await until(() => b.state === 'closed');
  });
  for (const breaker of [a, b]) breaker.dispose();
  await Promise.all(stores.map((store) => store.close()));
  for (const redis of [...clients, admin]) redis.disconnect();
  return [
    '### Redis commands per transition (2 instances; commands inside the script counted by Redis too)',
    table(['transition', 'commands (INFO commandstats delta)'], rows),
    'Client round trips: one `EVALSHA` per write attempt; the script reads, writes, counts and publishes in one step (TIME, GET, MSET, SET or DEL, INCR, PUBLISH inside it). A conflict costs one more attempt after adopting the record it returned. The first write of a client is an `EVALSHA` answered NOSCRIPT, then an `EVAL` (ioredis `defineCommand`). Followers send nothing: the change reaches them on their subscriber.',
  ].join('\n\n');
}

async function halfOpenAdmission(socket: string): Promise<string> {
  const redis = new Redis({ path: socket });
  const store = new RedisStore(redis);
  const measureOn = async (breaker: CircuitBreaker): Promise<number[]> => {
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
  };
  const options = { failMax: 1, resetTimeout: 5, successThreshold: 1 };
  const onRedis = new CircuitBreaker(`bench-probe-${process.pid}`, { store, ...options });
  const inMemory = new CircuitBreaker('bench-probe', { store: new MemoryStore(), ...options });
  await onRedis.settled();
  const redisLatencies = await measureOn(onRedis);
  const memoryLatencies = await measureOn(inMemory);
  onRedis.dispose();
  inMemory.dispose();
  await store.close();
  redis.disconnect();
  return [
    `### Half-open admission latency (${TRIPS} probes: call start → probe runs)`,
    table(
      ['store', 'median', 'p99'],
      [
        [
          'RedisStore (one compare-and-set)',
          ms(median(redisLatencies)),
          ms(percentile(redisLatencies, 99)),
        ],
        ['MemoryStore', ms(median(memoryLatencies)), ms(percentile(memoryLatencies, 99))],
      ],
    ),
  ].join('\n\n');
}

const server = await RedisServer.start();
try {
  const load = loadavg()
    .map((value) => value.toFixed(1))
    .join(' ');
  console.log(
    `# RedisStore figures (Node ${process.version}, ${cpus().length} CPUs, load average ${load}, redis-server on a unix socket)\n`,
  );
  console.log(`${await commandsPerTransition(server.path)}\n`);
  console.log(`${await tripPropagation(server.path)}\n`);
  console.log(`${await halfOpenAdmission(server.path)}\n`);
  console.log(`${await closedOverhead(server.path)}\n`);
} finally {
  await server.stop();
}
