/**
 * `npm run bench:followers`: many followers of the same breakers on one Redis, the redis-server
 * this script starts on a unix socket. A follower is a RedisStore with a client of its own (its
 * two connections: client and subscriber); the followers are spread over a few OS processes
 * (`fleet-child.ts`), since a Node process takes 60-90 MB. One writer (a RedisStore in this
 * process, itself subscribed) trips and closes the breakers. For each follower count:
 * - Redis CPU per change (INFO cpu, used_cpu_sys + used_cpu_user) over a paced burst of changes,
 *   less an idle window of the same length; bytes Redis sent per delivered message; CPU of the
 *   followers' processes per change per follower;
 * - propagation to each follower's stateChange, from the writer sending the write and from the
 *   writer hearing it confirmed (the write lands in between), on Redis server time: this
 *   machine's clock (Redis's TIME), and each store's estimate of it (`store.clock.now()`);
 * - an outage: every breaker tripped at once, then closed at once: Redis CPU per change, the
 *   time until every follower heard every change, the subscribers' output buffers (CLIENT LIST);
 * - idle Redis commands per second (INFO commandstats) over a window of two resyncIntervals;
 * - memory per process, Redis's memory and connected_clients.
 * Then the same idle figures with every follower following many more breakers, and a straight
 * line fitted to each figure against the follower count. Every store has a 5 s timeout: hundreds
 * of stores on a few shared cores would otherwise time out from CPU starvation alone.
 * Run: npm run bench:followers [-- --followers 50,100 --idle-breakers 0 ...] (see --help)
 */
