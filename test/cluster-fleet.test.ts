import { afterAll, afterEach, beforeAll, describe, it } from 'vitest';
import { type FleetHarness, tripProbeAndClose } from './support/fleet-scenarios.js';
import { namesOnEveryMaster, RedisCluster } from './support/redis-cluster.js';
import { Upstream, type Worker } from './support/redis-fleet.js';
import { breakerSlot } from './support/redis-slots.js';

// OS processes sharing breakers on a Redis Cluster of 3 masters and 3 replicas, one breaker
// on each master: the scenario of test/fleet-processes.test.ts, across every shard at once.

let cluster: RedisCluster;
let upstream: Upstream;
const workers: Worker[] = [];
const closers: (() => unknown)[] = [];

beforeAll(async () => {
  cluster = await RedisCluster.start();
  upstream = new Upstream();
  await upstream.listen();
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.exit()));
  for (const close of closers.splice(0)) await close();
});

afterAll(async () => {
  await upstream?.close();
  await cluster?.stop();
});

const harness = (): FleetHarness => ({
  target: { cluster: cluster.seeds },
  upstream,
  adopt: (fleet) => workers.push(...fleet),
  defer: (close) => closers.push(close),
});

describe('a fleet of 4 processes sharing a breaker on each master of a Cluster', () => {
  it('trips together, probes at most halfOpenMaxCalls at once, and closes together', async () => {
    const names = (await namesOnEveryMaster(cluster, 'shard', breakerSlot)).flat();
    await tripProbeAndClose(harness(), names);
  });
});
