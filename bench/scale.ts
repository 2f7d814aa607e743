/**
 * `npm run bench:scale`: many breakers in one process. For 1,000, 10,000 and 100,000 breakers on
 * a MemoryStore and on a RedisStore (a redis-server this script starts on a unix socket): all
 * created closed, then all opened within about a second (one failure each, failMax 1), then
 * half-opening together (every one opened at the same instant of the breakers' clock, held still
 * until their writes are done, so that all their open periods end at once), then probed and
 * closed. Prints, per run: heap per
 * breaker in each state, timers held, event-loop delay (p99, max) during the trip, half-open
 * and probe bursts, store writes per transition, the cost of a trip and of a probe, how late
 * the latest due transition ran, and breakers that reported their store degraded.
 *
 * Each store's rows follow three throwaway rounds of 10,000 breakers, with short waits
 * (`--no-warm-up` skips them), so that they show the breaker rather than the JIT compiling it. The calls' upstream throws one shared
 * error, and the same calls without a breaker, paced alike, are the reference.
 *
 * Run: npm run bench:scale [-- 1000,10000] [-- --memory-only | --redis-only] [-- --no-warm-up];
 * BENCH_DIST=1 runs the built package.
 */
import { cpus, loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import type { Clock } from '../src/clock.js';
import { systemClock } from '../src/clock.js';
import type { CircuitBreaker } from '../src/index.js';
import type { BreakerStore } from '../src/stores/index.js';
import { RedisServer } from '../test/support/redis-server.js';
import { formatNumber, table } from './harness.js';

// BENCH_DIST=1: the built package (`npm run build` first), as a user's process runs it.
const from = process.env.BENCH_DIST === '1' ? '../dist' : '../src';
const { CircuitBreaker: Breaker, MemoryStore } = (await import(
  `${from}/index.js`
)) as typeof import('../src/index.js');
const { Scheduler } = (await import(
  `${from}/replica/scheduler.js`
)) as typeof import('../src/replica/scheduler.js');
const { RedisStore } = (await import(
  `${from}/stores/redis/index.js`
)) as typeof import('../src/stores/redis/index.js');

const RESET_TIMEOUT = 6_000;
const CHUNK = 100;
// Throwaway rounds before each store's rows: the per-call figures of the first few thousand
// breakers of a process are the JIT's (compiling, optimizing) more than the breaker's.
const WARM_UP = { rounds: 3, breakers: 10_000 };

/** How a round runs: the measured ones, or the throwaway ones that warm the JIT up. */
interface Round {
  /** The breakers' resetTimeout (ms). */
  readonly resetTimeout: number;
  /** Over how long the trips, then the probes, are spread (ms). */
  readonly spreadMs: number;
}
const MEASURED: Round = { resetTimeout: RESET_TIMEOUT, spreadMs: 1_000 };
// The same paths, without the waits: what the JIT compiles does not depend on them.
const THROWAWAY: Round = { resetTimeout: 200, spreadMs: 0 };
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('bench:scale needs node --expose-gc');

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Wall time, which can be held still: breakers tripped while held all open at one instant, and
 * their open periods run from when it goes on, however long their writes took meanwhile.
 */
class HoldableClock implements Clock {
  #held: number | null = null;
  /** How far behind wall time the clock runs: the time it was held. */
  #behind = 0;
  /** Timers set on this clock and not yet fired or cleared (they are unref'd, so
   * `process.getActiveResourcesInfo()` does not list them). */
  readonly pending = new Set<unknown>();
  now(): number {
    return this.#held ?? Date.now() - this.#behind;
  }
  hold(): number {
    this.#held = this.now();
    return this.#held;
  }
  /** Goes on from the instant it was held at: the time held does not pass on this clock. */
  resume(): void {
    if (this.#held === null) return;
    this.#behind = Date.now() - this.#held;
    this.#held = null;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const handle = systemClock.setTimeout(() => {
      this.pending.delete(handle);
      fn();
    }, ms);
    this.pending.add(handle);
    return handle;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle);
    systemClock.clearTimeout(handle);
  }
}

async function heap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    (gc as () => void)();
    await tick();
  }
  return process.memoryUsage().heapUsed;
}

// Timers of the process: those keeping it alive, and those set on the breakers' clock.
function timers(clock: HoldableClock): number {
  return (
    process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length +
    clock.pending.size
  );
}

interface Burst {
  p99: number;
  max: number;
  ms: number;
}

/** Runs `work` with the event-loop delay monitored; the loop is sampled every millisecond. */
async function burst(work: () => Promise<void>): Promise<Burst> {
  const monitor = monitorEventLoopDelay({ resolution: 1 });
  monitor.enable();
  const started = performance.now();
  await work();
  const ms = performance.now() - started;
  monitor.disable();
  return { p99: monitor.percentile(99) / 1e6, max: monitor.max / 1e6, ms };
}

// One upstream error for every call: the trip's cost is the breaker's, not `new Error`'s.
const UPSTREAM_ERROR = new Error('provider down');
const failing = async (): Promise<never> => {
  throw UPSTREAM_ERROR;
};
const ok = async () => 1;

