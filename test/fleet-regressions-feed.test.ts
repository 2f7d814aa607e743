import { CircuitBreaker, CircuitBreakerError } from 'statebreaker';
import { RedisStore } from 'statebreaker/redis';
import { describe, expect, it } from 'vitest';
import {
  converge,
  type Member,
  settle,
  storedRecord,
  UpstreamError,
  useFaultHarness,
} from './support/fault-fleet.js';
import { waitFor } from './support/redis-wait.js';

// Regressions of the fleet protocol with a healthy Redis: how instances meet through the change
// feed and compare-and-set. A change must never be lost for good, the probe limit holds
// fleet-wide, contention and bursts are not store failures, and listeners see a confirmed
// transition once. Each test failed against the protocol it guards against; none measures time.

const harness = useFaultHarness();

/** Blocks the event loop, as a long synchronous task of the application does. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin
  }
}

/** Lets the promise jobs queued so far run, without letting timers or I/O in. */
async function drainMicrotasks(): Promise<void> {
  for (let i = 0; i < 50; i++) await Promise.resolve();
}

/** A deterministic pseudo-random sequence in [0, 1), so that a failing run can be replayed. */
function sequence(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 48_271) % 2_147_483_647;
    return state / 2_147_483_647;
  };
}

describe('a change delivered by the feed while this instance writes', () => {
  // Guards: a change can be lost for good. The replica dropped every change-feed message while
  // its own compare-and-set was in flight. When its own write landed first but its reply was
  // late (the application shares the ioredis client and a large GET was issued just before, so
  // the compare-and-set reply queues behind a multi-MB reply) while the feed connection
  // delivered another instance's newer record, that record was never applied, and the store
  // had marked it delivered, so no resync handed it over again.
  it("is applied: an instance whose compare-and-set reply queues behind a large reply converges on another instance's newer record", async () => {
    const name = harness.begin('late reply');
    const largeKey = `${name} large value`;
    await harness.admin.set(largeKey, Buffer.alloc(16 * 1024 * 1024, 'x'));
    const rounds = 5;
    let raced = 0;
    for (let round = 0; round < rounds; round++) {
      const roundName = `${name} round ${round}`;
      const options = { failMax: 100 };
      // A generous store timeout: the late reply must not pass for a failed write.
      const a = harness.join(roundName, options, { timeout: 10_000 });
      const b = harness.join(roundName, options, { timeout: 10_000 });
      await a.breaker.settled();
      await b.breaker.settled();

      // The application reads a large value through A's client, then a call fails through A's
      // breaker: A's compare-and-set is sent behind the GET and its reply queues behind the value.
      const large = a.redis.getBuffer(largeKey);
      expect(await settle(a.breaker, 'fail')).toBe('upstream');
      let aWritten = false;
      const aWrite = a.breaker.settled().then(() => {
        aWritten = true;
      });
      // B follows A's write on its feed, then an operator forces the circuit open through B:
      // a newer record, announced on A's feed connection, which nothing holds up.
      expect(await waitFor(() => b.breaker.context.failures === 1, 10_000)).toBe(true);
      b.breaker.forceOpen();
      await b.breaker.settled();
      if (!aWritten) raced++;
      await large;
      await aWrite;
      expect((await storedRecord(harness.admin, b, roundName))?.snapshot.value).toBe('forcedOpen');

      // A must take the stored record, on its own or at the latest through a resync.
      const converged = await waitFor(async () => {
        await a.store.resync();
        return a.breaker.state === 'forcedOpen';
      }, 3_000);
      expect(
        { round, converged, state: a.breaker.state },
        'A never applied the forced-open record it was sent while its write was in flight',
      ).toEqual({ round, converged: true, state: 'forcedOpen' });
      expect(await converge(harness.admin, [a, b], roundName)).toBe(true);
    }
    // The race was arranged at least once: B's record was published before A had its reply.
    expect(raced).toBeGreaterThan(0);
  });
});

