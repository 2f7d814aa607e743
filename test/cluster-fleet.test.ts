import { describe, it } from 'vitest';
import { type FleetHarness, tripProbeAndClose } from './support/fleet-scenarios.js';
import { useProcessFleet } from './support/process-fleet.js';
import type { ClientFamily } from './support/redis-clients.js';
import { namesOnEveryMaster, RedisCluster } from './support/redis-cluster.js';
import { breakerSlot } from './support/redis-slots.js';

// OS processes sharing breakers on a Redis Cluster of 3 masters and 3 replicas, one breaker
// on each master: the scenario of test/fleet-processes.test.ts, across every shard at once, with
// each process on a client of its own (ioredis 5 and 6, node-redis 5 and 6, all on sharded
// pub/sub; iovalkey has no sharded subscribers): the clients mix on a Cluster too.

const shared = useProcessFleet(() => RedisCluster.start());
const { workers, closers } = shared;

const harness = (): FleetHarness => ({
  target: { cluster: shared.redis.seeds },
  upstream: shared.upstream,
  adopt: (fleet) => workers.push(...fleet),
  defer: (close) => closers.push(close),
});

const clients: readonly ClientFamily[] = ['ioredis5', 'node-redis6', 'ioredis6', 'node-redis5'];

describe('a fleet of 4 processes on 4 clients sharing a breaker on each master of a Cluster', () => {
  it('trips together, probes at most halfOpenMaxCalls at once, and closes together', async () => {
    const names = (await namesOnEveryMaster(shared.redis, 'shard', breakerSlot)).flat();
    await tripProbeAndClose(harness(), names, { clients });
  });
});