interface Row {
  store: string;
  n: number;
  heapClosed: number;
  heapOpen: number;
  heapHalfOpen: number;
  timersOpen: number;
  timersHalfOpen: number;
  trip: Burst;
  tripUs: number;
  bareUs: number;
  halfOpen: Burst;
  probe: Burst;
  probeUs: number;
  writesPerTrip: number;
  writesPerHalfOpen: number;
  maxLateMs: number;
  maxSliceMs: number;
  degraded: number;
  storeErrors: number;
}

/** Calls `each` for every breaker in chunks, pacing the chunks over `spreadMs`; returns µs of work. */
async function paced<B>(
  breakers: readonly B[],
  spreadMs: number,
  each: (breaker: B) => Promise<unknown>,
): Promise<number> {
  let busy = 0;
  const chunks = Math.ceil(breakers.length / CHUNK);
  const began = performance.now();
  for (let c = 0; c < chunks; c++) {
    const started = performance.now();
    const pending: Promise<unknown>[] = [];
    for (let i = c * CHUNK; i < Math.min(breakers.length, (c + 1) * CHUNK); i++) {
      pending.push(each(breakers[i] as B));
    }
    await Promise.all(pending);
    busy += performance.now() - started;
    const due = began + ((c + 1) * spreadMs) / chunks;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    else await tick();
  }
  return (busy * 1000) / breakers.length;
}

/** The reference: the same failing calls, paced the same way, without a breaker; µs per call. */
async function withoutBreaker(n: number): Promise<number> {
  // Built here, so that none of it is left when the heap is measured.
  const calls = Array.from({ length: n }, () => failing);
  return paced(calls, 1_000, (call) => call().catch(() => undefined));
}

async function waitUntil(condition: () => boolean, boundMs: number, what: string): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`bench:scale: ${what} did not happen`);
    await sleep(20);
  }
}

// The burst is over once its writes are out (the bench's own bookkeeping, a promise per
// breaker, stays outside the measured window).
async function writesDone(count: () => number, n: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (count() < n && Date.now() < deadline) await sleep(5);
}

async function run(
  kind: 'memory' | 'redis',
  n: number,
  server: RedisServer | null,
  round: Round = MEASURED,
): Promise<Row> {
  const clock = new HoldableClock();
  let redis: Redis | undefined;
  let store: BreakerStore;
  if (kind === 'redis') {
    redis = new Redis({ path: (server as RedisServer).path });
    await redis.flushall();
    store = new RedisStore(redis);
  } else {
    store = new MemoryStore({ clock });
  }
  // Writes counted at the store; failed ones are what would report the store degraded.
  let writes = 0;
  let storeErrors = 0;
  const cas = store.compareAndSet.bind(store);
  store.compareAndSet = (...args: Parameters<BreakerStore['compareAndSet']>) => {
    writes++;
    return cas(...args).catch((error: unknown) => {
      storeErrors++;
      throw error;
    });
  };
  const scheduler = Scheduler.of(clock);
  // What the previous round left (connections closing, their buffers) goes first: at 1,000
  // breakers a megabyte freed during the round reads as a kilobyte per breaker.
  await sleep(250);
  const base = await heap();
  const breakers: CircuitBreaker[] = [];
  for (let i = 0; i < n; i++) {
    breakers.push(
      new Breaker(`tenant-${i}`, {
        store,
        clock,
        failMax: 1,
        resetTimeout: round.resetTimeout,
        successThreshold: 1,
      }),
    );
  }
  await Promise.all(breakers.map((b) => b.settled()));
  const heapClosed = (await heap()) - base;

  const bareUs = await withoutBreaker(n);

  // The outage: every breaker trips on one failure, all at one instant of their clock, which
  // stays still until their writes are done (a loaded machine may take longer than the open
  // period to write them all).
  clock.hold();
  const writesBefore = writes;
  const writesAtTrip = () => writes - writesBefore;
  let tripUs = 0;
  const trip = await burst(async () => {
    tripUs = await paced(breakers, round.spreadMs, (b) => b.call(failing).catch(() => undefined));
    await writesDone(writesAtTrip, n);
  });
  await Promise.all(breakers.map((b) => b.settled()));
  if (!breakers.every((b) => b.state === 'open')) throw new Error('bench:scale: not all open');
  const writesPerTrip = (writes - writesBefore) / n;
  const heapOpen = (await heap()) - base;
  const timersOpen = timers(clock);

  // Their open periods end together, resetTimeout from now.
  clock.resume();
  const statsBefore = { ...scheduler.stats };
  const writesBeforeHalf = writes;
  const halfOpen = await burst(async () => {
    await waitUntil(
      () => breakers.every((b) => b.state === 'halfOpen'),
      round.resetTimeout + 60_000,
      'half-opening',
    );
    await writesDone(() => writes - writesBeforeHalf, n);
  });
  await Promise.all(breakers.map((b) => b.settled()));
  const writesPerHalfOpen = (writes - writesBeforeHalf) / n;
  const heapHalfOpen = (await heap()) - base;
  const timersHalfOpen = timers(clock);
  const maxLateMs = scheduler.stats.maxLateMs;
  const maxSliceMs = scheduler.stats.maxSliceMs;
  if (scheduler.stats.fired - statsBefore.fired < n) throw new Error('bench:scale: due count');

  // Every breaker probes once and closes.
  let probeUs = 0;
  const probe = await burst(async () => {
    probeUs = await paced(breakers, round.spreadMs, (b) => b.call(ok));
  });
  await Promise.all(breakers.map((b) => b.settled()));
  if (!breakers.every((b) => b.state === 'closed')) throw new Error('bench:scale: not closed');
  const degraded = breakers.filter((b) => b.degraded).length;
  for (const b of breakers) b.dispose();
  // The store's own connections go before the client they were made from.
  if (store instanceof RedisStore) await store.close();
  await redis?.quit();
  return {
    store: kind === 'memory' ? 'MemoryStore' : 'RedisStore',
    n,
    heapClosed: heapClosed / n,
    heapOpen: heapOpen / n,
    heapHalfOpen: heapHalfOpen / n,
    timersOpen,
    timersHalfOpen,
    trip,
    tripUs,
    bareUs,
    halfOpen,
    probe,
    probeUs,
    writesPerTrip,
    writesPerHalfOpen,
    maxLateMs,
    maxSliceMs,
    degraded,
    storeErrors,
  };
}