describe('the probe limit with a healthy Redis', () => {
  // Guards: the fleet-wide probe limit broke with Redis up. Two instances half-open, each starts
  // a call in the same tick (halfOpenMaxCalls 1), then the event loop is blocked longer than the
  // store timeout. The store's timer then fired before the compare-and-set replies were read,
  // and each instance's admission stood on its local statechart: both probes ran.
  it('two instances admitting a probe in the same tick, then a blocked event loop: at most one probe runs', async () => {
    const name = harness.begin('blocked admission');
    for (let round = 0; round < 2; round++) {
      const roundName = `${name} round ${round}`;
      const options = {
        failMax: 1,
        resetTimeout: 200,
        successThreshold: 1,
        halfOpenMaxCalls: 1,
        probeLease: 60_000,
      };
      const storeOptions = { timeout: 250 };
      const a = harness.join(roundName, options, storeOptions);
      const b = harness.join(roundName, options, storeOptions);
      await a.breaker.settled();
      await b.breaker.settled();
      expect(await settle(a.breaker, 'fail')).toBe('upstream');
      expect(
        await waitFor(() => a.breaker.state === 'halfOpen' && b.breaker.state === 'halfOpen'),
      ).toBe(true);
      await a.breaker.settled();
      await b.breaker.settled();
      expect(await converge(harness.admin, [a, b], roundName)).toBe(true);

      // Probes are held until both calls are decided (run or rejected), so that a probe that
      // succeeded cannot close the circuit before the other admission is decided: a call
      // admitted by a closed circuit is no probe.
      let ran = 0;
      let decided = 0;
      let release!: () => void;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const probe = async () => {
        ran++;
        decided++;
        await held;
        return 'ok';
      };
      const outcome = (call: Promise<string>) =>
        call.then(
          (value) => value,
          (error: unknown) => {
            decided++;
            return error instanceof CircuitBreakerError ? 'rejected' : error;
          },
        );
      const calls = [outcome(a.breaker.call(probe)), outcome(b.breaker.call(probe))];
      // Both admissions are under way (each compare-and-set is sent); then the application
      // blocks the event loop past the store timeout (250 ms).
      await drainMicrotasks();
      busy(600);
      expect(await waitFor(() => decided === 2)).toBe(true);
      const atOnce = ran;
      release();
      const results = await Promise.all(calls);
      expect(results.every((r) => r === 'ok' || r === 'rejected')).toBe(true);
      expect(
        atOnce,
        `probes running at once at the upstream in round ${round}`,
      ).toBeLessThanOrEqual(1);
    }
  });
});

