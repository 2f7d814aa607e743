import type { Cluster } from 'ioredis';
import { RedisStore } from 'statebreaker/redis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  everyWorker as all,
  type FleetHarness,
  fleetAgrees,
  spawnFleet,
  statsOf,
  watch,
} from './support/fleet-scenarios.js';
import { useProcessFleet } from './support/process-fleet.js';
import { type ClusterNode, namesOnEveryMaster, RedisCluster } from './support/redis-cluster.js';
import type { Worker } from './support/redis-fleet.js';
import { breakerSlot } from './support/redis-slots.js';
import { waitFor } from './support/redis-wait.js';

// A master of a Redis Cluster is killed (SIGKILL) while breakers on its slots are open and
// half-open (one with a probe in flight, one with its slot free and the whole fleet calling),
// right after a trip its replica never received: the replica takes over, and a fleet of OS
// processes converges on the promoted node's data. The trip the replica lost is written back by
// the processes that saw it (the data-loss rule of docs/fleet.md); no other transition is lost; the
// probe slot is never given twice through the shared record; no admission waits on Redis longer
// than the store's timeout; and the change feed keeps flowing after the failover and after
// every subscriber connection is killed.

const STORE_TIMEOUT = 250;
// Bounds a hang, not a speed: ioredis alone would wait for the failover (seconds) or for a
// dead node's connect timeout (10 s); the store must cut every wait at its timeout.
const HANG_GRACE_MS = 1_000;

const shared = useProcessFleet(() => RedisCluster.start());
const { workers, closers } = shared;
let reader: Cluster;
let store: RedisStore;

afterAll(async () => {
  await store?.close();
  reader?.disconnect();
});

const harness = (): FleetHarness => ({
  target: { cluster: shared.redis.seeds },
  upstream: shared.upstream,
  adopt: (fleet) => workers.push(...fleet),
  defer: (close) => closers.push(close),
});

const agree = (fleet: Worker[], name: string) => fleetAgrees(fleet, store, name);

async function subscribers(node: ClusterNode, channel: string): Promise<number> {
  const reply = (await node.admin.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number];
  return Number(reply[1]);
}

