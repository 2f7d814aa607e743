/**
 * Fleet figures, on a redis-server this script starts on a unix socket, with OS processes
 * that use only the public API. Not a test: it prints figures, and checks nothing but that
 * each step happened within its bound.
 * 1. An outage storm (8 processes × 20 callers on one breaker, `test/fixtures/storm-worker.ts`,
 *    several rounds): calls that reached the failing upstream after the tripping write;
 *    compare-and-sets per counted failure and conflicts (INFO commandstats); propagation from
 *    the trip to each other process's first rejection, on Redis server time.
 * 2. Idle Redis commands per second per process: 2 processes following 2,000 breakers each.
 * 3. Writes per breaker per timed transition (open → halfOpen): 8 processes, 200 breakers.
 * 4. Heap per followed breaker on a RedisStore, closed and open, each sample a fresh process.
 * Run: npm run bench:fleet
 */
import { cpus, loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { CircuitBreaker } from 'statebreaker';
import { RedisStore } from 'statebreaker/redis';
import type { StormReport } from '../test/fixtures/storm-worker.js';
import { RedisServer } from '../test/support/redis-server.js';
import { waitFor } from '../test/support/redis-wait.js';
import { StormUpstream, StormWorker } from '../test/support/storm-fleet.js';
import {
  breakdown,
  Child,
  commandCounts,
  delta,
  ms,
  must,
  of,
  percentile,
  sleep,
  sum,
  totalCommands,
} from './fleet-support.js';
import { formatNumber, median, table } from './harness.js';

const PREFIX = 'circuit_breaker:';

const STORM = {
  name: 'bench-storm',
  processes: 8,
  callers: 20,
  rounds: 5,
  outageMs: 2_000,
  upstreamDelayMs: 10,
  rejectedPauseMs: 5,
  breaker: {
    failMax: 5,
    resetTimeout: 400,
    halfOpenMaxCalls: 1,
    successThreshold: 2,
    timeout: 2_000,
  },
};
const IDLE = { processes: 2, breakers: 2_000, seconds: 12 };
const TRANSITION = { processes: 8, breakers: 200, resetTimeout: 2_000 };
const HEAP = { breakers: 2_000, repeats: 3 };

// ---------------------------------------------------------------------------------------------
// 1. The storm

interface StormRound {
  readonly tripper: number;
  /** Per process: calls answered 500 that arrived before the trip / after it (not probes). */
  readonly failedBeforeTrip: number[];
  readonly leaked: number[];
  /** Per process: probes answered 500. */
  readonly failedProbes: number[];
  /** Per process (NaN for the tripper): first rejection − trip, Redis server time. */
  readonly propagation: number[];
  /** Per process (NaN for the tripper): its own stateChange leaving closed − trip. */
  readonly sawTrip: number[];
  /** The most probes in flight at once at the upstream in any half-open round. */
  readonly maxProbesInFlight: number;
  readonly failures: number;
  readonly scripts: number;
  readonly publishes: number;
  readonly versions: number;
  readonly degraded: number;
  readonly commands: Map<string, number>;
  readonly closed: boolean;
}

async function stormRound(
  fleet: readonly StormWorker[],
  upstream: StormUpstream,
  admin: Redis,
  now: () => number,
): Promise<StormRound> {
  const { name, callers, outageMs } = STORM;
  const versionKey = `${PREFIX}{${name}}:version`;
  const reportsBefore = await reports(fleet);
  const before = await commandCounts(admin);
  const versionBefore = Number(await admin.get(versionKey));
  const statesFrom = fleet.map((w) => w.states.length);
  const rejectionsFrom = fleet.map((w) => w.firstRejections.length);
  const callsFrom = upstream.calls.length;
  const seqFrom = upstream.seq;
  const outageAt = now();

  upstream.healthy = false;
  await sleep(outageMs);
  upstream.healthy = true;
  const closed = await waitFor(() => fleet.every((w) => w.state === 'closed'), 15_000);
  // Every caller through once more: the round's last writes have landed.
  const healthyBefore = fleet.map((w) => upstream.healthyAnswersTo(w.pid));
  await waitFor(
    () =>
      fleet.every((w, i) => upstream.healthyAnswersTo(w.pid) - (healthyBefore[i] ?? 0) >= callers),
    5_000,
  );
  const reportsAfter = await reports(fleet);
  const after = await commandCounts(admin);
  const versionAfter = Number(await admin.get(versionKey));

  // The trip: the earliest closed → open seen by any process, on Redis server time.
  let tripAt = Number.POSITIVE_INFINITY;
  let tripper = -1;
  fleet.forEach((w, i) => {
    const trip = w.states
      .slice(statesFrom[i])
      .find((s) => s.from === 'closed' && s.to === 'open' && s.at >= outageAt);
    if (trip !== undefined && trip.at < tripAt) {
      tripAt = trip.at;
      tripper = i;
    }
  });
  // Answered 500 in this round, calls in flight when the outage began included.
  const calls = upstream.calls.filter((c) => c.status === 500 && c.endSeq > seqFrom);
  const rounds = upstream.halfOpenRounds(callsFrom);
  const countFor = (pid: number, test: (c: (typeof calls)[number]) => boolean) =>
    calls.filter((c) => c.pid === pid && test(c)).length;
  const commands = delta(before, after);
  const counts = (list: (StormReport | null)[], pick: (r: StormReport) => number) =>
    sum(list.map((r) => (r === null ? 0 : pick(r))));
  return {
    tripper,
    failedBeforeTrip: fleet.map((w) =>
      countFor(w.pid, (c) => c.state !== 'halfOpen' && c.at <= tripAt),
    ),
    leaked: fleet.map((w) => countFor(w.pid, (c) => c.state !== 'halfOpen' && c.at > tripAt)),
    failedProbes: fleet.map((w) => countFor(w.pid, (c) => c.state === 'halfOpen')),
    propagation: fleet.map((w, i) => {
      if (i === tripper) return Number.NaN;
      const first = w.firstRejections.slice(rejectionsFrom[i]).find((r) => r.at >= outageAt);
      return first === undefined ? Number.NaN : first.at - tripAt;
    }),
    sawTrip: fleet.map((w, i) => {
      if (i === tripper) return Number.NaN;
      const left = w.states.slice(statesFrom[i]).find((s) => s.from === 'closed');
      return left === undefined ? Number.NaN : left.at - tripAt;
    }),
    maxProbesInFlight: Math.max(0, ...rounds.map((r) => r.maxProbesInFlight)),
    failures:
      counts(reportsAfter, (r) => r.counts.failureEvents) -
      counts(reportsBefore, (r) => r.counts.failureEvents),
    scripts: of(commands, 'evalsha', 'eval'),
    publishes: of(commands, 'publish'),
    versions: versionAfter - versionBefore,
    degraded:
      counts(reportsAfter, (r) => r.counts.degraded) -
      counts(reportsBefore, (r) => r.counts.degraded),
    commands,
    closed,
  };
}

function reports(fleet: readonly StormWorker[]): Promise<(StormReport | null)[]> {
  return Promise.all(fleet.map((w) => w.fetchReport()));
}

async function storm(server: RedisServer, admin: Redis): Promise<string> {
  const { name, processes, callers, rounds } = STORM;
  // This process's Redis server time: a store's clock, measured once its first breaker loaded.
  const clockRedis = new Redis({ path: server.path });
  const clockStore = new RedisStore(clockRedis);
  const clockBreaker = new CircuitBreaker('bench-fleet-clock', { store: clockStore });
  await clockBreaker.settled();
  const now = () => clockStore.clock.now();
  const upstream = new StormUpstream(now);
  upstream.delayMs = STORM.upstreamDelayMs;
  await upstream.listen();
  const fleet = Array.from(
    { length: processes },
    () =>
      new StormWorker({
        socket: server.path,
        name,
        upstream: upstream.url,
        breaker: STORM.breaker,
      }),
  );
  const results: StormRound[] = [];
  try {
    await must(() => fleet.every((w) => w.ready), 60_000, 'the storm workers did not start');
    for (const w of fleet) w.start(callers, STORM.rejectedPauseMs);
    await must(
      () => fleet.every((w) => upstream.healthyAnswersTo(w.pid) >= callers),
      20_000,
      'the storm workers did not call the healthy upstream',
    );
    for (let r = 0; r < rounds; r++) results.push(await stormRound(fleet, upstream, admin, now));
    await Promise.all(fleet.map((w) => w.stop()));
  } finally {
    await Promise.all(fleet.map((w) => w.exit()));
    await upstream.close();
    clockBreaker.dispose();
    await clockStore.close();
    clockRedis.disconnect();
  }

  const finite = (values: readonly number[]) => values.filter(Number.isFinite);
  const callsPerRound = results.map((r, i) => [
    String(i + 1),
    `#${r.tripper}`,
    formatNumber(sum(r.failedBeforeTrip)),
    formatNumber(sum(r.leaked)),
    formatNumber(sum(r.failedProbes)),
    formatNumber(r.maxProbesInFlight),
    ms(median(finite(r.sawTrip))),
    ms(median(finite(r.propagation))),
    ms(Math.max(...finite(r.propagation))),
    formatNumber(r.degraded),
    r.closed ? 'yes' : 'NO',
  ]);
  const writesPerRound = results.map((r, i) => [
    String(i + 1),
    formatNumber(r.failures),
    formatNumber(r.scripts),
    formatNumber(r.scripts / r.failures, 2),
    formatNumber(r.publishes),
    formatNumber(r.scripts - r.publishes),
    formatNumber(r.versions),
  ]);
  const perProcess = Array.from({ length: processes }, (_, i) => [
    `#${i}`,
    formatNumber(results.filter((r) => r.tripper === i).length),
    formatNumber(sum(results.map((r) => r.failedBeforeTrip[i] ?? 0))),
    formatNumber(sum(results.map((r) => r.leaked[i] ?? 0))),
    formatNumber(sum(results.map((r) => r.failedProbes[i] ?? 0))),
    results
      .map((r) => (Number.isFinite(r.propagation[i]) ? formatNumber(r.propagation[i] ?? 0) : '–'))
      .join(' / '),
  ]);
  const samples = results.flatMap((r) => finite(r.propagation));
  const sawSamples = results.flatMap((r) => finite(r.sawTrip));
  const missing = results.reduce(
    (n, r) => n + r.propagation.filter((p, i) => i !== r.tripper && !Number.isFinite(p)).length,
    0,
  );
  const leakedTotal = sum(results.map((r) => sum(r.leaked)));
  const scripts = sum(results.map((r) => r.scripts));
  const failures = sum(results.map((r) => r.failures));
  const publishes = sum(results.map((r) => r.publishes));
  const commands = new Map<string, number>();
  for (const r of results) {
    for (const [c, n] of r.commands) commands.set(c, (commands.get(c) ?? 0) + n);
  }
  return [
    `## 1. Outage storm: ${processes} processes × ${callers} callers, one breaker, ${rounds} rounds`,
    '',
    `Each round: the upstream (HTTP on 127.0.0.1, ${STORM.upstreamDelayMs} ms per answer) fails ` +
      `for ${formatNumber(STORM.outageMs)} ms, then recovers; the round ends once every process is ` +
      `closed and every caller got through again. Breaker: failMax ${STORM.breaker.failMax}, ` +
      `resetTimeout ${STORM.breaker.resetTimeout} ms, halfOpenMaxCalls ` +
      `${STORM.breaker.halfOpenMaxCalls}, successThreshold ${STORM.breaker.successThreshold}, ` +
      `timeout ${formatNumber(STORM.breaker.timeout)} ms; store defaults. The trip is the earliest ` +
      'closed → open any process saw (its stateChange, on Redis server time); "after the trip" ' +
      'counts calls admitted while closed that reached the failing upstream after it; ' +
      'propagation is, for every other process, its first rejection minus the trip ("saw the ' +
      'trip": its own stateChange leaving closed minus the trip), all on Redis server time ' +
      "through `store.clock.now()` (the processes' clocks agree to about a millisecond). " +
      '"Max probes in flight" is counted at the upstream (see test/fleet-storm.test.ts). ' +
      'Scripts are EVALSHA + EVAL (compare-and-sets, plus the few resync reads of the round); ' +
      'successful writes are PUBLISH (the script publishes each record it writes); conflicts = ' +
      'scripts − successful writes.',
    '',
    table(
      [
        'round',
        'tripped by',
        'failed calls before the trip',
        'after the trip',
        'failed probes',
        'max probes in flight',
        'saw the trip, p50',
        'first rejection, p50',
        'max',
        'degraded',
        'all closed',
      ],
      callsPerRound,
    ),
    '',
    table(
      [
        'round',
        'failure events',
        'scripts',
        'scripts per failure',
        'successful writes',
        'conflicts',
        'version +',
      ],
      writesPerRound,
    ),
    '',
    table(
      [
        'process',
        'tripped first',
        'failed calls before the trip',
        'after the trip',
        'failed probes',
        'propagation per round (ms)',
      ],
      perProcess,
    ),
    '',
    table(
      ['figure', 'value'],
      [
        [
          'calls that reached the failing upstream after the trip (all rounds, all processes)',
          `${formatNumber(leakedTotal)} (${formatNumber(leakedTotal / rounds, 1)} per round)`,
        ],
        [
          `propagation, trip → first rejection in each other process (${samples.length} samples${missing > 0 ? `, ${missing} missing` : ''})`,
          `p50 ${ms(percentile(samples, 50))}, p99 ${ms(percentile(samples, 99))}, max ${ms(Math.max(...samples))}`,
        ],
        [
          `the same to each other process's own stateChange leaving closed (${sawSamples.length} samples)`,
          `p50 ${ms(percentile(sawSamples, 50))}, p99 ${ms(percentile(sawSamples, 99))}, max ${ms(Math.max(...sawSamples))}`,
        ],
        [
          'compare-and-sets (scripts) per counted failure (failure events)',
          `${formatNumber(scripts / failures, 2)} (${formatNumber(scripts)} / ${formatNumber(failures)})`,
        ],
        [
          'conflicts (scripts − successful writes)',
          `${formatNumber(scripts - publishes)} of ${formatNumber(scripts)} (${formatNumber(((scripts - publishes) / scripts) * 100, 1)} %)`,
        ],
        ['Redis commands, all rounds (inside scripts included)', breakdown(commands)],
      ],
    ),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// 2. Idle commands

async function idle(server: RedisServer, admin: Redis): Promise<string> {
  const { processes, breakers, seconds } = IDLE;
  const children = Array.from(
    { length: processes },
    () =>
      new Child({ mode: 'follow', socket: server.path, prefix: 'bench-idle-', count: breakers }),
  );
  let total = 0;
  let elapsed = 0;
  let commands = new Map<string, number>();
  try {
    await Promise.all(children.map((c) => c.next('ready', 120_000)));
    const countsBefore = await commandCounts(admin);
    const before = await totalCommands(admin);
    const start = performance.now();
    await sleep(seconds * 1000);
    const after = await totalCommands(admin);
    elapsed = (performance.now() - start) / 1000;
    commands = delta(countsBefore, await commandCounts(admin));
    // Less this script's own INFO stats and INFO commandstats, run in between.
    total = after - before - 2;
  } finally {
    await Promise.all(children.map((c) => c.exit()));
  }
  const perProcess = total / elapsed / processes;
  const roundTrips = of(commands, 'evalsha', 'eval', 'time', 'ping', 'subscribe');
  return [
    `## 2. Idle: ${processes} processes each following the same ${formatNumber(breakers)} breakers`,
    '',
    `Default RedisStore and breaker options; one successful call on each breaker, then ` +
      `${seconds} s idle (resyncInterval 10 s: the window holds one or two checks of the change ` +
      'counter per process; clockSyncInterval 60 s). `total_commands_processed` counts the ' +
      'commands run inside scripts too.',
    '',
    table(
      ['figure', 'value'],
      [
        [
          'Redis commands per second per process (total_commands_processed delta)',
          formatNumber(perProcess, 2),
        ],
        [
          'client round trips per second per process (EVALSHA, EVAL, TIME, PING, SUBSCRIBE)',
          formatNumber(roundTrips / elapsed / processes, 2),
        ],
        ['per followed breaker per minute', formatNumber((perProcess * 60) / breakers, 4)],
        [
          'record reads (EVALSHA) per followed breaker in the window',
          formatNumber(of(commands, 'evalsha', 'eval') / breakers / processes, 2),
        ],
        [`commands over ${formatNumber(elapsed, 1)} s`, breakdown(commands) || 'none'],
      ],
    ),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// 3. Writes per timed transition

async function transition(server: RedisServer, admin: Redis): Promise<string> {
  const { processes, breakers, resetTimeout } = TRANSITION;
  const children = Array.from(
    { length: processes },
    () =>
      new Child({
        mode: 'follow',
        socket: server.path,
        prefix: 'bench-transition-',
        count: breakers,
        breaker: { failMax: 1, resetTimeout },
        // No periodic resync: every script in the window is then a compare-and-set.
        store: { resyncInterval: 600_000 },
      }),
  );
  const counts = () => Promise.all(children.map((c) => c.count()));
  const everyone = async (...states: string[]) =>
    (await counts()).every((s) => sum(states.map((state) => s[state] ?? 0)) === breakers);
  let commands = new Map<string, number>();
  let wasAllOpen = false;
  try {
    await Promise.all(children.map((c) => c.next('ready', 120_000)));
    const [first] = children as [Child];
    first.send({ type: 'trip' });
    await first.next('tripped', 30_000);
    await must(() => everyone('open', 'halfOpen'), 30_000, 'not every process saw every trip');
    // The window must open before the first half-open: else its figure is reported as unclean.
    wasAllOpen = await everyone('open');
    const before = await commandCounts(admin);
    await must(() => everyone('halfOpen'), 30_000, 'not every breaker half-opened');
    commands = delta(before, await commandCounts(admin));
  } finally {
    await Promise.all(children.map((c) => c.exit()));
  }
  const scripts = of(commands, 'evalsha', 'eval');
  const writes = of(commands, 'publish');
  return [
    `## 3. Writes per timed transition: ${processes} processes, ${breakers} tripped breakers`,
    '',
    `One process trips all ${breakers} (failMax 1, resetTimeout ${formatNumber(resetTimeout)} ms); ` +
      `once every process holds all of them open, the window runs until every process holds ` +
      `all of them half-open (each process's own timer). Periodic resync off, so every script ` +
      `is a compare-and-set.${wasAllOpen ? '' : ' (The window did not start cleanly.)'}`,
    '',
    table(
      ['figure', 'value'],
      [
        ['compare-and-sets (EVALSHA + EVAL) per breaker', formatNumber(scripts / breakers, 2)],
        ['successful writes (PUBLISH) per breaker', formatNumber(writes / breakers, 2)],
        ['conflicts per breaker', formatNumber((scripts - writes) / breakers, 2)],
        ['commands in the window', breakdown(commands) || 'none'],
      ],
    ),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// 4. Heap per followed breaker

interface HeapVariant {
  readonly label: string;
  readonly weigh: 'closed' | 'open';
  readonly memoryStore: boolean;
}

const HEAP_VARIANTS: HeapVariant[] = [
  { label: 'RedisStore, closed (one call each)', weigh: 'closed', memoryStore: false },
  { label: 'RedisStore, open (5 failures each)', weigh: 'open', memoryStore: false },
  { label: 'MemoryStore, closed (reference)', weigh: 'closed', memoryStore: true },
  { label: 'MemoryStore, open (reference)', weigh: 'open', memoryStore: true },
];

async function heapSample(server: RedisServer, variant: HeapVariant, run: number) {
  const child = new Child(
    {
      mode: 'heap',
      socket: server.path,
      prefix: `bench-heap-${variant.weigh}-${variant.memoryStore ? 'm' : 'r'}-${run}-`,
      count: HEAP.breakers,
      weigh: variant.weigh,
      memoryStore: variant.memoryStore,
    },
    ['--expose-gc'],
  );
  try {
    return await child.next('heap', 120_000);
  } finally {
    await child.exit();
  }
}

async function heap(server: RedisServer): Promise<string> {
  const rows: string[][] = [];
  for (const variant of HEAP_VARIANTS) {
    const samples = [];
    // Heap figures do not depend on CPU contention: two samples at once.
    for (let r = 0; r < HEAP.repeats; r += 2) {
      const runs = [r, r + 1].filter((i) => i < HEAP.repeats);
      samples.push(...(await Promise.all(runs.map((i) => heapSample(server, variant, i)))));
    }
    const bytes = samples.map((s) => s.bytesPerBreaker);
    rows.push([
      variant.label,
      formatNumber(median(bytes)),
      bytes.map((b) => formatNumber(b)).join(' / '),
      formatNumber(sum(samples.map((s) => s.wrongState))),
    ]);
  }
  return [
    `## 4. Heap per followed breaker: ${formatNumber(HEAP.breakers)} breakers on one store, each sample a fresh process`,
    '',
    '`heapUsed` delta after `gc()` / breakers (`--expose-gc`, as `bench/memory-child.ts`), ' +
      `default options, median of ${HEAP.repeats} processes. Source loaded through tsx ` +
      '(see bench/README.md on keepNames).',
    '',
    table(['breakers', 'B/breaker (median)', 'samples', 'not in the state weighed'], rows),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------

const server = await RedisServer.start();
const admin = new Redis({ path: server.path });
try {
  const load = loadavg()
    .map((value) => value.toFixed(1))
    .join(' ');
  console.log(
    `# Fleet figures (Node ${process.version}, ${cpus().length} CPUs, load average ${load}, redis-server on a unix socket)\n`,
  );
  console.log(`${await storm(server, admin)}\n`);
  console.log(`${await idle(server, admin)}\n`);
  console.log(`${await transition(server, admin)}\n`);
  console.log(`${await heap(server)}\n`);
} finally {
  admin.disconnect();
  await server.stop();
}
