import type { RedisStore } from 'statebreaker/redis';
import { expect } from 'vitest';
import type { RedisTarget, WorkerOptions, WorkerStats } from '../fixtures/fleet-worker.js';
import type { ClientFamily } from './redis-clients.js';
import { type Announced, type Upstream, Worker, watchChanges } from './redis-fleet.js';
import { waitFor } from './redis-wait.js';

// Scenarios of OS processes sharing breakers, run on standalone Redis and on a Cluster alike.

/** Where a scenario runs: the Redis, the test upstream, and the file's bookkeeping. */
export interface FleetHarness {
  readonly target: RedisTarget;
  readonly upstream: Upstream;
  /** Called with every worker spawned, so that the file ends them after each test. */
  readonly adopt: (workers: Worker[]) => void;
  /** Called with every closer, run after each test. */
  readonly defer: (close: () => unknown) => void;
}

/**
 * Spawns `count` workers holding the breakers `names`; worker i runs the client family
 * `clients[i % clients.length]` (ioredis 5 when `clients` is absent).
 */
export function spawnFleet(
  harness: FleetHarness,
  names: readonly string[],
  count: number,
  options: Pick<WorkerOptions, 'breaker' | 'breakers' | 'store'> & {
    readonly clients?: readonly ClientFamily[];
  },
): Worker[] {
  const { target, upstream } = harness;
  const { clients, ...rest } = options;
  const fleet = Array.from({ length: count }, (_, i) => {
    const client = clients?.[i % clients.length];
    return new Worker({
      redis: target,
      names,
      upstream: upstream.url,
      ...rest,
      ...(client === undefined ? {} : { client }),
    });
  });
  harness.adopt(fleet);
  return fleet;
}

/** Listens to the change messages of `names` until the test ends. */
export async function watch(harness: FleetHarness, names: readonly string[]) {
  const watcher = await watchChanges(harness.target, names);
  harness.defer(watcher.close);
  return watcher;
}

export const everyWorker = (fleet: Worker[], test: (worker: Worker) => boolean) => () =>
  fleet.every(test);

/** Fresh counters of every worker. */
export function statsOf(fleet: readonly Worker[]): Promise<WorkerStats[]> {
  return Promise.all(fleet.map((worker) => worker.refreshStats()));
}

/** Whether every worker holds what `store` holds for `name`: state, generation and probes. */
export async function fleetAgrees(
  fleet: readonly Worker[],
  store: RedisStore,
  name: string,
): Promise<boolean> {
  const record = await store.load(name).catch(() => null);
  if (record === null) return false;
  const { value, context } = record.snapshot;
  const state = typeof value === 'string' ? value : Object.keys(value)[0];
  const probes = Object.keys(context.probes).join();
  return (await statsOf(fleet)).every((stats) => {
    const mine = stats.breakers[name];
    return (
      mine !== undefined &&
      mine.state === state &&
      mine.generation === context.generation &&
      mine.probes.join() === probes
    );
  });
}

/** The breaker options of `tripProbeAndClose`'s fleet, with `halfOpenMaxCalls` probes. */
export const tripProbeBreaker = (halfOpenMaxCalls: number) => ({
  failMax: 3,
  resetTimeout: 400,
  successThreshold: 2,
  halfOpenMaxCalls,
  timeout: 2_000,
});

/**
 * A fleet of 4 processes holding the breakers `names`, calling a failing upstream: every breaker
 * trips in every process, each half-open round admits at most `halfOpenMaxCalls` (default 2)
 * probes at once fleet-wide, and once the upstream recovers every process closes every breaker.
 * With `clients`, one process per client family; with `fleet`, those processes, whose breakers
 * `names` have the options `tripProbeBreaker(halfOpenMaxCalls)` (they may hold others).
 */
