import { describe, expect, it } from 'vitest';
import { everyWorker as all, type FleetHarness, spawnFleet } from './support/fleet-scenarios.js';
import { useProcessFleet } from './support/process-fleet.js';
import type { Worker } from './support/redis-fleet.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';

// Failover routes in OS processes sharing their breakers on a real redis-server, calling a real
// HTTP upstream in this process that counts who called which target.

const shared = useProcessFleet(() => RedisServer.start());
let run = 0;

const harness = (): FleetHarness => ({
  target: { socket: shared.redis.path },
  upstream: shared.upstream,
  adopt: (fleet) => shared.workers.push(...fleet),
  defer: (close) => shared.closers.push(close),
});

/** Sends one route call to `worker` and waits for its result. */
async function routeCall(worker: Worker) {
  const before = worker.results.length;
  worker.send({ type: 'route' });
  expect(await waitFor(() => worker.results.length > before, 10_000)).toBe(true);
  return worker.results[before] as Worker['results'][number];
}

describe('a failover route shared by 3 processes', () => {
  it("one process's trip of the primary sends every other process's next call straight to the secondary; one probe brings it back", async () => {
    const id = ++run;
    const [a, b] = [`route ${id} a`, `route ${id} b`];
    const resetTimeout = 1_500;
    const fleet = spawnFleet(harness(), [a, b], 3, {
      breaker: { failMax: 1, resetTimeout, successThreshold: 1, halfOpenMaxCalls: 1 },
    });
    expect(
      await waitFor(
        all(fleet, (w) => w.ready),
        20_000,
      ),
    ).toBe(true);
    const upstream = shared.upstream;
    upstream.delayMs = 1;
    upstream.modeOf.set(a, 'fail');
    const hits = (name: string) => upstream.arrivals.filter((x) => x.breaker === name);

    // Process 0 meets the outage: its call fails over to b, and a trips for the whole fleet.
    const [first, ...others] = fleet as [Worker, ...Worker[]];
    expect(await routeCall(first)).toMatchObject({ outcome: 'succeeded', servedBy: b });
    expect(hits(a)).toHaveLength(1);
    expect(
      await waitFor(
        all(fleet, (w) => w.stateOf(a) === 'open'),
        10_000,
      ),
    ).toBe(true);
    const tripAt = first.states.find((s) => s.name === a && s.to === 'open')?.at as number;
    const lags = others.map(
      (w) => (w.states.find((s) => s.name === a && s.to === 'open')?.at as number) - tripAt,
    );
    console.log(`the other processes heard a open ${lags.join(' ms, ')} ms after the trip`);

    // Every other process goes straight to b: a is not called again.
    for (const worker of others) {
      expect(await routeCall(worker)).toMatchObject({ outcome: 'succeeded', servedBy: b });
    }
    expect(await routeCall(first)).toMatchObject({ outcome: 'succeeded', servedBy: b });
    expect(hits(a)).toHaveLength(1);
    expect(hits(b)).toHaveLength(4);

    // a recovers; once its open period ends, the fleet's concurrent calls send it one probe.
    upstream.modeOf.delete(a);
    // The probe answers slowly, so that the other calls meet it in flight however late they run.
    upstream.delayMs = 1_000;
    expect(
      await waitFor(
        all(fleet, (w) => w.stateOf(a) === 'halfOpen'),
        10_000,
      ),
    ).toBe(true);
    const results = await Promise.all(fleet.map((w) => routeCall(w)));
    expect(results.every((r) => r.outcome === 'succeeded')).toBe(true);
    expect(results.filter((r) => r.servedBy === a)).toHaveLength(1);
    expect(hits(a)).toHaveLength(2);
    expect(
      await waitFor(
        all(fleet, (w) => w.stateOf(a) === 'closed'),
        10_000,
      ),
    ).toBe(true);
    for (const worker of fleet) {
      expect(await routeCall(worker)).toMatchObject({ outcome: 'succeeded', servedBy: a });
    }
  }, 60_000);
});