const args = process.argv.slice(2);
const sizes = (args.find((a) => /^\d/.test(a)) ?? '1000,10000,100000').split(',').map(Number);
const memoryOnly = args.includes('--memory-only');
const noWarmUp = args.includes('--no-warm-up');
const redisOnly = args.includes('--redis-only');
const cpu = cpus();
console.log('# bench:scale\n');
console.log(
  `Node ${process.version}, ${cpu.length} × ${cpu[0]?.model ?? 'cpu'}; load average ` +
    `${loadavg()
      .map((l) => l.toFixed(2))
      .join(
        ' ',
      )} at start; ${from === '../dist' ? 'the built package' : 'sources under tsx'}. resetTimeout ${RESET_TIMEOUT} ms, failMax 1, successThreshold 1.\n`,
);
const kb = (bytes: number) => `${formatNumber(bytes / 1024, 2)} KB`;
const delay = (b: Burst) => `${formatNumber(b.p99, 1)} / ${formatNumber(b.max, 1)}`;
const header = [
  'store',
  'breakers',
  'heap/breaker closed',
  'open',
  'half-open',
  'timers open / half-open',
  'loop delay p99 / max (ms): trips',
  'half-open',
  'probes',
  'µs per trip',
  'µs per probe',
  'µs per call without a breaker',
  'writes per trip / half-open',
  'latest due transition (ms late)',
  'degraded / store errors',
];
// Rows are printed as they come: a long run still shows what it measured.
console.log(table(header, []));
const kinds = memoryOnly
  ? (['memory'] as const)
  : redisOnly
    ? (['redis'] as const)
    : (['memory', 'redis'] as const);
const server = memoryOnly ? null : await RedisServer.start();
try {
  for (const kind of kinds) {
    // Throwaway rounds first: the rows then show the breaker, not the JIT compiling it.
    for (let i = 0; i < (noWarmUp ? 0 : WARM_UP.rounds); i++) {
      await run(kind, WARM_UP.breakers, server, THROWAWAY);
    }
    for (const n of sizes) {
      const r = await run(kind, n, server);
      console.log(
        `| ${[
          r.store,
          formatNumber(r.n),
          kb(r.heapClosed),
          kb(r.heapOpen),
          kb(r.heapHalfOpen),
          `${r.timersOpen} / ${r.timersHalfOpen}`,
          delay(r.trip),
          delay(r.halfOpen),
          delay(r.probe),
          formatNumber(r.tripUs, 1),
          formatNumber(r.probeUs, 1),
          formatNumber(r.bareUs, 2),
          `${formatNumber(r.writesPerTrip, 2)} / ${formatNumber(r.writesPerHalfOpen, 2)}`,
          formatNumber(r.maxLateMs),
          `${r.degraded} / ${r.storeErrors}`,
        ].join(' | ')} |`,
      );
    }
  }
} finally {
  await server?.stop();
}
console.log(
  '\nHeap per breaker: heapUsed after gc over the breakers, store records included (the ' +
    'MemoryStore holds them in the process). µs per trip/probe: time spent issuing the calls ' +
    'and awaiting them, chunk by chunk, over the number of breakers; without a breaker: the ' +
    'same failing calls, paced alike. Latest due transition: how long after its due time the ' +
    "last of the breakers due together half-opened. Each store's rows followed " +
    `${WARM_UP.rounds} throwaway rounds of ${formatNumber(WARM_UP.breakers)} breakers` +
    `${noWarmUp ? ' (skipped: --no-warm-up)' : ''}.`,
);
