import fc from 'fast-check';
import type { Redis } from 'ioredis';
import type { BreakerConfig, CircuitBreaker } from 'statebreaker';
import { type RedisStore, RedisStoreTimeoutError } from 'statebreaker/redis';
import {
  createPathBreaker,
  createSimulatedClock,
  PATH_CONFIG,
  PathFailureError,
  type SimulatedClock,
} from 'statebreaker/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BreakerKeys } from '../src/stores/redis/keys.js';
import type { FaultProxy, Faults } from './support/fault-proxy.js';
import { FLEET_RESYNC_MS, FleetRun, STALE_BOUND_MS } from './support/fleet-model.js';
import {
  type CallOutcome,
  cheapCommand,
  type FleetCommand,
  fleetConfig,
  restartCommand,
} from './support/fleet-model-commands.js';
import { FleetRedis, STORE_TIMEOUT_MS } from './support/fleet-model-redis.js';
import { waitFor } from './support/redis-wait.js';

// fast-check over random interleavings across a fleet of three breakers of one name, each on
// its own ioredis connection and RedisStore against a real redis-server, sharing one simulated
// clock: calls that succeed, fail or are ignored (some held open, settled later in random
// order, many of them half-open probes), clock steps, operator commands, forced resyncs, and a
// network that is not kind, each instance's through a fault proxy of its own: change messages
// lost or late, subscribers cut, command replies late (sometimes past the store's timeout) or
// held while the feed passes, partitions; the event loop stalled by a busy loop (during
// half-open admissions too); an instance's wall clock stepping by up to two minutes; and Redis
// losing its data: FLUSHALL or an old record put back with every connection cut (cheap, every
// run may have some), or redis-server SIGKILLed and restarted empty, with its data, or with an
// old dump (costly, in the second property). The invariants are FleetRun's
// (test/support/fleet-model.ts). On failure fast-check prints the seed and the shrunk command
// list.

// FLEET_RUNS=5000 for a longer search; the suite's total is CHEAP_RUNS + RESTART_RUNS.
const CHEAP_RUNS = Number(process.env.FLEET_RUNS ?? 900);
const RESTART_RUNS = Math.max(1, Math.ceil(CHEAP_RUNS / 9));
// Replays a reported failure: FLEET_SEED=<seed> FLEET_PATH=<path> (the two printed by fast-check).
const replay =
  process.env.FLEET_SEED === undefined
    ? {}
    : { seed: Number(process.env.FLEET_SEED), path: process.env.FLEET_PATH, endOnFailure: true };
const outcomes = fc.array(fc.constantFrom<CallOutcome>('success', 'failure', 'ignored'), {
  minLength: 1,
  maxLength: 4,
});

let fleet: FleetRedis;
let run = 0;
const figures = {
  runs: 0,
  longestStaleMs: 0,
  degradations: 0,
  repliesDelayed: 0,
  messagesDropped: 0,
  messagesDelayed: 0,
  maxProbesInRound: 0,
  overBound: 0,
  rollbacks: 0,
  staleRecreations: 0,
  versionsReused: 0,
  probesOverAfterLoss: 0,
  pathsBrokenAfterLoss: 0,
};

beforeAll(async () => {
  fleet = await FleetRedis.start(3, { resyncInterval: FLEET_RESYNC_MS });
});

afterAll(async () => {
  if (fleet !== undefined) {
    for (const proxy of fleet.proxies) {
      const counters = proxy.counters;
      figures.repliesDelayed += counters.repliesDelayed;
      figures.messagesDropped += counters.messagesDropped;
      figures.messagesDelayed += counters.messagesDelayed;
    }
    await fleet.close();
  }
  console.info(
    `fleet property: ${figures.runs} runs; at the proxies ${figures.repliesDelayed} replies ` +
      `delayed, ${figures.messagesDropped} messages dropped, ${figures.messagesDelayed} ` +
      `delayed; instances degraded ${figures.degradations} times; longest disagreement of a ` +
      `healthy instance with Redis ${Math.round(figures.longestStaleMs)} ms (bound ` +
      `${STALE_BOUND_MS} ms); most probes of one round at the upstream at once ` +
      `${figures.maxProbesInRound}, runs above halfOpenMaxCalls (degraded admissions) ` +
      `${figures.overBound}, speculative states rolled back ${figures.rollbacks}; after a data ` +
      `loss met a lost message: runs that never agreed ${figures.staleRecreations}, versions ` +
      `re-used (told apart by write id) ${figures.versionsReused}, probes over the bound ` +
      `${figures.probesOverAfterLoss}, paths broken ${figures.pathsBrokenAfterLoss}`,
  );
});

