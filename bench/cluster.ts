/**
 * Redis Cluster figures, on clusters of 3 masters and 3 replicas this script starts on loopback
 * ports (`test/support/redis-cluster.ts`). Not a test: it prints figures, and checks nothing but
 * that each step happened within its bound.
 * 1. Messages per node for 1,000 breakers, classic PUBLISH vs sharded SPUBLISH: 4 stores, each
 *    breaker tripped once; per node: pub/sub messages received over the cluster bus (CLUSTER
 *    INFO), messages delivered to subscribers (each channel's published messages × its
 *    subscribers on that node, PUBSUB NUMSUB / SHARDNUMSUB), bytes sent to clients (INFO).
 * 2. Propagation across processes and shards: 4 OS processes holding 60 breakers (20 per
 *    master); each trip in one process → the same stateChange in each other process, on Redis
 *    server time; classic and sharded.
 * 3. Idle cost: Redis commands per second (every node) of one store following 2,000 breakers,
 *    on ioredis and on node-redis: sent by the store, and run inside its scripts.
 * 4. Convergence after a master failover (SIGKILL), several runs, each on a fresh cluster:
 *    3 processes; Redis's own failover, and the fleet agreeing again with the promoted node on
 *    every breaker of the failed master (an open one, a trip the replica lost, a trip made
 *    while the master was gone).
 * Run: npm run bench:cluster [-- messages propagation idle failover] (default: all)
 */
import { cpus, loadavg } from 'node:os';
import type { Cluster } from 'ioredis';
import { CircuitBreaker } from 'statebreaker';
import { RedisStore, type RedisStoreOptions } from 'statebreaker/redis';
import { everyWorker, fleetAgrees, statsOf } from '../test/support/fleet-scenarios.js';
import { closeClient, connectClusterClient } from '../test/support/redis-clients.js';
import {
  type ClusterNode,
  namesOnEveryMaster,
  RedisCluster,
} from '../test/support/redis-cluster.js';
import { Upstream, Worker } from '../test/support/redis-fleet.js';
import { breakerSlot } from '../test/support/redis-slots.js';
import { waitFor } from '../test/support/redis-wait.js';
import { formatNumber, median, table } from './harness.js';

const MESSAGES = { breakers: 1_000, stores: 4 };
const PROPAGATION = { processes: 4, perMaster: 20, gapMs: 25 };
const IDLE = { breakers: 2_000, seconds: 60, resyncInterval: 10_000 };
const FAILOVER = { runs: 5, processes: 3, nodeTimeout: 1_000, storeTimeout: 250 };

type Pubsub = 'classic' | 'sharded';
const MODES: readonly Pubsub[] = ['classic', 'sharded'];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ms = (value: number) => (Number.isFinite(value) ? `${formatNumber(value, 1)} ms` : '–');
const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return (
    sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN
  );
}

async function must(condition: () => boolean | Promise<boolean>, boundMs: number, what: string) {
  if (!(await waitFor(condition, boundMs))) throw new Error(`bench: ${what} within ${boundMs} ms`);
}

async function trip(breaker: CircuitBreaker): Promise<void> {
  await breaker.call(() => Promise.reject(new Error('down'))).catch(() => {});
}

/** Sums of the counters matching `pattern` in `text` (`name:value` lines). */
function counter(text: string, pattern: RegExp): number {
  return sum(
    text
      .split('\r\n')
      .filter((line) => pattern.test(line))
      .map((line) => Number(/:(\d+)/.exec(line)?.[1] ?? 0)),
  );
}

interface NodeCounts {
  readonly bus: number;
  readonly bytesOut: number;
}

async function nodeCounts(node: ClusterNode): Promise<NodeCounts> {
  const [info, stats] = (await Promise.all([
    node.admin.call('CLUSTER', 'INFO'),
    node.admin.call('INFO', 'stats'),
  ])) as [string, string];
  return {
    bus: counter(info, /^cluster_stats_messages_publish(shard)?_received:/),
    bytesOut: counter(stats, /^total_net_output_bytes:/),
  };
}

