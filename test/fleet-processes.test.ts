import { Redis } from 'ioredis';
import { CircuitBreaker } from 'statebreaker';
import { RedisStore } from 'statebreaker/redis';
import { describe, expect, it } from 'vitest';
import {
  everyWorker as all,
  type FleetHarness,
  spawnFleet,
  tripProbeAndClose,
  watch,
} from './support/fleet-scenarios.js';
import { useProcessFleet } from './support/process-fleet.js';
import type { Announced, Worker } from './support/redis-fleet.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';

// OS processes sharing one breaker on a real redis-server, calling a real HTTP upstream in
// this process: what one process with simulated time cannot show.

const shared = useProcessFleet(() => RedisServer.start());
const { workers, closers } = shared;
let run = 0;

const harness = (): FleetHarness => ({
  target: { socket: shared.redis.path },
  upstream: shared.upstream,
  adopt: (fleet) => workers.push(...fleet),
  defer: (close) => closers.push(close),
});

function spawn(name: string, count: number, breaker: Record<string, number>): Worker[] {
  return spawnFleet(harness(), [name], count, { breaker });
}

async function watchOne(name: string) {
  return (await watch(harness(), [name])).announced;
}

describe('a fleet of 4 processes sharing one breaker', () => {
  it('trips together, probes at most halfOpenMaxCalls at once, and closes together', () =>
    tripProbeAndClose(harness(), [`fleet ${++run}`]));

  it('a probe whose process is SIGKILLed holds its slot only until its lease expires', async () => {
    const name = `fleet ${++run}`;
    const announced = await watchOne(name);
    const probeLease = 600;
    const fleet = spawn(name, 4, {
      failMax: 1,
      resetTimeout: 200,
      successThreshold: 1,
      halfOpenMaxCalls: 1,
      probeLease,
    });
    expect(
      await waitFor(
        all(fleet, (w) => w.ready),
        20_000,
      ),
    ).toBe(true);

    shared.upstream.mode = 'fail';
    shared.upstream.delayMs = 1;
    fleet[0]?.send({ type: 'call' });
    expect(await waitFor(() => fleet[0]?.results.length === 1, 10_000)).toBe(true);
    expect(await waitFor(all(fleet, (w) => w.state === 'open'))).toBe(true);

    // The upstream hangs for the probe; the fleet keeps calling.
    shared.upstream.mode = 'hang';
    const arrivalsBefore = shared.upstream.arrivals.length;
    for (const worker of fleet) worker.send({ type: 'start', loops: 1 });
    expect(await waitFor(() => shared.upstream.arrivals.length > arrivalsBefore, 10_000)).toBe(
      true,
    );
    const holder = fleet.find(
      (w) => w.pid === shared.upstream.arrivals[arrivalsBefore]?.pid,
    ) as Worker;
    expect(holder).toBeDefined();
    const probing = announced.at(-1) as Announced;
    expect(Object.keys(probing.snapshot.context.probes)).toHaveLength(1);
    holder.child.kill('SIGKILL');
    expect(await waitFor(() => holder.exited)).toBe(true);
    shared.upstream.mode = 'ok';

    // Only the lease frees the slot: the machine counts its expiry as a failure and reopens.
    expect(
      await waitFor(
        () =>
          announced.some(
            (a) => a.version > probing.version && a.snapshot.context.reason === 'probeLeaseExpired',
          ),
        10_000,
      ),
    ).toBe(true);
    const expired = announced.find(
      (a) => a.version > probing.version && a.snapshot.context.reason === 'probeLeaseExpired',
    ) as Announced;
    expect(expired.state).toBe('open');
    const leaseUntil = Object.values(probing.snapshot.context.probes)[0] as number;
    expect(expired.snapshot.context.openedAt).toBe(leaseUntil);
    // Nobody probed in between: the dead process's slot stayed taken until then.
    const between = announced.filter(
      (a) => a.version > probing.version && a.version < expired.version,
    );
    expect(between.every((a) => a.state === 'halfOpen')).toBe(true);

    const survivors = fleet.filter((w) => w !== holder);
    expect(
      await waitFor(
        all(survivors, (w) => w.state === 'closed'),
        20_000,
      ),
    ).toBe(true);
  });

  it('a process that starts while the circuit is open rejects at once and half-opens on time', async () => {
    const name = `fleet ${++run}`;
    // Long enough that the new process (tsx start-up takes a second or more) starts while open.
    const resetTimeout = 5_000;
    // Trip it from this process, then leave: the late process decides alone.
    const redis = new Redis({ path: shared.redis.path });
    const store = new RedisStore(redis);
    const tripper = new CircuitBreaker(name, { store, failMax: 1, resetTimeout });
    await tripper.call(() => Promise.reject(new Error('down'))).catch(() => {});
    await tripper.settled();
    const openedAt = tripper.context.openedAt as number;
    tripper.dispose();
    await store.close();
    redis.disconnect();

    shared.upstream.mode = 'ok';
    const [late] = spawn(name, 1, { failMax: 1, resetTimeout }) as [Worker];
    expect(await waitFor(() => late.ready, 20_000)).toBe(true);
    expect(late.state).toBe('open');
    late.send({ type: 'call' });
    expect(await waitFor(() => late.results.length === 1)).toBe(true);
    expect(late.results[0]?.outcome).toBe('rejected');
    // Rejected without calling: the upstream never heard from this process.
    expect(shared.upstream.arrivals.filter((a) => a.pid === late.pid)).toEqual([]);
    const startedAt = late.results[0]?.at as number;

    expect(await waitFor(() => late.state === 'halfOpen', 10_000)).toBe(true);
    const halfOpened = late.states.find((s) => s.to === 'halfOpen')?.at as number;
    const due = openedAt + resetTimeout;
    console.log(
      `late process: started ${Math.round(startedAt - openedAt)} ms after the trip, ` +
        `half-opened ${Math.round(halfOpened - due)} ms after openedAt + resetTimeout`,
    );
    // Server time: not before the deadline (5 ms: the offset's rounding on two stores).
    expect(halfOpened).toBeGreaterThanOrEqual(due - 5);
    // A timer counted from start-up would fire at startedAt + resetTimeout: the half-open
    // must be nearer the true deadline than that one.
    expect(startedAt - openedAt).toBeGreaterThan(100);
    expect(halfOpened).toBeLessThan((due + startedAt + resetTimeout) / 2);
  });
});