async function check(
  config: BreakerConfig,
  commands: readonly FleetCommand[],
  settleWith: readonly CallOutcome[],
): Promise<void> {
  await fleet.revive();
  await fleet.flushAll();
  fleet.hostOffsets.fill(0);
  const fleetRun = new FleetRun(fleet, `fleet ${++run}`, config);
  try {
    for (const command of commands) await fleetRun.step(command);
    await fleetRun.quiesce(settleWith);
  } finally {
    await fleetRun.dispose();
    figures.runs++;
    figures.longestStaleMs = Math.max(figures.longestStaleMs, fleetRun.longestStaleMs);
    figures.degradations += fleetRun.degradations;
    figures.maxProbesInRound = Math.max(figures.maxProbesInRound, fleetRun.maxProbesInRound);
    if (fleetRun.maxProbesInRound > config.halfOpenMaxCalls) figures.overBound++;
    figures.rollbacks += fleetRun.rollbacks;
    figures.staleRecreations += fleetRun.staleRecreations;
    figures.versionsReused += fleetRun.versionsReused;
    figures.probesOverAfterLoss += fleetRun.probesOverAfterLoss;
    figures.pathsBrokenAfterLoss += fleetRun.pathsBrokenAfterLoss;
  }
}

describe('property: a fleet of three breakers on one real Redis', () => {
  it('lost and late messages, late and held replies, partitions, stalls, clock steps, resyncs, FLUSHALL and old records put back: the invariants hold', async () => {
    await fc.assert(
      fc.asyncProperty(
        fleetConfig,
        fc.array(cheapCommand, { minLength: 5, maxLength: 40, size: 'max' }),
        outcomes,
        check,
      ),
      { numRuns: CHEAP_RUNS, ...replay },
    );
    expect(figures.runs).toBeGreaterThanOrEqual(CHEAP_RUNS);
  }, 600_000);

  it('redis-server SIGKILLed and restarted (empty, with its data, with an old dump): the invariants hold', async () => {
    await fc.assert(
      fc.asyncProperty(
        fleetConfig,
        fc.array(restartCommand, { minLength: 5, maxLength: 40, size: 'max' }),
        outcomes,
        check,
      ),
      { numRuns: RESTART_RUNS, ...replay },
    );
  }, 600_000);
});