// ---------------------------------------------------------------------------------------------
// 1. Messages per node

interface MessageRun {
  readonly bus: Map<ClusterNode, number>;
  readonly deliveries: Map<ClusterNode, number>;
  readonly bytesOut: Map<ClusterNode, number>;
  readonly subscriberConnections: number;
  readonly published: number;
}

/** Subscribers of each channel on `node`: classic NUMSUB or sharded SHARDNUMSUB. */
async function subscribersOn(node: ClusterNode, mode: Pubsub, channels: readonly string[]) {
  const counts = new Map<string, number>();
  const command = mode === 'classic' ? 'NUMSUB' : 'SHARDNUMSUB';
  for (const channel of channels) {
    const reply = (await node.admin.call('PUBSUB', command, channel).catch(() => [])) as unknown[];
    counts.set(channel, Number(reply[1] ?? 0));
  }
  return counts;
}

async function messageRun(cluster: RedisCluster, mode: Pubsub, layout: 'all' | 'own') {
  const prefix = `bench-${mode}-${layout}:`;
  const names = Array.from({ length: MESSAGES.breakers }, (_, i) => `b${i}`);
  const clients: Cluster[] = [];
  const stores: RedisStore[] = [];
  const breakers: Map<string, CircuitBreaker>[] = [];
  const options: RedisStoreOptions = { prefix, pubsub: mode, resyncInterval: 600_000 };
  for (let s = 0; s < MESSAGES.stores; s++) {
    const client = cluster.client();
    clients.push(client);
    const store = new RedisStore(client, options);
    stores.push(store);
    const mine = layout === 'all' ? names : names.filter((_, i) => i % MESSAGES.stores === s);
    breakers.push(
      new Map(mine.map((name) => [name, new CircuitBreaker(name, { store, failMax: 1 })])),
    );
  }
  try {
    await Promise.all(breakers.flatMap((map) => [...map.values()].map((b) => b.settled())));
    const nodes = cluster.live;
    const before = new Map(
      await Promise.all(nodes.map(async (n) => [n, await nodeCounts(n)] as const)),
    );
    // Each breaker tripped once, by the first store that follows it, 50 at a time.
    const trippers = names.map((name) => breakers.find((map) => map.has(name))?.get(name));
    for (let i = 0; i < trippers.length; i += 50) {
      await Promise.all(trippers.slice(i, i + 50).map((b) => trip(b as CircuitBreaker)));
    }
    await Promise.all(trippers.map((b) => b?.settled()));
    await must(
      () => breakers.every((map) => [...map.values()].every((b) => b.state === 'open')),
      30_000,
      'every follower hears every trip',
    );
    await sleep(200);
    const after = new Map(
      await Promise.all(nodes.map(async (n) => [n, await nodeCounts(n)] as const)),
    );
    const channels =
      mode === 'classic' ? [`${prefix}changes`] : names.map((name) => `${prefix}{${name}}:changes`);
    const deliveries = new Map<ClusterNode, number>();
    for (const node of nodes) {
      const subscribers = await subscribersOn(node, mode, channels);
      // One message per breaker: on the store's channel (classic), on its own (sharded).
      const perChannel = mode === 'classic' ? MESSAGES.breakers : 1;
      deliveries.set(node, sum([...subscribers.values()].map((n) => n * perChannel)));
    }
    const pubsubClients = await Promise.all(
      nodes.map(
        async (n) =>
          ((await n.admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string)
            .split('\n')
            .filter((line) => line.includes(' ssub=') && !/ sub=0 psub=0 ssub=0/.test(line)).length,
      ),
    );
    const diff = (key: keyof NodeCounts) =>
      new Map(nodes.map((n) => [n, (after.get(n)?.[key] ?? 0) - (before.get(n)?.[key] ?? 0)]));
    return {
      bus: diff('bus'),
      deliveries,
      bytesOut: diff('bytesOut'),
      subscriberConnections: sum(pubsubClients),
      published: MESSAGES.breakers,
    } satisfies MessageRun;
  } finally {
    for (const map of breakers) for (const breaker of map.values()) breaker.dispose();
    await Promise.all(stores.map((store) => store.close()));
    for (const client of clients) client.disconnect();
  }
}

async function messages(): Promise<string> {
  const cluster = await RedisCluster.start();
  try {
    const masters = await cluster.masters();
    const roleOf = async (node: ClusterNode) => {
      if (masters.includes(node)) return `master ${masters.indexOf(node) + 1}`;
      const view = (await cluster.view()).find((v) => v.id === node.id);
      const master = masters.findIndex((m) => m.id === view?.masterId);
      return `replica of ${master + 1}`;
    };
    const sections: string[] = [];
    for (const layout of ['all', 'own'] as const) {
      const runs = new Map<Pubsub, MessageRun>();
      for (const mode of MODES) runs.set(mode, await messageRun(cluster, mode, layout));
      const classic = runs.get('classic') as MessageRun;
      const sharded = runs.get('sharded') as MessageRun;
      const nodes = [...masters, ...cluster.live.filter((n) => !masters.includes(n))];
      const rows: string[][] = [];
      for (const node of nodes) {
        rows.push([
          await roleOf(node),
          formatNumber(classic.bus.get(node) ?? 0),
          formatNumber(sharded.bus.get(node) ?? 0),
          formatNumber(classic.deliveries.get(node) ?? 0),
          formatNumber(sharded.deliveries.get(node) ?? 0),
          formatNumber((classic.bytesOut.get(node) ?? 0) / 1024, 0),
          formatNumber((sharded.bytesOut.get(node) ?? 0) / 1024, 0),
        ]);
      }
      const total = (run: MessageRun, key: 'bus' | 'deliveries' | 'bytesOut') =>
        sum([...run[key].values()]);
      rows.push([
        '**all nodes**',
        formatNumber(total(classic, 'bus')),
        formatNumber(total(sharded, 'bus')),
        formatNumber(total(classic, 'deliveries')),
        formatNumber(total(sharded, 'deliveries')),
        formatNumber(total(classic, 'bytesOut') / 1024, 0),
        formatNumber(total(sharded, 'bytesOut') / 1024, 0),
      ]);
      const follows =
        layout === 'all'
          ? `each of the ${MESSAGES.stores} stores follows all ${formatNumber(MESSAGES.breakers)} breakers`
          : `each of the ${MESSAGES.stores} stores follows its own ${formatNumber(MESSAGES.breakers / MESSAGES.stores)} breakers`;
      sections.push(
        [
          `### ${follows}`,
          '',
          `${formatNumber(MESSAGES.breakers)} changes (one trip per breaker). Subscriber connections: classic ${classic.subscriberConnections}, sharded ${sharded.subscriberConnections}.`,
          '',
          table(
            [
              'node',
              'bus msgs in, classic',
              'bus msgs in, sharded',
              'deliveries, classic',
              'deliveries, sharded',
              'KiB to clients, classic',
              'KiB to clients, sharded',
            ],
            rows,
          ),
        ].join('\n'),
      );
    }
    return [
      `## 1. Messages per node, ${formatNumber(MESSAGES.breakers)} breakers: classic PUBLISH vs sharded SPUBLISH`,
      '',
      'Bus msgs in: pub/sub messages the node received over the cluster bus (CLUSTER INFO ' +
        '`cluster_stats_messages_publish(shard)_received`). Deliveries: messages the node pushed ' +
        'to subscribers (published messages × subscribers of the channel on that node, PUBSUB ' +
        'NUMSUB / SHARDNUMSUB). KiB to clients: `total_net_output_bytes` (replies included).',
      '',
      sections.join('\n\n'),
    ].join('\n');
  } finally {
    await cluster.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Propagation across processes and shards

async function propagationRun(cluster: RedisCluster, upstream: Upstream, mode: Pubsub) {
  const lists = await namesOnEveryMaster(
    cluster,
    `prop-${mode}`,
    breakerSlot,
    PROPAGATION.perMaster,
  );
  const names = lists.flat();
  const shardOf = new Map(lists.flatMap((list, shard) => list.map((name) => [name, shard])));
  const fleet = Array.from(
    { length: PROPAGATION.processes },
    () =>
      new Worker({
        redis: { cluster: cluster.seeds },
        names,
        upstream: upstream.url,
        breaker: { failMax: 1, resetTimeout: 600_000 },
        store: { pubsub: mode, resyncInterval: 600_000 },
      }),
  );
  try {
    await must(
      everyWorker(fleet, (w) => w.ready),
      60_000,
      'workers ready',
    );
    upstream.mode = 'fail';
    names.forEach((name, i) => {
      setTimeout(
        () => fleet[i % fleet.length]?.send({ type: 'call', name }),
        i * PROPAGATION.gapMs,
      );
    });
    await must(
      everyWorker(fleet, (w) => names.every((name) => w.stateOf(name) === 'open')),
      30_000 + names.length * PROPAGATION.gapMs,
      'every process sees every trip',
    );
    const samples: number[] = [];
    const byShard = lists.map((): number[] => []);
    names.forEach((name, i) => {
      const tripper = fleet[i % fleet.length] as Worker;
      const at = (w: Worker) => w.states.find((s) => s.name === name && s.to === 'open')?.at;
      const t0 = at(tripper) as number;
      for (const worker of fleet) {
        if (worker === tripper) continue;
        const delay = (at(worker) as number) - t0;
        samples.push(delay);
        byShard[shardOf.get(name) as number]?.push(delay);
      }
    });
    return { samples, byShard };
  } finally {
    await Promise.all(fleet.map((worker) => worker.exit()));
  }
}

async function propagation(): Promise<string> {
  const cluster = await RedisCluster.start();
  const upstream = new Upstream();
  await upstream.listen();
  try {
    const rows: string[][] = [];
    for (const mode of MODES) {
      const { samples, byShard } = await propagationRun(cluster, upstream, mode);
      rows.push([
        mode,
        formatNumber(samples.length),
        ms(percentile(samples, 50)),
        ms(percentile(samples, 90)),
        ms(percentile(samples, 99)),
        ms(Math.max(...samples)),
        byShard.map((s) => ms(median(s))).join(' / '),
      ]);
    }
    return [
      `## 2. Propagation across ${PROPAGATION.processes} processes and 3 shards`,
      '',
      `${3 * PROPAGATION.perMaster} breakers (${PROPAGATION.perMaster} per master) in every ` +
        `process; each tripped once by one process (round-robin, one trip every ` +
        `${PROPAGATION.gapMs} ms); the tripping process's stateChange → the same stateChange in ` +
        'each other process, both on Redis server time (`store.clock.now()`). Resync every 10 ' +
        'minutes: every sample came through the feed.',
      '',
      table(['pub/sub', 'samples', 'p50', 'p90', 'p99', 'max', 'median per shard'], rows),
    ].join('\n');
  } finally {
    await upstream.close();
    await cluster.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Idle

// Replication, not the store: replicas' REPLCONF ACK, and the PING a master sends its replicas.
const REPLICATION = new Set(['replconf', 'ping']);

/** Calls and µs of every command on `node` (INFO commandstats): INFO and replication left out. */
async function commandStats(
  node: ClusterNode,
): Promise<Map<string, { calls: number; usec: number }>> {
  const text = (await node.admin.call('INFO', 'commandstats')) as string;
  const stats = new Map<string, { calls: number; usec: number }>();
  for (const line of text.split('\r\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (match === null || match[1] === 'info' || REPLICATION.has(match[1] as string)) continue;
    stats.set(match[1] as string, { calls: Number(match[2]), usec: Number(match[3]) });
  }
  return stats;
}

// What the store's scripts run inside: counted by Redis among its commands, sent by nobody.
const INSIDE_SCRIPTS = new Set(['get', 'strlen']);

interface IdleCounts {
  /** Commands the store sent (scripts, CLUSTER SLOTS, TIME, ...). */
  readonly sent: number;
  /** Commands run inside its scripts (GET, STRLEN). */
  readonly inside: number;
  /** Redis CPU spent on them, µs. */
  readonly usec: number;
}

async function idleCounts(cluster: RedisCluster): Promise<IdleCounts> {
  let sent = 0;
  let inside = 0;
  let usec = 0;
  for (const node of cluster.live) {
    for (const [command, stat] of await commandStats(node)) {
      if (INSIDE_SCRIPTS.has(command)) inside += stat.calls;
      else sent += stat.calls;
      usec += stat.usec;
    }
  }
  return { sent, inside, usec };
}

type IdleClient = 'ioredis' | 'node-redis';

async function idleRun(cluster: RedisCluster, family: IdleClient): Promise<string[]> {
  const client =
    family === 'ioredis'
      ? await connectClusterClient('ioredis5', cluster.seeds)
      : await connectClusterClient('node-redis6', cluster.seeds);
  // A longer store timeout than the default 500 ms: creating 2,000 breakers on a busy machine
  // must not leave some degraded, reconciling during the window.
  const store = new RedisStore(client, { prefix: `idle-${family}:`, timeout: 2_000 });
  const names = Array.from({ length: IDLE.breakers }, (_, i) => `idle${i}`);
  const breakers = names.map(
    (name) => new CircuitBreaker(name, { store, failMax: 1, resetTimeout: 3_600_000 }),
  );
  try {
    await Promise.all(breakers.map((breaker) => breaker.settled()));
    // Half of them tripped (open for an hour, a record each), half never written: checks
    // compare the stamps of both kinds.
    for (const breaker of breakers.slice(0, IDLE.breakers / 2)) await trip(breaker);
    await Promise.all(breakers.map((breaker) => breaker.settled()));
    // What setting up cost (loads, trips, the scripts' first EVAL) is over after one check.
    await sleep(IDLE.resyncInterval + 2_000);
    const before = await idleCounts(cluster);
    await sleep(IDLE.seconds * 1_000);
    const after = await idleCounts(cluster);
    const per = (value: number) => formatNumber(value / IDLE.seconds, 1);
    return [
      family,
      formatNumber(IDLE.breakers),
      per(after.sent - before.sent),
      per(after.inside - before.inside),
      per(after.sent - before.sent + after.inside - before.inside),
      formatNumber((after.usec - before.usec) / 1_000 / IDLE.seconds, 2),
    ];
  } finally {
    for (const breaker of breakers) breaker.dispose();
    await store.close();
    await closeClient(client);
  }
}

/**
 * Whether every live node's CLUSTER SLOTS names a replica beside each range's master. A fresh
 * cluster lists a replica only once its replication offset has reached the node by gossip; when
 * it does, ioredis's sharded subscribers see a new topology and SSUBSCRIBE every channel again
 * (one command per followed breaker), which is no idle cost.
 */
async function replicasListed(cluster: RedisCluster): Promise<boolean> {
  for (const node of cluster.live) {
    const ranges = (await node.admin.call('CLUSTER', 'SLOTS')) as unknown[][];
    if (ranges.some((range) => range.length < 4)) return false;
  }
  return true;
}

async function idle(): Promise<string> {
  const cluster = await RedisCluster.start();
  try {
    await must(() => replicasListed(cluster), 60_000, 'CLUSTER SLOTS lists every replica');
    const rows: string[][] = [];
    for (const family of ['ioredis', 'node-redis'] as const)
      rows.push(await idleRun(cluster, family));
    return [
      '## 3. Idle',
      '',
      `One store (one process) following ${formatNumber(IDLE.breakers)} breakers on the ` +
        `Cluster, half of them open (a record each), half closed and never written; default ` +
        `options (\`resyncInterval\` 10 s) but \`timeout\` 2 s; ${IDLE.seconds} s from one ` +
        'check after setting up. Counted on every node with INFO commandstats (INFO and ' +
        'replication traffic left out): commands the store sent (scripts, `CLUSTER SLOTS`, ' +
        '`TIME`), the reads its scripts run inside (GET, STRLEN), and the Redis CPU all of ' +
        'them took. A check that straddles an edge of the window counts in part.',
      '',
      table(
        [
          'client',
          'breakers',
          'commands sent/s',
          'reads inside scripts/s',
          'total_commands_processed/s',
          'Redis CPU, ms/s',
        ],
        rows,
      ),
    ].join('\n');
  } finally {
    await cluster.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Failover

interface FailoverRun {
  readonly redisMs: number;
  readonly convergedMs: number;
  readonly tripAfterMs: number;
  /** Probes in the half-open breaker's record once converged. */
  readonly probes: number;
  /** Most of its probes in flight at once that were admitted through the shared record. */
  readonly sharedProbes: number;
  readonly longestAdmissionMs: number;
  readonly degraded: number;
  readonly lostWrittenBack: boolean;
}

async function failoverRun(upstream: Upstream, run: number): Promise<FailoverRun> {
  const cluster = await RedisCluster.start({ nodeTimeout: FAILOVER.nodeTimeout });
  const reader = cluster.client();
  const store = new RedisStore(reader, { timeout: 2_000 });
  const lists = await namesOnEveryMaster(cluster, `failover-${run}`, breakerSlot, 4);
  const [open, lostTrip, duringOutage, halfOpen] = lists[0] as [string, string, string, string];
  const failed = [open, lostTrip, duringOutage, halfOpen];
  const others = lists.slice(1).flat();
  const master = await cluster.masterOf(breakerSlot(open));
  const [replica] = (await cluster.replicasOf(master)) as [ClusterNode];
  const fleet = Array.from(
    { length: FAILOVER.processes },
    () =>
      new Worker({
        redis: { cluster: cluster.seeds },
        names: [...failed, ...others],
        upstream: upstream.url,
        breaker: { failMax: 1, resetTimeout: 600_000 },
        breakers: { [halfOpen]: { resetTimeout: 300, probeLease: 600_000 } },
        store: { timeout: FAILOVER.storeTimeout, resyncInterval: 10_000 },
      }),
  );
  const everyone = (name: string, state: string) =>
    must(
      everyWorker(fleet, (w) => w.stateOf(name) === state),
      10_000,
      `${name} ${state} everywhere`,
    );
  try {
    await must(
      everyWorker(fleet, (w) => w.ready),
      60_000,
      'workers ready',
    );
    upstream.mode = 'fail';
    upstream.modeOf.clear();
    upstream.restartMaxima();
    const [first, second, third] = fleet as [Worker, Worker, Worker];
    first.send({ type: 'call', name: open });
    first.send({ type: 'call', name: halfOpen });
    await everyone(open, 'open');
    await everyone(halfOpen, 'halfOpen');
    // Its probes hang: each admission is one probe in flight for good.
    upstream.modeOf.set(halfOpen, 'hang');
    // Every process calls every breaker of the other masters through the failover.
    for (const worker of fleet) {
      for (const name of others) worker.send({ type: 'start', loops: 1, name });
    }
    replica.pause();
    await master.admin.call('CLIENT', 'KILL', 'TYPE', 'replica');
    second.send({ type: 'call', name: lostTrip });
    await everyone(lostTrip, 'open');
    const lost = await store.load(lostTrip);
    const killedAt = Date.now();
    await cluster.kill(master);
    replica.resume();
    // The fleet calls the half-open breaker whose master is gone: admissions need Redis.
    for (const worker of fleet) worker.send({ type: 'start', loops: 2, name: halfOpen });
    setTimeout(() => third.send({ type: 'call', name: duringOutage }), 100);
    let redisMs = Number.NaN;
    const redisDone = cluster.waitForFailover(master, 60_000).then((ok) => {
      if (ok) redisMs = Date.now() - killedAt;
    });
    let tripAfterMs = Number.NaN;
    const tripDone = waitFor(
      everyWorker(fleet, (w) => w.stateOf(duringOutage) === 'open'),
      60_000,
    ).then(() => {
      tripAfterMs = Date.now() - killedAt;
    });
    await redisDone;
    await must(
      async () => {
        for (const name of failed) {
          if (!(await fleetAgrees(fleet, store, name))) return false;
        }
        return true;
      },
      60_000,
      'fleet converged',
    );
    const convergedMs = Date.now() - killedAt;
    await tripDone;
    const stats = await statsOf(fleet);
    const written = await store.load(lostTrip);
    const probing = await store.load(halfOpen);
    return {
      redisMs,
      convergedMs,
      tripAfterMs,
      probes: Object.keys(probing?.snapshot.context.probes ?? {}).length,
      sharedProbes: upstream.maxSharedInFlightOf.get(halfOpen) ?? 0,
      longestAdmissionMs: Math.max(...stats.map((s) => s.longestAdmissionMs)),
      degraded: sum(fleet.map((w) => w.health.filter((h) => h.type === 'degraded').length)),
      lostWrittenBack:
        written?.snapshot.value === 'open' && written.snapshot.writeId !== lost?.snapshot.writeId,
    };
  } finally {
    await Promise.all(fleet.map((worker) => worker.exit()));
    await store.close();
    reader.disconnect();
    await cluster.stop();
  }
}

async function failover(): Promise<string> {
  const upstream = new Upstream();
  await upstream.listen();
  try {
    const runs: FailoverRun[] = [];
    for (let run = 1; run <= FAILOVER.runs; run++) runs.push(await failoverRun(upstream, run));
    const rows = runs.map((r, i) => [
      String(i + 1),
      ms(r.redisMs),
      ms(r.convergedMs),
      ms(r.tripAfterMs),
      r.lostWrittenBack ? 'yes' : 'NO',
      `${r.probes} / ${r.sharedProbes}`,
      ms(r.longestAdmissionMs),
      String(r.degraded),
    ]);
    const col = (pick: (r: FailoverRun) => number) => ms(median(runs.map(pick)));
    rows.push([
      '**median**',
      col((r) => r.redisMs),
      col((r) => r.convergedMs),
      col((r) => r.tripAfterMs),
      '',
      '',
      col((r) => r.longestAdmissionMs),
      '',
    ]);
    return [
      `## 4. Convergence after a master failover (${FAILOVER.runs} runs, each a fresh cluster)`,
      '',
      `${FAILOVER.processes} processes following breakers on every master (those of the other ` +
        `masters called all along); \`cluster-node-timeout\` ${FAILOVER.nodeTimeout} ms, store ` +
        `timeout ${FAILOVER.storeTimeout} ms. At the kill (SIGKILL) the failed master holds an ` +
        'open breaker, a trip its replica never received (frozen, cut off) and a half-open ' +
        'breaker with a free probe slot, which every process then calls (its probes hang); ' +
        '100 ms after the kill one process trips a fourth breaker of that master. Times from the ' +
        'kill: Redis: a replica serves the slots and every node reports `cluster_state:ok`; ' +
        "fleet: every process agrees with the promoted node's record of the four breakers; trip: " +
        "the fourth breaker's trip reaches every process. Probes: in the half-open breaker's " +
        'record once converged, and the most in flight at once that were admitted through the ' +
        'shared record (degraded admissions, each process deciding alone, not counted). Longest ' +
        'admission: the longest any call waited before running or being rejected, in any process.',
      '',
      table(
        [
          'run',
          'Redis failover',
          'fleet converged',
          'trip during outage everywhere',
          'lost trip written back',
          'probes: record / shared max',
          'longest admission',
          'degraded events',
        ],
        rows,
      ),
    ].join('\n');
  } finally {
    await upstream.close();
  }
}

// ---------------------------------------------------------------------------------------------

const load = loadavg()
  .map((value) => value.toFixed(1))
  .join(' ');
console.log(
  `# Redis Cluster figures (Node ${process.version}, ${cpus().length} CPUs, load average ${load}, redis-server 3 masters + 3 replicas on loopback)\n`,
);
const sections = { messages, propagation, idle, failover };
const asked = process.argv.slice(2);
for (const [name, section] of Object.entries(sections)) {
  if (asked.length === 0 || asked.includes(name)) console.log(`${await section()}\n`);
}