describe('clock skew', () => {
  it('breakers on hosts 10 s apart half-open together, on server time', async () => {
    const name = `skew ${++run}`;
    const resetTimeout = 500;
    const make = (skew: number) => {
      const redis = new Redis({ path: shared.redis.path });
      const store = new RedisStore(redis, { hostNow: () => Date.now() + skew });
      const breaker = new CircuitBreaker(name, { store, failMax: 1, resetTimeout });
      const halfOpenAt: number[] = [];
      breaker.on('stateChange', ({ to }) => {
        if (to === 'halfOpen') halfOpenAt.push(store.clock.now());
      });
      closers.push(async () => {
        breaker.dispose();
        await store.close();
        redis.disconnect();
      });
      return { breaker, store, halfOpenAt };
    };
    const behind = make(-5_000);
    const ahead = make(5_000);
    await behind.breaker.settled();
    await ahead.breaker.settled();
    expect(Math.abs(behind.store.clock.now() - ahead.store.clock.now())).toBeLessThan(100);

    // The host that is behind trips; the one ahead would half-open at once on its own clock.
    await behind.breaker.call(() => Promise.reject(new Error('down'))).catch(() => {});
    await behind.breaker.settled();
    expect(await waitFor(() => ahead.breaker.state === 'open')).toBe(true);
    const openedAt = behind.breaker.context.openedAt as number;
    const due = openedAt + resetTimeout;
    expect(await waitFor(() => behind.halfOpenAt.length > 0 && ahead.halfOpenAt.length > 0)).toBe(
      true,
    );
    const [a, b] = [ahead.halfOpenAt[0] as number, behind.halfOpenAt[0] as number];
    console.log(
      `skew: host clocks 10 s apart; half-open at +${Math.round(a - due)} / +${Math.round(b - due)} ms after openedAt + resetTimeout (server time), ${Math.round(Math.abs(a - b))} ms apart`,
    );
    expect(a).toBeGreaterThanOrEqual(due - 50);
    expect(b).toBeGreaterThanOrEqual(due - 50);
    expect(Math.abs(a - b)).toBeLessThan(250);
  });
});
