/**
 * Fault figures for docs/performance-calls.md (and the faults of docs/fleet.md), on a
 * redis-server this script starts, kills and freezes on a unix socket:
 * 1. convergence after Redis returns: Redis is killed, one of 3 instances trips during the
 *    outage (which lasts a moment, or 5 s), Redis restarts empty; time from the restart (server accepting connections) to
 *    every instance agreeing with the record in Redis; median and max over RUNS runs, with
 *    the defaults (store timeout 500 ms, resync 10 s, ioredis's reconnect backoff) and with
 *    fast settings (reconnect every 50 ms, resync 200 ms);
 * 2. the longest call while Redis is frozen (SIGSTOP): calls in closed (failures and
 *    successes, the trip, rejections) and a half-open admission, with the default timeout;
 * 3. what a bare ioredis command does meanwhile (no store timeout): how long a GET takes
 *    against a killed and against a frozen Redis (bounded at 30 s).
 * Run: npm run bench:faults
 */
import { Redis, type RedisOptions } from 'ioredis';
import { CircuitBreaker } from '../src/index.js';
import { topLevelState } from '../src/state.js';
import { decodeRecord } from '../src/stores/redis/codec.js';
import { RedisStore, type RedisStoreOptions } from '../src/stores/redis/index.js';
import { RedisServer } from '../test/support/redis-server.js';

const RUNS = Number(process.env.FAULT_RUNS ?? 7);
const BOUND_MS = 60_000;

const upstream = (ok: boolean) => async () => {
  if (!ok) throw new Error('upstream down');
  return 'ok';
};

interface Instance {
  breaker: CircuitBreaker;
  close(): Promise<void>;
}

function instance(
  path: string,
  name: string,
  storeOptions: RedisStoreOptions,
  redisOptions: RedisOptions,
  resetTimeout = 60_000,
): Instance {
  const redis = new Redis({ path, ...redisOptions });
  redis.on('error', () => {});
  const store = new RedisStore(redis, storeOptions);
  const breaker = new CircuitBreaker(name, { store, failMax: 2, resetTimeout });
  breaker.on('storeError', () => {});
  return {
    breaker,
    async close() {
      breaker.dispose();
      await store.close();
      redis.disconnect();
    },
  };
}

async function until(condition: () => boolean | Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + BOUND_MS;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return false;
}

async function agree(admin: Redis, fleet: Instance[], name: string): Promise<boolean> {
  try {
    const [snapshot, version] = await admin.mget(
      `circuit_breaker:{${name}}:snapshot`,
      `circuit_breaker:{${name}}:version`,
    );
    const { record } = decodeRecord(version, snapshot);
    if (record === null) return false;
    const state = topLevelState(record.snapshot.value);
    const { failures, generation } = record.snapshot.context;
    return fleet.every(
      ({ breaker: b }) =>
        b.state === state && b.context.failures === failures && b.context.generation === generation,
    );
  } catch {
    return false;
  }
}

async function convergence(
  server: RedisServer,
  label: string,
  storeOptions: RedisStoreOptions,
  redisOptions: RedisOptions,
  outageMs = 0,
): Promise<void> {
  const times: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const name = `${label} ${run}`;
    const fleet = [0, 1, 2].map(() => instance(server.path, name, storeOptions, redisOptions));
    for (const { breaker } of fleet) await breaker.settled();
    await server.kill();
    const [a] = fleet as [Instance];
    await a.breaker.call(upstream(false)).catch(() => {});
    await a.breaker.call(upstream(false)).catch(() => {});
    if (a.breaker.state !== 'open') throw new Error('the trip during the outage did not happen');
    // A longer outage lets ioredis's reconnect backoff grow (50 ms more per attempt, up to 2 s).
    if (outageMs > 0) await new Promise((resolve) => setTimeout(resolve, outageMs));
    await server.restart();
    const start = performance.now();
    const admin = new Redis({ path: server.path });
    const ok = await until(() => agree(admin, fleet, name));
    times.push(performance.now() - start);
    if (!ok) throw new Error(`${label}: no convergence within ${BOUND_MS} ms`);
    if (!fleet.every(({ breaker }) => breaker.state === 'open')) {
      throw new Error(`${label}: the trip made during the outage was lost`);
    }
    admin.disconnect();
    for (const i of fleet) await i.close();
  }
  times.sort((x, y) => x - y);
  const median = times[Math.floor(times.length / 2)] ?? Number.NaN;
  const max = times[times.length - 1] ?? Number.NaN;
  console.log(
    `convergence after restart, ${label}: median ${median.toFixed(0)} ms, max ${max.toFixed(0)} ms (${RUNS} runs; ${times.map((t) => t.toFixed(0)).join(', ')})`,
  );
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work().catch(() => {});
  return performance.now() - start;
}

async function outageCalls(server: RedisServer): Promise<void> {
  const name = 'frozen calls';
  const closed = instance(server.path, name, {}, {});
  await closed.breaker.settled();
  server.pause();
  const closedTimes: number[] = [];
  try {
    for (let i = 0; i < 200; i++) {
      closedTimes.push(await timed(() => closed.breaker.call(upstream(i % 3 !== 0))));
    }
  } finally {
    server.resume();
  }
  await closed.close();

  const probing = instance(server.path, 'frozen probe', {}, {}, 200);
  await probing.breaker.settled();
  const probeTimes: number[] = [];
  for (let i = 0; i < 5; i++) {
    await probing.breaker.call(upstream(false)).catch(() => {});
    await probing.breaker.call(upstream(false)).catch(() => {});
    await until(() => probing.breaker.state === 'halfOpen');
    await probing.breaker.settled();
    server.pause();
    try {
      // A probe that fails reopens, so the next round trips and half-opens again.
      probeTimes.push(await timed(() => probing.breaker.call(upstream(false))));
    } finally {
      server.resume();
    }
    await probing.breaker.settled();
  }
  await probing.close();
  const max = (values: number[]) => Math.max(...values).toFixed(1);
  console.log(
    `longest call while Redis is frozen (store timeout 500 ms): closed path ${max(closedTimes)} ms over ${closedTimes.length} calls; half-open admission ${max(probeTimes)} ms over ${probeTimes.length} probes`,
  );
}

async function bareCommands(server: RedisServer): Promise<void> {
  const redis = new Redis({ path: server.path });
  redis.on('error', () => {});
  await redis.ping();
  const bounded = (work: Promise<unknown>) =>
    timed(() =>
      Promise.race([work, new Promise((resolve) => setTimeout(resolve, 30_000).unref())]),
    );
  server.pause();
  const frozen = await bounded(redis.get('x'));
  server.resume();
  await server.kill();
  const killed = await bounded(redis.get('x'));
  await server.restart();
  redis.disconnect();
  console.log(
    `bare ioredis GET with default options (no store timeout): frozen Redis ${frozen.toFixed(0)} ms (30 000 = still waiting), killed Redis ${killed.toFixed(0)} ms (offline queue until maxRetriesPerRequest 20 reconnect attempts)`,
  );
}

const server = await RedisServer.start();
try {
  await convergence(server, 'defaults', {}, {});
  await convergence(server, 'defaults, 5 s outage', {}, {}, 5_000);
  await convergence(server, 'fast', { resyncInterval: 200 }, { retryStrategy: () => 50 });
  await outageCalls(server);
  await bareCommands(server);
} finally {
  await server.stop();
}