import { cpus, freemem, loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { RedisServer } from '../test/support/redis-server.js';
import { breakdown, ms, percentile, sum } from './fleet-support.js';
import {
  type BurstResult,
  FollowerFleet,
  type OutputBuffers,
  STORE_TIMEOUT_MS,
  type WindowCost,
} from './followers-fleet.js';
import {
  FOLLOWERS_USAGE,
  type FollowersSettings,
  gapFor,
  parseFollowersSettings,
} from './followers-settings.js';
import { formatNumber, median, table } from './harness.js';

if (process.argv.includes('--help')) {
  console.log(FOLLOWERS_USAGE);
  process.exit(0);
}
const settings = parseFollowersSettings(process.argv.slice(2));
const RESYNC_INTERVAL_S = 10;
const TAIL_MS = 1_000;
/** How long the followers may take to hear one outage's changes. */
const OUTAGE_BOUND_MS = 120_000;

const load = () =>
  loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
const mb = (bytes: number) => `${formatNumber(bytes / 2 ** 20, 1)} MB`;
const us = (value: number) => formatNumber(value, 1);
const note = (line: string) => process.stderr.write(`${line}\n`);

interface ChangesRun {
  readonly followers: number;
  readonly gapMs: number;
  /** Breakers of the followers deciding alone after the bursts. */
  readonly degraded: number;
  readonly processes: number;
  readonly stores: string;
  readonly setupSeconds: number;
  readonly baseline: WindowCost;
  readonly paced: BurstResult;
  readonly outage: BurstResult;
  readonly buffers: OutputBuffers;
  readonly recentMaxOutputBuffer: number;
  readonly idle: IdleFigures;
  readonly memory: MemoryFigures;
}

interface IdleFigures {
  readonly perSecond: number;
  readonly seconds: number;
  readonly commands: Map<string, number>;
}

interface MemoryFigures {
  /** Breakers of the followers deciding alone (their store did not answer in time). */
  readonly degraded: number;
  readonly rss: number[];
  readonly heapUsed: number[];
  readonly connectedClients: number;
  readonly usedMemory: number;
  readonly clientsMemory: number;
}

/** Redis CPU per change in a burst, less the idle rate over the burst's length, in µs. */
function perChange(burst: BurstResult, baseline: WindowCost, pick: (c: WindowCost) => number) {
  const idle = (pick(baseline) / baseline.ms) * burst.cost.ms;
  return (pick(burst.cost) - idle) / burst.changes;
}

async function memoryOf(fleet: FollowerFleet): Promise<MemoryFigures> {
  const [usage, redis] = await Promise.all([fleet.usage(), fleet.redisFigures()]);
  return {
    degraded: sum(usage.map((u) => u.degraded)),
    rss: usage.map((u) => u.rss),
    heapUsed: usage.map((u) => u.heapUsed),
    connectedClients: redis.connectedClients,
    usedMemory: redis.usedMemory,
    clientsMemory: redis.clientsMemory,
  };
}

async function idleOf(fleet: FollowerFleet): Promise<IdleFigures> {
  const { commands, seconds } = await fleet.idleCommands(settings.idleSeconds);
  return { perSecond: sum([...commands.values()]) / seconds, seconds, commands };
}

/** `followers` stores following breakers of names of their own: changed ones, or idle ones. */
function startFleet(
  server: RedisServer,
  admin: Redis,
  followers: number,
  kind: 'changes' | 'idle',
) {
  const breakers = kind === 'changes' ? settings.breakers : settings.idleBreakers;
  return FollowerFleet.start(admin, {
    socket: server.path,
    tag: `followers-${kind}-${followers}x${breakers}-`,
    followers,
    breakers,
    processes: settings.processes,
    pubsub: settings.pubsub,
    record: kind === 'changes',
  });
}

async function changesRun(server: RedisServer, admin: Redis, followers: number) {
  const fleet = await startFleet(server, admin, followers, 'changes');
  try {
    const memory = await memoryOf(fleet);
    const gapMs = gapFor(settings, followers);
    const windowMs = settings.changes * gapMs + TAIL_MS;
    const baseline = await fleet.idle(windowMs);
    const paced = await fleet.paced(settings.changes, gapMs, windowMs);
    const outage = await fleet.outage(OUTAGE_BOUND_MS);
    const { buffers } = outage;
    const { recentMaxOutputBuffer } = await fleet.redisFigures();
    const degraded = sum((await fleet.usage()).map((u) => u.degraded));
    const idle = await idleOf(fleet);
    const run: ChangesRun = {
      followers,
      gapMs,
      degraded,
      processes: fleet.children.length,
      stores: storesText(fleet.storesPerProcess),
      setupSeconds: fleet.setupSeconds,
      baseline,
      paced,
      outage,
      buffers,
      recentMaxOutputBuffer,
      idle,
      memory,
    };
    note(
      `${followers} followers: Redis CPU per change ${us(perChange(paced, baseline, (c) => c.redisCpuMicros))} µs, ` +
        `p50 from the send ${ms(percentile(paced.propagation.sent, 50))}, idle ${formatNumber(idle.perSecond, 1)} commands/s (load ${load()})`,
    );
    return run;
  } finally {
    await fleet.close();
  }
}

async function idleRun(server: RedisServer, admin: Redis, followers: number) {
  const fleet = await startFleet(server, admin, followers, 'idle');
  try {
    const memory = await memoryOf(fleet);
    const idle = await idleOf(fleet);
    note(
      `${followers} followers of ${settings.idleBreakers} breakers: idle ${formatNumber(idle.perSecond, 1)} commands/s, ` +
        `RSS per process ${mb(median(memory.rss))} (load ${load()})`,
    );
    return {
      followers,
      processes: fleet.children.length,
      stores: storesText(fleet.storesPerProcess),
      setupSeconds: fleet.setupSeconds,
      memory,
      idle,
    };
  } finally {
    await fleet.close();
  }
}

function storesText(stores: readonly number[]): string {
  const least = Math.min(...stores);
  const most = Math.max(...stores);
  return least === most ? `${most}` : `${least}-${most}`;
}

/** The least-squares line y = intercept + slope · x, and how well it fits (R²). */
function leastSquares(points: readonly (readonly [number, number])[]) {
  const n = points.length;
  const mx = sum(points.map(([x]) => x)) / n;
  const my = sum(points.map(([, y]) => y)) / n;
  const sxx = sum(points.map(([x]) => (x - mx) ** 2));
  const sxy = sum(points.map(([x, y]) => (x - mx) * (y - my)));
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  const residual = sum(points.map(([x, y]) => (y - intercept - slope * x) ** 2));
  const total = sum(points.map(([, y]) => (y - my) ** 2));
  return { slope, intercept, r2: 1 - residual / total };
}

function fitLine(what: string, unit: string, points: readonly (readonly [number, number])[]) {
  if (points.length < 2) return null;
  const { slope, intercept, r2 } = leastSquares(points);
  const digits = Math.abs(slope) < 0.1 ? 4 : 3;
  return (
    `- ${what} ≈ ${formatNumber(intercept, 2)} + ${formatNumber(slope, digits)} × followers ` +
    `${unit} (R² ${formatNumber(r2, 3)}; ${points.map(([x, y]) => `${x}: ${formatNumber(y, 2)}`).join(', ')})`
  );
}

function report(
  runs: readonly ChangesRun[],
  idleRuns: readonly Awaited<ReturnType<typeof idleRun>>[],
  s: FollowersSettings,
) {
  const cpu = (r: ChangesRun) => perChange(r.paced, r.baseline, (c) => c.redisCpuMicros);
  const outageCpu = (r: ChangesRun) => perChange(r.outage, r.baseline, (c) => c.redisCpuMicros);
  const clientCpu = (r: ChangesRun) =>
    perChange(r.paced, r.baseline, (c) => c.followerCpuMicros) / r.followers;
  const bytes = (r: ChangesRun) =>
    perChange(r.paced, r.baseline, (c) => c.netOutput) / (r.followers + 1);
  const p = (values: readonly number[], q: number) => ms(percentile(values, q));
  const lines: string[] = [];
  lines.push(
    `## Changes: ${formatNumber(s.breakers)} breakers followed by every follower`,
    '',
    `Paced burst: ${s.changes} changes (trips and closes) by one writer, one every "gap" ms ` +
      `(${s.gapMs} ms, or ${s.gapPerFollowerMs} ms per follower when longer: the followers must ` +
      `keep up), in a window of changes × gap + ${formatNumber(TAIL_MS)} ms; the Redis CPU of an ` +
      'idle window of the same length is subtracted. Subscribers are the followers and the writer. ' +
      '"Followers busy": CPU time of their processes over the window, as a share of the ' +
      "machine's CPUs (other jobs share them too). " +
      "Propagation, to each follower's stateChange: a write lands between the writer sending " +
      'it and hearing it confirmed (its own stateChange), so the delay from the landing lies ' +
      'between "from the confirmation" and "from the send". Both on Redis server time read ' +
      "directly (Redis runs on this machine: its TIME is this machine's clock, which every " +
      'process reads); "stores\' estimate": from the confirmation on each store\'s own estimate ' +
      'of Redis time (`store.clock.now()`, as `bench:cluster` measures; whole ms, off by up to ' +
      'half the round trip of its last TIME).',
    '',
    table(
      [
        'followers',
        'processes (stores each)',
        'gap (ms)',
        'followers busy',
        'Redis CPU per change (µs)',
        'idle Redis CPU (ms/s)',
        'bytes sent per message delivered',
        'follower CPU per change per follower (µs)',
        'propagation from the confirmation, p50 / p99 / max',
        'from the send, p50 / p99',
        "from the confirmation, stores' estimate, p50 / p99",
        'deliveries missing',
        'degraded after',
      ],
      runs.map((r) => [
        formatNumber(r.followers),
        `${r.processes} (${r.stores})`,
        formatNumber(r.gapMs),
        `${formatNumber((r.paced.cost.followerCpuMicros / 1000 / r.paced.cost.ms / cpus().length) * 100)} %`,
        us(cpu(r)),
        formatNumber(r.baseline.redisCpuMicros / r.baseline.ms, 2),
        formatNumber(bytes(r)),
        us(clientCpu(r)),
        `${p(r.paced.propagation.host, 50)} / ${p(r.paced.propagation.host, 99)} / ${ms(Math.max(...r.paced.propagation.host))}`,
        `${p(r.paced.propagation.sent, 50)} / ${p(r.paced.propagation.sent, 99)}`,
        `${p(r.paced.propagation.store, 50)} / ${p(r.paced.propagation.store, 99)}`,
        formatNumber(r.paced.propagation.missing),
        formatNumber(r.degraded),
      ]),
    ),
    '',
    `## Outage: all ${formatNumber(s.breakers)} breakers tripped at once, then closed at once`,
    '',
    'Redis CPU per change over both bursts (idle rate and the CLIENT LIST reads subtracted); ' +
      'propagation as above; "all heard": from the first write of a burst sent to the last ' +
      'follower hearing its last change (trip burst / close burst). Output buffers: the ' +
      "subscribers' CLIENT LIST `omem`, read every 10 ms through both bursts; " +
      "`client_recent_max_output_buffer` (INFO clients, sampled by Redis's cron) after them.",
    '',
    table(
      [
        'followers',
        'Redis CPU per change (µs)',
        'propagation from the confirmation / the send, p50 / p99',
        'all heard (ms)',
        'largest omem, one client / all (polls)',
        'client_recent_max_output_buffer',
      ],
      runs.map((r) => [
        formatNumber(r.followers),
        us(outageCpu(r)),
        `${p(r.outage.propagation.host, 50)} / ${p(r.outage.propagation.host, 99)}; ${p(r.outage.propagation.sent, 50)} / ${p(r.outage.propagation.sent, 99)}`,
        r.outage.propagation.spread.map((v) => formatNumber(v)).join(' / '),
        `${formatNumber(r.buffers.maxOneClient)} B / ${formatNumber(r.buffers.maxAllClients)} B (${r.buffers.polls})`,
        `${formatNumber(r.recentMaxOutputBuffer)} B`,
      ]),
    ),
    '',
  );
  const idleRows = [
    ...runs.map((r) => ({ ...r, breakers: s.breakers })),
    ...idleRuns.map((r) => ({ ...r, breakers: s.idleBreakers })),
  ];
  lines.push(
    '## Idle and memory',
    '',
    `Idle: Redis commands per second (INFO commandstats, commands inside scripts counted) over ` +
      `${s.idleSeconds} s with nothing changing; default store options but the timeout ` +
      `(${formatNumber(STORE_TIMEOUT_MS)} ms for every store of this benchmark, so that CPU ` +
      `starvation of the shared machine does not turn into degraded stores): resyncInterval ` +
      `${RESYNC_INTERVAL_S} s, so the window holds two checks per follower; clockSyncInterval ` +
      '60 s. "Degraded at start": breakers deciding alone once every follower was ready. Memory after the followers loaded and subscribed: RSS and heapUsed per process ' +
      '(median, max); Redis used_memory and mem_clients_normal; connected_clients includes the ' +
      "writer's two connections and this script's.",
    '',
    table(
      [
        'followers',
        'breakers',
        'processes (stores each)',
        'setup (s)',
        'idle commands/s',
        'per follower per s',
        'commands in the window',
        'RSS per process, median / max',
        'heapUsed per process',
        'connected_clients',
        'Redis used_memory / clients',
        'degraded at start',
      ],
      idleRows.map((r) => [
        formatNumber(r.followers),
        formatNumber(r.breakers),
        `${r.processes} (${r.stores})`,
        formatNumber(r.setupSeconds, 1),
        formatNumber(r.idle.perSecond, 1),
        formatNumber(r.idle.perSecond / r.followers, 3),
        breakdown(r.idle.commands) || 'none',
        `${mb(median(r.memory.rss))} / ${mb(Math.max(...r.memory.rss))}`,
        mb(median(r.memory.heapUsed)),
        formatNumber(r.memory.connectedClients),
        `${mb(r.memory.usedMemory)} / ${mb(r.memory.clientsMemory)}`,
        formatNumber(r.memory.degraded),
      ]),
    ),
    '',
    '## Fitted lines (least squares over the follower counts)',
    '',
  );
  const fits = [
    fitLine(
      'Redis CPU per change, paced',
      'µs',
      runs.map((r) => [r.followers, cpu(r)]),
    ),
    fitLine(
      'Redis CPU per change, outage (all at once)',
      'µs',
      runs.map((r) => [r.followers, outageCpu(r)]),
    ),
    fitLine(
      "followers' CPU per change per follower, paced",
      'µs',
      runs.map((r) => [r.followers, clientCpu(r)]),
    ),
    fitLine(
      'propagation from the send p50, paced',
      'ms',
      runs.map((r) => [r.followers, percentile(r.paced.propagation.sent, 50)]),
    ),
    fitLine(
      'propagation from the send p99, paced',
      'ms',
      runs.map((r) => [r.followers, percentile(r.paced.propagation.sent, 99)]),
    ),
    fitLine(
      `idle commands/s, ${formatNumber(s.breakers)} breakers`,
      '/s',
      runs.map((r) => [r.followers, r.idle.perSecond]),
    ),
    fitLine(
      `idle commands/s, ${formatNumber(s.idleBreakers)} breakers`,
      '/s',
      idleRuns.map((r) => [r.followers, r.idle.perSecond]),
    ),
    fitLine(
      `RSS per process, ${formatNumber(s.idleBreakers)} breakers per follower`,
      'MB',
      idleRuns.map((r) => [r.followers, median(r.memory.rss) / 2 ** 20]),
    ),
  ].filter((line) => line !== null);
  lines.push(...(fits.length > 0 ? fits : ['(fewer than two follower counts: no line fitted)']));
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------

const cpu = cpus();
console.log('# bench:followers\n');
console.log(
  `Node ${process.version}, ${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, ${mb(freemem())} free; ` +
    `load average ${load()} at start; redis-server on a unix socket; pub/sub ${settings.pubsub}; ` +
    `followers ${settings.followers.join(', ')} over at most ${settings.processes} processes.\n`,
);
if (settings.idleSeconds < 2 * RESYNC_INTERVAL_S) {
  note(
    `note: an idle window of ${settings.idleSeconds} s holds fewer than two resync checks per follower`,
  );
}
const server = await RedisServer.start();
const admin = new Redis({ path: server.path });
const started = performance.now();
try {
  const runs: ChangesRun[] = [];
  for (const followers of settings.followers) runs.push(await changesRun(server, admin, followers));
  const idleRuns = [];
  if (settings.idleBreakers > 0) {
    for (const followers of settings.idleFollowers) {
      idleRuns.push(await idleRun(server, admin, followers));
    }
  }
  console.log(report(runs, idleRuns, settings));
  console.log(
    `\nRun took ${formatNumber((performance.now() - started) / 1000)} s; load average ${load()} at the end.`,
  );
} finally {
  admin.disconnect();
  await server.stop();
}
