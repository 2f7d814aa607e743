import { describe, expect, it } from 'vitest';
import {
  everyWorker as all,
  type FleetHarness,
  spawnFleet,
  tripProbeAndClose,
  tripProbeBreaker,
} from './support/fleet-scenarios.js';
import { useProcessFleet } from './support/process-fleet.js';
import { CLIENT_FAMILIES } from './support/redis-clients.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';

// A fleet whose OS processes run different Redis clients (ioredis 5 and 6, iovalkey, node-redis
// 5 and 6; RESP2 and RESP3) on one redis-server: the keys, the scripts and the change feed are
// the store's, not the client's, so they share one breaker as one statechart.

const shared = useProcessFleet(() => RedisServer.start());
const { workers, closers } = shared;
let run = 0;

const harness = (): FleetHarness => ({
  target: { socket: shared.redis.path },
  upstream: shared.upstream,
  adopt: (fleet) => workers.push(...fleet),
  defer: (close) => closers.push(close),
});

describe('a fleet of one process per client family', () => {
  it('trips, probes once at a time and closes together; a trip on any client rejects on every other', async () => {
    const probing = `mixed ${++run}`;
    // One breaker per tripping process, so that each trip starts from closed everywhere.
    const tripped = CLIENT_FAMILIES.map((family) => `mixed ${run} tripped on ${family}`);
    const fleet = spawnFleet(harness(), [probing, ...tripped], CLIENT_FAMILIES.length, {
      clients: CLIENT_FAMILIES,
      breaker: tripProbeBreaker(1),
      breakers: Object.fromEntries(
        tripped.map((name) => [name, { failMax: 1, resetTimeout: 60_000 }]),
      ),
    });
    // Every process calls a failing upstream: one half-open probe at a time across the clients.
    await tripProbeAndClose(harness(), [probing], { fleet, halfOpenMaxCalls: 1 });
    for (const worker of fleet) worker.send({ type: 'stop' });

    shared.upstream.mode = 'fail';
    shared.upstream.delayMs = 1;
    for (const [i, tripper] of fleet.entries()) {
      const name = tripped[i] as string;
      const others = fleet.filter((w) => w !== tripper);
      tripper.send({ type: 'call', name });
      expect(await waitFor(() => tripper.results.some((r) => r.name === name), 10_000)).toBe(true);
      expect(tripper.results.find((r) => r.name === name)?.outcome).toBe('failed');
      expect(
        await waitFor(
          all(others, (w) => w.stateOf(name) === 'open'),
          10_000,
        ),
        `the others heard the trip on ${CLIENT_FAMILIES[i]}`,
      ).toBe(true);
      for (const other of others) other.send({ type: 'call', name });
      expect(
        await waitFor(
          all(others, (w) => w.results.some((r) => r.name === name)),
          10_000,
        ),
      ).toBe(true);
      const outcomes = others.map((w) => w.results.find((r) => r.name === name)?.outcome);
      expect(outcomes).toEqual(others.map(() => 'rejected'));
      // Only the tripping call reached the upstream.
      const arrivals = shared.upstream.arrivals.filter((a) => a.breaker === name);
      expect(arrivals.map((a) => a.pid)).toEqual([tripper.pid]);
    }
  });
});