export async function tripProbeAndClose(
  harness: FleetHarness,
  names: readonly string[],
  mix: {
    readonly clients?: readonly ClientFamily[];
    readonly halfOpenMaxCalls?: number;
    readonly fleet?: Worker[];
  } = {},
): Promise<void> {
  const { upstream } = harness;
  const halfOpenMaxCalls = mix.halfOpenMaxCalls ?? 2;
  const watcher = await watch(harness, names);
  const fleet =
    mix.fleet ??
    spawnFleet(harness, names, mix.clients?.length ?? 4, {
      ...(mix.clients === undefined ? {} : { clients: mix.clients }),
      breaker: tripProbeBreaker(halfOpenMaxCalls),
    });
  expect(
    await waitFor(
      everyWorker(fleet, (w) => w.ready),
      20_000,
    ),
  ).toBe(true);

  upstream.mode = 'fail';
  upstream.delayMs = 20;
  const arrivalsBefore = upstream.arrivals.length;
  for (const worker of fleet) {
    for (const name of names) worker.send({ type: 'start', loops: 2, name });
  }

  // The trip of each breaker: the first record announced open.
  const tripOf = (name: string) => watcher.of(name).find((a) => a.state === 'open');
  expect(await waitFor(() => names.every((name) => tripOf(name) !== undefined), 10_000)).toBe(true);
  const tripped = (w: Worker) =>
    names.every((name) => ['open', 'halfOpen'].includes(w.stateOf(name)));
  expect(await waitFor(everyWorker(fleet, tripped))).toBe(true);
  // Every process rejects once it has seen the trips.
  expect(
    await waitFor(async () => {
      const stats = await Promise.all(fleet.map((w) => w.refreshStats()));
      return stats.every((s) => s.rejected > 0);
    }, 10_000),
  ).toBe(true);

  // Calls that reached the failing upstream after the tripping write and before the first
  // half-open round: admitted by processes that had not yet heard of the trip.
  const firstHalfOpen = (name: string) => {
    const trip = tripOf(name) as Announced;
    return watcher.of(name).find((a) => a.version > trip.version && a.state === 'halfOpen');
  };
  expect(
    await waitFor(() => names.every((name) => firstHalfOpen(name) !== undefined), 10_000),
  ).toBe(true);
  for (const name of names) {
    const trip = tripOf(name) as Announced;
    const leaked = upstream.arrivals
      .slice(arrivalsBefore)
      .filter(
        (a) =>
          a.breaker === name &&
          a.at > trip.receivedAt &&
          a.at < (firstHalfOpen(name) as Announced).receivedAt,
      );
    console.log(
      `fleet: ${name}: ${leaked.length} call(s) reached the failing upstream after the ` +
        `tripping write (version ${trip.version}) and before the first half-open`,
    );
  }

  // Many half-open rounds against a still failing upstream: never more probes than slots.
  upstream.restartMaxima();
  const rounds = (name: string) => watcher.of(name).filter((a) => a.state === 'halfOpen').length;
  const roundsBefore = new Map(names.map((name) => [name, rounds(name)]));
  expect(
    await waitFor(
      () => names.every((name) => rounds(name) >= (roundsBefore.get(name) as number) + 8),
      20_000,
    ),
  ).toBe(true);
  for (const name of names) {
    const most = upstream.maxInFlightOf.get(name) ?? 0;
    console.log(
      `fleet: ${name}: ${rounds(name)} half-open rounds; at most ${most} concurrent upstream ` +
        `calls (halfOpenMaxCalls ${halfOpenMaxCalls})`,
    );
    expect(most).toBeLessThanOrEqual(halfOpenMaxCalls);
  }
  // The announced records agree: no round ever held more probes than slots.
  for (const record of watcher.announced) {
    expect(Object.keys(record.snapshot.context.probes).length).toBeLessThanOrEqual(
      halfOpenMaxCalls,
    );
  }

  // Recovery: every process closes every breaker (then every loop calls at once: no bound).
  upstream.mode = 'ok';
  const closed = (w: Worker) => names.every((name) => w.stateOf(name) === 'closed');
  expect(await waitFor(everyWorker(fleet, closed), 20_000)).toBe(true);
  const succeeded = await waitFor(async () => {
    const stats = await Promise.all(fleet.map((w) => w.refreshStats()));
    return stats.every(
      (s) => s.succeeded > 0 && names.every((name) => s.breakers[name]?.state === 'closed'),
    );
  }, 10_000);
  expect(succeeded).toBe(true);
}