describe('false alarms: a healthy Redis is not a failing store', () => {
  // Guards: many conflicts are not failures. Four instances under concurrent traffic with some
  // failures conflict on nearly every write; a writer that lost the compare-and-set race many
  // times in a row gave up and reported the store degraded, though Redis answered every call.
  it('four instances, concurrent calls, 12 % failures: no degraded event', async () => {
    const name = harness.begin('contention');
    // A generous store timeout: only conflicts, not a slow reply on a loaded machine, are at issue.
    const fleet = Array.from({ length: 4 }, () =>
      harness.join(name, { failMax: 20 }, { timeout: 10_000 }),
    );
    for (const m of fleet) await m.breaker.settled();
    const random = sequence(7);
    const outcomes: string[] = [];
    const caller = async (m: Member) => {
      for (let i = 0; i < 120; i++) {
        const result = await settle(m.breaker, random() < 0.12 ? 'fail' : 'ok');
        outcomes.push(typeof result === 'string' ? result : 'other');
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    await Promise.all(fleet.flatMap((m) => Array.from({ length: 10 }, () => caller(m))));
    for (const m of fleet) await m.breaker.settled();
    expect(outcomes.filter((o) => o === 'upstream').length).toBeGreaterThan(100);
    expect(outcomes.every((o) => o === 'ok' || o === 'upstream' || o === 'rejected')).toBe(true);
    const report = fleet.map((m) => ({
      degraded: m.events.filter((e) => e === 'degraded').length,
      storeErrors: m.storeErrors.map((e) => String(e)),
    }));
    expect(
      report.map((r) => r.degraded),
      JSON.stringify(report),
    ).toEqual([0, 0, 0, 0]);
    expect(await converge(harness.admin, fleet, name)).toBe(true);
  });

  // Guards: a burst is not a failing store. One process creating 2,000 breakers on one
  // RedisStore at once, each called once right away (the upstream is down: every one trips),
  // timed out loads and writes whose replies had arrived but were not read yet, while the
  // process worked through the burst, and said the store was degraded.
  it('2,000 breakers created on one store at once, each called once right away: no degraded event', async () => {
    const name = harness.begin('burst');
    const redis = harness.connect();
    const store = new RedisStore(redis);
    const breakers: CircuitBreaker[] = [];
    const degraded: string[] = [];
    try {
      // The application already uses the store (its scripts are loaded in Redis).
      const first = new CircuitBreaker(`${name} first`, { store, failMax: 1 });
      breakers.push(first);
      expect(await settle(first, 'fail')).toBe('upstream');
      await first.settled();

      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < 2_000; i++) {
        const breaker = new CircuitBreaker(`${name} ${i}`, { store, failMax: 1 });
        breaker.on('degraded', ({ error }) => degraded.push(String(error)));
        breakers.push(breaker);
        calls.push(
          breaker
            .call(async () => {
              // What a call does before it meets the upstream (build the request): ~0.25 ms of
              // synchronous work, so that the burst keeps the process busy on any machine.
              busy(0.25);
              throw new UpstreamError('upstream down');
            })
            .catch((error: unknown) => error),
        );
      }
      const errors = await Promise.all(calls);
      expect(errors.every((e) => e instanceof UpstreamError)).toBe(true);
      await Promise.all(breakers.map((b) => b.settled()));
      expect(breakers.every((b) => b.state === 'open')).toBe(true);
      expect(
        { degraded: degraded.length, first: degraded[0] },
        'degraded events in the burst',
      ).toEqual({ degraded: 0, first: undefined });
    } finally {
      for (const breaker of breakers) breaker.dispose();
      await store.close();
      redis.disconnect();
    }
  });
});

describe('what listeners see', () => {
  // Guards: flaps. Listeners saw a speculative local transition undone and redone: A failed
  // twice and tripped while B's single failure, in the same tick, landed first; A adopted B's
  // closed record (open → closed, reason 'init') and tripped again on replay (closed → open).
  it('one trip made by two instances at once is one closed → open transition, never open → closed → open', async () => {
    const name = harness.begin('flap');
    for (let round = 0; round < 5; round++) {
      const roundName = `${name} round ${round}`;
      const a = harness.join(roundName, { failMax: 2 }, { timeout: 10_000 });
      const b = harness.join(roundName, { failMax: 2 }, { timeout: 10_000 });
      await a.breaker.settled();
      await b.breaker.settled();
      const seen = new Map<Member, string[]>([
        [a, []],
        [b, []],
      ]);
      for (const [m, list] of seen) {
        m.breaker.on('stateChange', ({ from, to, reason, speculative }) =>
          list.push(`${from}→${to} (${reason}${speculative ? ', speculative' : ''})`),
        );
      }
      // B fails once while A fails twice, in the same tick.
      await Promise.all([
        settle(b.breaker, 'fail'),
        settle(a.breaker, 'fail'),
        settle(a.breaker, 'fail'),
      ]);
      await a.breaker.settled();
      await b.breaker.settled();
      expect(await converge(harness.admin, [a, b], roundName)).toBe(true);
      expect(a.breaker.state).toBe('open');
      const transitions = { round, a: seen.get(a), b: seen.get(b) };
      expect(transitions).toEqual({
        round,
        a: ['closed→open (failMaxReached)'],
        b: ['closed→open (failMaxReached)'],
      });
    }
  });
});