describe('a master fails over under a fleet of 3 processes', () => {
  it('converges on the promoted replica, loses no transition and keeps the feed flowing', async () => {
    const lists = await namesOnEveryMaster(shared.redis, 'failover', breakerSlot, 5);
    const [open, halfOpen, freeSlot, lostTrip, afterFailover] = lists[0] as string[] as [
      string,
      string,
      string,
      string,
      string,
    ];
    const afterReconnect = (lists[1] as string[])[0] as string;
    const names = [open, halfOpen, freeSlot, lostTrip, afterFailover, afterReconnect];
    const master = await shared.redis.masterOf(breakerSlot(open));
    const [replica] = (await shared.redis.replicasOf(master)) as [ClusterNode];
    expect(replica).toBeDefined();
    reader = shared.redis.client();
    store = new RedisStore(reader, { timeout: 2_000 });

    const watcher = await watch(harness(), [halfOpen, freeSlot]);
    // A long resyncInterval: what arrives within the test's bounds came through the feed, or
    // through the resync a subscriber's return starts.
    const fleet = spawnFleet(harness(), names, 3, {
      breaker: { failMax: 1, resetTimeout: 60_000, successThreshold: 1, halfOpenMaxCalls: 1 },
      breakers: {
        [halfOpen]: { resetTimeout: 300, probeLease: 60_000 },
        [freeSlot]: { resetTimeout: 300, probeLease: 60_000 },
      },
      store: { timeout: STORE_TIMEOUT, resyncInterval: 60_000 },
    });
    const [first, second, third] = fleet as [Worker, Worker, Worker];
    expect(
      await waitFor(
        all(fleet, (w) => w.ready),
        20_000,
      ),
    ).toBe(true);
    const everyone = (name: string, state: string) =>
      waitFor(
        all(fleet, (w) => w.stateOf(name) === state),
        10_000,
      );

    // One breaker open; one half-open with a probe that hangs, the whole fleet calling it; one
    // half-open with its probe slot free, called only once its master is gone.
    shared.upstream.mode = 'fail';
    first.send({ type: 'call', name: open });
    expect(await everyone(open, 'open')).toBe(true);
    first.send({ type: 'call', name: halfOpen });
    first.send({ type: 'call', name: freeSlot });
    expect(await everyone(halfOpen, 'open')).toBe(true);
    expect(await everyone(freeSlot, 'open')).toBe(true);
    shared.upstream.modeOf.set(halfOpen, 'hang');
    shared.upstream.modeOf.set(freeSlot, 'hang');
    expect(await everyone(halfOpen, 'halfOpen')).toBe(true);
    expect(await everyone(freeSlot, 'halfOpen')).toBe(true);
    for (const worker of fleet) worker.send({ type: 'start', loops: 2, name: halfOpen });
    expect(
      await waitFor(async () => (shared.upstream.inFlightOf.get(halfOpen) ?? 0) >= 1, 10_000),
    ).toBe(true);
    expect(await waitFor(() => agree(fleet, halfOpen), 10_000)).toBe(true);
    const probing = await store.load(halfOpen);
    const probe = Object.keys(probing?.snapshot.context.probes ?? {});
    expect(probe).toHaveLength(1);
    const before = await statsOf(fleet);

    // A trip the replica never receives: frozen, and cut off by the master, which then
    // acknowledges the trip to its client and publishes it to its subscribers.
    replica.pause();
    await master.admin.call('CLIENT', 'KILL', 'TYPE', 'replica');
    second.send({ type: 'call', name: lostTrip });
    const heard = await everyone(lostTrip, 'open');
    const lost = await store.load(lostTrip).catch(() => null);
    await shared.redis.kill(master);
    replica.resume();
    // The whole fleet calls the half-open breaker whose master is gone: every admission needs
    // Redis, which does not answer until the replica takes over.
    for (const worker of fleet) worker.send({ type: 'start', loops: 2, name: freeSlot });
    expect(heard).toBe(true);
    expect(lost?.snapshot.value).toBe('open');
    expect(await shared.redis.waitForFailover(master, 30_000)).toBe(true);
    expect((await shared.redis.masterOf(breakerSlot(open))).id).toBe(replica.id);

    // The fleet converges on the promoted node's data.
    for (const name of [open, halfOpen, freeSlot, lostTrip]) {
      expect(await waitFor(() => agree(fleet, name), 20_000)).toBe(true);
    }
    const after = await statsOf(fleet);
    const stored = async (name: string) => (await store.load(name))?.snapshot;
    // No transition lost: the open breaker is the same open; the half-open one holds the same
    // probe; the trip the replica lost was written back by the processes that had seen it.
    const openRecord = await stored(open);
    expect(openRecord?.value).toBe('open');
    expect(openRecord?.context.generation).toBe(before[0]?.breakers[open]?.generation);
    const halfOpenRecord = await stored(halfOpen);
    expect(halfOpenRecord?.value).toEqual({ halfOpen: 'probing' });
    expect(Object.keys(halfOpenRecord?.context.probes ?? {})).toEqual(probe);
    expect(halfOpenRecord?.context.generation).toBe(before[0]?.breakers[halfOpen]?.generation);
    // The trip came back through another write (another write id), not from the replica.
    const lostRecord = await stored(lostTrip);
    expect(lostRecord?.value).toBe('open');
    expect(lostRecord?.writeId).not.toBe(lost?.snapshot.writeId);
    for (const stats of after) expect(stats.breakers[lostTrip]?.state).toBe('open');
    console.log(
      `failover: ${lostTrip} tripped at version ${lost?.version} (write ${lost?.snapshot.writeId}), ` +
        `lost with the master; written back at version ${(await store.load(lostTrip))?.version}`,
    );

    // The feed flows after the failover: a trip on the promoted master reaches every process
    // (their resync runs every minute).
    third.send({ type: 'call', name: afterFailover });
    expect(await everyone(afterFailover, 'open')).toBe(true);

    // ...and after every subscriber connection is killed, once ioredis has subscribed again.
    const otherMaster = await shared.redis.masterOf(breakerSlot(afterReconnect));
    const channel = `circuit_breaker:{${afterReconnect}}:changes`;
    expect(await subscribers(otherMaster, channel)).toBe(3);
    for (const node of shared.redis.live) await node.admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    expect(await waitFor(async () => (await subscribers(otherMaster, channel)) === 3, 20_000)).toBe(
      true,
    );
    first.send({ type: 'call', name: afterReconnect });
    expect(await everyone(afterReconnect, 'open')).toBe(true);

    // Through the shared record, never more than one probe at a time.
    for (const name of [halfOpen, freeSlot]) {
      const upstream = shared.upstream;
      const admitted = upstream.maxSharedInFlightOf.get(name) ?? 0;
      const alone = upstream.arrivals.filter((a) => a.breaker === name && a.degraded).length;
      console.log(
        `failover: ${name}: at most ${admitted} probe(s) in flight admitted through the shared ` +
          `record; ${alone} admitted by degraded processes deciding alone`,
      );
      expect(admitted).toBeLessThanOrEqual(1);
    }
    for (const record of watcher.announced) {
      expect(Object.keys(record.snapshot.context.probes).length).toBeLessThanOrEqual(1);
    }

    // No admission waited on Redis longer than the store's timeout (plus the process's own
    // event-loop delays).
    const final = await statsOf(fleet);
    for (const stats of final) {
      console.log(
        `failover: longest admission ${stats.longestAdmissionMs.toFixed(1)} ms, longest ` +
          `event-loop delay ${stats.longestLoopDelayMs.toFixed(1)} ms (store timeout ${STORE_TIMEOUT} ms)`,
      );
      expect(stats.longestAdmissionMs).toBeLessThan(
        STORE_TIMEOUT + HANG_GRACE_MS + stats.longestLoopDelayMs,
      );
    }
    // The open breaker never closed anywhere, nor did the lost trip's.
    for (const worker of fleet) {
      const closedAgain = worker.states.filter(
        (s) => (s.name === open || s.name === afterFailover) && s.to === 'closed',
      );
      expect(closedAgain).toEqual([]);
    }
  });
});
