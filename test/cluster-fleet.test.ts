import { describe, it } from 'vitest';
import { type FleetHarness, tripProbeAndClose } from './support/fleet-scenarios.js';
import { useProcessFleet } from './support/process-fleet.js';
import { namesOnEveryMaster, RedisCluster } from './support/redis-cluster.js';
import { breakerSlot } from './support/redis-slots.js';

// OS processes sharing breakers on a Redis Cluster of 3 masters and 3 replicas, one breaker
// on each master: the scenario of test/fleet-processes.test.ts, across every shard at once.

const shared = useProcessFleet(() => RedisCluster.start());
const { workers, closers } = shared;

const harness = (): FleetHarness => ({
  target: { cluster: shared.redis.seeds },
  upstream: shared.upstream,
  adopt: (fleet) => workers.push(...fleet),
  defer: (close) => closers.push(close),
});

describe('a fleet of 4 processes sharing a breaker on each master of a Cluster', () => {
  it('trips together, probes at most halfOpenMaxCalls at once, and closes together', async () => {
    const names = (await namesOnEveryMaster(shared.redis, 'shard', breakerSlot)).flat();
    await tripProbeAndClose(harness(), names);
  });
});
