import { describe, expect, it } from 'vitest';
import { useProcessFleet } from './support/process-fleet.js';
import { type Announced, Worker, watchChanges } from './support/redis-fleet.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';

// The policies across OS processes sharing one breaker on a real redis-server, calling a real
// HTTP upstream in this process: the fleet's window, a retry-after heard by one process, and a
// quorum that one process alone cannot reach.

const shared = useProcessFleet(() => RedisServer.start());
const { workers, closers } = shared;
let run = 0;

async function spawnFleet(
  count: number,
  breaker: Record<string, number>,
  retryAfterHeader = false,
): Promise<{ name: string; fleet: Worker[]; announced: Announced[] }> {
  const name = `policies ${++run}`;
  const watcher = await watchChanges({ socket: shared.redis.path }, [name]);
  closers.push(watcher.close);
  const fleet = Array.from(
    { length: count },
    () =>
      new Worker({
        redis: { socket: shared.redis.path },
        names: [name],
        upstream: shared.upstream.url,
        breaker,
        retryAfterHeader,
      }),
  );
  workers.push(...fleet);
  expect(await waitFor(() => fleet.every((w) => w.ready), 20_000)).toBe(true);
  return { name, fleet, announced: watcher.announced };
}

// One call from `worker`, answered as `mode` says; resolves with its outcome.
async function call(worker: Worker, mode: 'ok' | 'fail' | 'limit') {
  shared.upstream.mode = mode;
  const before = worker.results.length;
  worker.send({ type: 'call' });
  expect(await waitFor(() => worker.results.length > before, 10_000)).toBe(true);
  return worker.results.at(-1)?.outcome;
}

describe('policies across 4 processes', () => {
  it('a failure rate spread so that no process reaches minimumCalls still trips the fleet', async () => {
    const { fleet, announced } = await spawnFleet(4, {
      failMax: 100,
      failureRateThreshold: 50,
      minimumCalls: 20,
      windowFlush: 100,
      resetTimeout: 60_000,
    });
    shared.upstream.delayMs = 1;
    // Six calls per process, half of them failing: 24 in all, none of the processes near 20.
    for (let round = 0; round < 3; round++) {
      for (const worker of fleet) {
        await call(worker, 'ok');
        await call(worker, 'fail');
      }
    }
    for (const worker of fleet) {
      expect(
        shared.upstream.arrivals.filter((a) => a.pid === worker.pid).length,
      ).toBeLessThanOrEqual(6);
    }
    expect(await waitFor(() => fleet.every((w) => w.state === 'open'), 10_000)).toBe(true);
    const trip = announced.find((a) => a.state === 'open') as Announced;
    expect(trip.snapshot.context.reason).toBe('failureRateReached');
    for (const worker of fleet) {
      expect(worker.states.find((s) => s.to === 'open')?.reason).toBe('failureRateReached');
    }
  });

  it('a 429 with retry-after in one process opens every process for that long', async () => {
    const resetTimeout = 300;
    const { fleet, announced } = await spawnFleet(
      3,
      { failMax: 5, resetTimeout, successThreshold: 1 },
      true,
    );
    shared.upstream.delayMs = 1;
    shared.upstream.retryAfterSeconds = 2;
    expect(await call(fleet[0] as Worker, 'limit')).toBe('failed');
    expect(await waitFor(() => fleet.every((w) => w.state === 'open'), 10_000)).toBe(true);
    const trip = announced.find((a) => a.state === 'open') as Announced;
    expect(trip.snapshot.context.reason).toBe('retryAfter');
    expect(trip.snapshot.context.openDuration).toBe(2_000);
    const openedAt = trip.snapshot.context.openedAt as number;
    for (const worker of fleet) {
      expect(worker.states.find((s) => s.to === 'open')?.reason).toBe('retryAfter');
    }
    // Another process is rejected meanwhile, told how long is left (on the shared record).
    expect(await call(fleet[1] as Worker, 'ok')).toBe('rejected');
    expect(await waitFor(() => fleet.every((w) => w.state === 'halfOpen'), 10_000)).toBe(true);
    for (const worker of fleet) {
      const halfOpened = worker.states.find((s) => s.to === 'halfOpen')?.at as number;
      // On server time, not before openedAt + 2 s (5 ms: the clock offsets' rounding), where
      // resetTimeout alone would have half-opened after 300 ms.
      expect(halfOpened).toBeGreaterThanOrEqual(openedAt + 2_000 - 5);
    }
  });

  it('with quorum 2, failures from one process alone never trip the fleet; a second process does', async () => {
    const { fleet, announced } = await spawnFleet(2, {
      failMax: 3,
      quorum: 2,
      resetTimeout: 60_000,
    });
    const [lone, other] = fleet as [Worker, Worker];
    shared.upstream.delayMs = 1;
    // The lone process's calls keep reaching the upstream and failing: the circuit stays closed.
    for (let i = 0; i < 10; i++) expect(await call(lone, 'fail')).toBe('failed');
    expect(fleet.map((w) => w.state)).toEqual(['closed', 'closed']);
    // The record the calls wrote reaches this process through the change feed.
    expect(await waitFor(() => announced.at(-1)?.snapshot.context.failures === 2, 10_000)).toBe(
      true,
    );
    expect(announced.every((a) => a.state === 'closed')).toBe(true);
    const last = announced.at(-1) as Announced;
    expect(last.snapshot.context.failures).toBe(2);
    expect(last.snapshot.context.streak).toHaveLength(1);
    // Its streak stopped growing at failMax - 1: the later failures wrote nothing.
    expect(announced.length).toBeLessThanOrEqual(2);
    expect(await call(other, 'fail')).toBe('failed');
    expect(await waitFor(() => fleet.every((w) => w.state === 'open'), 10_000)).toBe(true);
    expect((announced.at(-1) as Announced).snapshot.context.reason).toBe('failMaxReached');
  });
});