// What the property found, each reproduced alone and kept as a guard: a blind overwrite of a
// record re-created at a re-used version after a data loss (fixed by write ids, which
// compare-and-set compares), and two forced-open cases found against in-progress versions of
// RedisStore and Replica. After a data loss met an instance that had missed changes, the
// fleet can still lose the change only the other instances saw: the property counts those
// cases (test/support/fleet-model.ts; FLEET_STRICT=1 fails on them) and docs/fleet.md says so (its limits).
// Once each instance's network went through a fault proxy, the property found a resync that
// waits without bound for the subscriber's SUBSCRIBE, and a change a recovered instance never
// writes: their reproductions below fail until RedisStore and Replica are fixed.
describe('found by the fleet property', () => {
  // A fleet of its own with no periodic resync: these cases need a lost message to stay lost.
  let quiet: FleetRedis;
  beforeAll(async () => {
    quiet = await FleetRedis.start(3);
  });
  afterAll(async () => {
    await quiet?.close();
  });

  async function pair(name: string, failMax = 3) {
    const clock = createSimulatedClock(1_000_000);
    const [a, b] = quiet.stores.map((store) =>
      createPathBreaker(name, { clock, store, config: { ...PATH_CONFIG, failMax } }),
    ) as [CircuitBreaker, CircuitBreaker];
    await a.settled();
    await b.settled();
    // Stores owe nothing from earlier tests (a resync owed after a fault would heal, mid-test,
    // the lost message these tests arrange on purpose).
    await Promise.all(quiet.stores.map((store) => store.resync()));
    return { a, b, keys: quiet.stores[0]?.keys(name) as BreakerKeys };
  }
  const fail = (breaker: CircuitBreaker) =>
    breaker.call(() => Promise.reject(new PathFailureError())).catch(() => {});
  /** Resolves `late` unless the promise settles first: a bound on waiting, not a speed check. */
  function within<T>(promise: Promise<T> | undefined, ms: number) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), ms);
    });
    return Promise.race([promise, late]).finally(() => clearTimeout(timer));
  }

  it('after FLUSHALL, a stale instance re-creating the record at a version another instance holds does not let that instance overwrite it unseen', async () => {
    await quiet.revive();
    // The scenario needs a to stay stale until it re-creates the record; a resync that heals it
    // first (as it should) spoils the setup, which is then tried again with a fresh name.
    let stale = false;
    for (let attempt = 0; attempt < 5 && !stale; attempt++) {
      const { a, b, keys } = await pair(`reuse ${++run}`);
      const proxy = quiet.proxies[0] as FaultProxy;
      try {
        const seen = proxy.counters.messages;
        await fail(a);
        await a.settled();
        expect(await waitFor(() => b.context.failures === 1)).toBe(true);
        // a's own change message has passed its proxy: the drop below is for b's next change.
        expect(await waitFor(() => proxy.counters.messages > seen)).toBe(true);
        // a misses b's next change, as a lost message would make it.
        const feed = proxy.subscribers;
        feed.dropMessages(1);
        await b.call(() => 'ok');
        await b.settled();
        expect(await waitFor(() => feed.drops === 0)).toBe(true);
        const held = (await quiet.read(keys.version, keys.snapshot))?.version ?? 0;
        await quiet.flushAll();
        await fail(a);
        await a.settled();
        // a re-created the record from its stale state (2 failures); b still holds version
        // `held`, which a may have reused. b's next write must meet a's record (its write id
        // differs) and build on it, not overwrite it with b's own 1 failure.
        stale = a.context.failures === 2;
        if (!stale) continue;
        await fail(b);
        await b.settled();
        const stored = await quiet.read(keys.version, keys.snapshot);
        expect(stored?.version ?? 0).toBeGreaterThan(held);
        expect(stored?.snapshot).toContain('"open"');
        expect(b.state).toBe('open');
      } finally {
        a.dispose();
        b.dispose();
      }
    }
    expect(stale, 'a stayed stale until it re-created the record, in one of 5 tries').toBe(true);
  });

  it("a trip a stale instance makes locally does not undo an operator's forceOpen", async () => {
    // Redis up, no fault but one lost change message: A misses B's forceOpen, trips on a
    // failure and half-opens on the clock; its write then meets the forced-open record.
    await quiet.revive();
    const { a, b, keys } = await pair(`forced over ${++run}`, 1);
    const clock = a.clock as SimulatedClock;
    try {
      const feed = quiet.proxies[0]?.subscribers as Faults;
      feed.dropMessages(1);
      b.forceOpen();
      await b.settled();
      expect(await waitFor(() => feed.drops === 0)).toBe(true);
      await fail(a);
      clock.increment(PATH_CONFIG.resetTimeout);
      await a.settled();
      const stored = await quiet.read(keys.version, keys.snapshot);
      expect(stored?.snapshot).toContain('"forcedOpen"');
      expect(await waitFor(() => a.state === 'forcedOpen' && b.state === 'forcedOpen')).toBe(true);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('after FLUSHALL, a forced-open circuit is re-created by the resync, so a new instance starts forced open', async () => {
    await quiet.revive();
    const name = `forced ${++run}`;
    const { a, b } = await pair(name);
    const late = [] as CircuitBreaker[];
    try {
      a.forceOpen();
      await a.settled();
      expect(await waitFor(() => b.state === 'forcedOpen')).toBe(true);
      await quiet.flushAll();
      await Promise.all(quiet.stores.map((store) => store.resync()));
      await a.settled();
      await b.settled();
      const clock = createSimulatedClock(1_000_000);
      late.push(createPathBreaker(name, { clock, store: quiet.stores[2] as RedisStore }));
      await late[0]?.settled();
      expect(late[0]?.state).toBe('forcedOpen');
    } finally {
      for (const breaker of [a, b, ...late]) breaker.dispose();
    }
  });

  it("a resync reads the record within the store's timeout while the subscriber's SUBSCRIBE goes unanswered", async () => {
    // In the property a `resync` step never finished: the subscriber had reconnected (every
    // connection cut) and its SUBSCRIBE had no answer yet when Redis stopped answering (a
    // partition, or a crash behind a proxy that accepts connections). RedisStore.resync()
    // first awaits the feed's SUBSCRIBE, with no bound, and ioredis neither answers nor fails
    // a command left unanswered on a dropped connection (it keeps it to send again once ready).
    // Here only the subscriber's path is a black hole and commands work: the resync that would
    // heal the dead feed never reads the record, and A misses B's trip.
    await quiet.revive();
    const { a, b } = await pair(`subscribe unanswered ${++run}`, 1);
    const proxy = quiet.proxies[0] as FaultProxy;
    try {
      proxy.subscribers.partition();
      const before = proxy.counters.connections.subscriber;
      // A's subscriber reconnects; its new connection becomes a subscriber (and falls into the
      // black hole) when its SUBSCRIBE reaches the server.
      proxy.cut('subscriber');
      expect(await waitFor(() => proxy.counters.connections.subscriber > before)).toBe(true);
      expect(await (quiet.clients[0] as Redis | undefined)?.ping()).toBe('PONG');
      await fail(b);
      await b.settled();
      expect(b.state).toBe('open');
      const resync = quiet.stores[0]?.resync().then(() => 'done');
      expect(await within(resync, 10 * STORE_TIMEOUT_MS)).toBe('done');
      expect(a.state).toBe('open');
    } finally {
      proxy.clear();
      a.dispose();
      b.dispose();
    }
  });

  it("a write that fails while a degraded instance's probe read is out is written once the read answers", async () => {
    // The property saw an instance stay open while Redis and the others stayed closed, healthy
    // and not degraded, until the run ended: its trip was never written. A degraded replica
    // with nothing to write probes the store with a read when its retry timer fires. A write
    // that fails while that read is out arms a new retry timer; when the read then answers,
    // answered() ends the degraded mode and clears that timer, and nothing writes the change
    // again: the replica stays dirty, with no write running and no timer, until its next event.
    await quiet.revive();
    const name = `retry cancelled ${++run}`;
    const clock = createSimulatedClock(1_000_000);
    const config = { ...PATH_CONFIG, failMax: 1 };
    const proxy = quiet.proxies[0] as FaultProxy;
    const store = quiet.stores[0] as RedisStore;
    // Store 0 has read the server's time and has its subscriber before the partition.
    const warm = createPathBreaker(`${name} warm`, { clock, store, config });
    await warm.settled();
    warm.dispose();
    const breakers: CircuitBreaker[] = [];
    try {
      proxy.partition();
      const a = createPathBreaker(name, { clock, store, config });
      breakers.push(a);
      const events: string[] = [];
      a.on('degraded', () => events.push('degraded'));
      a.on('recovered', () => events.push('recovered'));
      a.on('storeError', ({ error }) => {
        if (error instanceof RedisStoreTimeoutError) events.push(error.message);
      });
      // A's first read gets no answer: degraded, with nothing to write.
      expect(await waitFor(() => events.includes('degraded'))).toBe(true);
      const b = createPathBreaker(name, { clock, store: quiet.stores[1] as RedisStore, config });
      breakers.push(b);
      await b.settled();
      // A trips; its write is out (no answer, nothing runs behind the partition).
      await fail(a);
      expect(a.state).toBe('open');
      await new Promise((resolve) => setTimeout(resolve, 0.6 * STORE_TIMEOUT_MS));
      // A's retry timer fires: its write is out, so it probes with a read, also out.
      clock.increment(STORE_TIMEOUT_MS);
      // The write times out first (it went out first); the read is still within its timeout.
      // Healed a little later, so that the write, sent again behind the partition, arrives
      // past its deadline and is refused as late: only the read gets through.
      expect(await waitFor(() => events.some((e) => e.includes('compareAndSet')))).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 0.2 * STORE_TIMEOUT_MS));
      proxy.heal();
      expect(await waitFor(() => events.includes('recovered'))).toBe(true);
      // A is not degraded and Redis answers: its trip must reach Redis and B.
      expect(await waitFor(() => b.state === 'open', 10 * STORE_TIMEOUT_MS)).toBe(true);
    } finally {
      proxy.clear();
      for (const breaker of breakers) breaker.dispose();
    }
  });
});
