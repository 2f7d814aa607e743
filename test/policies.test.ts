import { afterEach, describe, expect, it } from 'vitest';
import {
  type BreakerOptions,
  CircuitBreaker,
  CircuitBreakerError,
  type Clock,
  MemoryStore,
  type StateChangeEvent,
} from '../src/index.js';
import { createSimulatedClock, type SimulatedClock } from '../src/testing/index.js';
import { WindowTable } from '../src/window/window-table.js';

// Each rule at its edges, on a MemoryStore and a simulated clock: exactly at the threshold,
// one below, one call short of minimumCalls, the window rolling over, retry-after bounds,
// backoff, and a quorum of one and of two instances.

const START = 1_000_000;
let breakers: CircuitBreaker[] = [];

afterEach(() => {
  for (const breaker of breakers) breaker.dispose();
  breakers = [];
});

class Upstream extends Error {
  constructor(readonly retryAfterMs?: number) {
    super('upstream failed');
  }
}

function fleet(count: number, options: BreakerOptions, clock = createSimulatedClock(START)) {
  const store = new MemoryStore({ clock });
  const made = Array.from(
    { length: count },
    () => new CircuitBreaker('policy', { store, clock, ...options }),
  );
  breakers.push(...made);
  const changes: StateChangeEvent[] = [];
  made[0]?.on('stateChange', (change) => changes.push(change));
  // Up to three: the tests name the ones they made.
  return {
    breakers: made as [CircuitBreaker, CircuitBreaker, CircuitBreaker],
    clock,
    store,
    changes,
  };
}

const succeed = (breaker: CircuitBreaker) => breaker.call(async () => 'ok');
const fail = (breaker: CircuitBreaker, retryAfterMs?: number) =>
  breaker
    .call(async () => {
      throw new Upstream(retryAfterMs);
    })
    .catch((error: unknown) => error);
const ignore = (breaker: CircuitBreaker) =>
  breaker
    .call(async () => {
      throw new Error('ignored');
    })
    .catch((error: unknown) => error);
// A call that takes `ms` on the simulated clock.
async function slow(breaker: CircuitBreaker, clock: SimulatedClock, ms: number, failed = false) {
  let release!: () => void;
  const running = breaker.call(
    () =>
      new Promise<string>((resolve, reject) => {
        release = () => (failed ? reject(new Upstream()) : resolve('ok'));
      }),
  );
  await Promise.resolve();
  clock.increment(ms);
  release();
  return running.catch((error: unknown) => error);
}
const settle = (all: CircuitBreaker[]) => Promise.all(all.map((breaker) => breaker.settled()));

const rate = {
  failMax: Number.POSITIVE_INFINITY,
  failureRateThreshold: 50,
  minimumCalls: 4,
  classify: (error: unknown): 'failure' | 'ignored' =>
    error instanceof Upstream ? 'failure' : 'ignored',
};

describe('failure rate', () => {
  it('trips exactly at the threshold, across the fleet, with reason failureRateReached', async () => {
    const {
      breakers: [a, b],
      changes,
    } = fleet(2, rate);
    await succeed(a);
    await fail(b);
    await succeed(b);
    await settle([a, b]);
    expect(a.state).toBe('closed');
    // Two of four: 50 %, and neither instance counted four calls on its own.
    await fail(a);
    await settle([a, b]);
    expect(a.state).toBe('open');
    expect(b.state).toBe('open');
    expect(changes.map((c) => c.reason)).toEqual(['failureRateReached']);
  });

  it('stays closed one failure below the threshold', async () => {
    const {
      breakers: [a],
    } = fleet(1, rate);
    for (const outcome of [succeed, succeed, succeed, fail, succeed, fail] as const) {
      await outcome(a);
      await a.settled();
    }
    // 2 of 6: 33 %.
    expect(a.state).toBe('closed');
  });

  it('stays closed one call short of minimumCalls, however many of them failed', async () => {
    const {
      breakers: [a],
    } = fleet(1, rate);
    for (let i = 0; i < 3; i++) await fail(a);
    await ignore(a);
    await a.settled();
    // Ignored calls count in neither.
    expect(a.state).toBe('closed');
    await fail(a);
    await a.settled();
    expect(a.state).toBe('open');
  });

  it('trips on local counts alone without waiting for settled(): the crossing flushes at once', async () => {
    const {
      breakers: [a],
    } = fleet(1, rate);
    for (let i = 0; i < 4; i++) await fail(a);
    // No settled(), no clock move: the flush the fourth failure started is on its way.
    for (let i = 0; i < 10 && a.state === 'closed'; i++) await new Promise(setImmediate);
    expect(a.state).toBe('open');
  });

  it('flushes on its timer windowFlush ms after the first count, and holds no timer when idle', async () => {
    const clock = createSimulatedClock(START);
    // The window's timers: the only ones of windowFlush ms (the statechart's are longer).
    const timers = new Set<unknown>();
    const counting: Clock = {
      now: () => clock.now(),
      setTimeout: (fn, ms) => {
        const handle: unknown = clock.setTimeout(() => {
          timers.delete(handle);
          fn();
        }, ms);
        if (ms === 300) timers.add(handle);
        return handle;
      },
      clearTimeout: (handle) => {
        timers.delete(handle);
        clock.clearTimeout(handle as never);
      },
    };
    const store = new MemoryStore({ clock });
    const [a, b] = [0, 1].map(
      () => new CircuitBreaker('timer', { store, clock: counting, ...rate, windowFlush: 300 }),
    ) as [CircuitBreaker, CircuitBreaker];
    breakers.push(a, b);
    const ticks = async () => {
      for (let i = 0; i < 10; i++) await new Promise(setImmediate);
    };
    await fail(a);
    await fail(b);
    // The first count of a closed period is flushed at once: the fleet knows both count.
    expect(timers.size).toBe(0);
    await succeed(a);
    expect(timers.size).toBe(1);
    clock.increment(299);
    await succeed(b);
    expect(timers.size).toBe(2);
    clock.increment(1);
    await ticks();
    // a flushed its success: 3 calls in all, below minimumCalls.
    expect([a.state, timers.size]).toEqual(['closed', 1]);
    clock.increment(299);
    await ticks();
    // b's flush makes 4 calls, 2 failed: it reaches the threshold, and b waits for a's
    // flush period before deciding (a may hold calls counted before).
    expect(a.state).toBe('closed');
    clock.increment(300 + 20);
    await ticks();
    expect([a.state, b.state]).toEqual(['open', 'open']);
    expect(timers.size).toBe(0);
  });

  it('forgets counts that left the window, and keeps those still in it', async () => {
    const {
      breakers: [a],
      clock,
    } = fleet(1, { ...rate, window: 10_000 });
    await fail(a);
    await fail(a);
    await a.settled();
    // A count stays at least `window` ms (and at most a tenth more).
    clock.increment(9_999);
    await fail(a);
    await succeed(a);
    await a.settled();
    expect(a.state).toBe('open');
    a.reset();
    await fail(a);
    await fail(a);
    await a.settled();
    clock.increment(11_001);
    await succeed(a);
    await fail(a);
    await a.settled();
    // Only the last two count: 2 calls are below minimumCalls.
    expect(a.state).toBe('closed');
  });

  it('counts one closed period at a time: a reset starts a new window', async () => {
    const {
      breakers: [a],
    } = fleet(1, rate);
    for (let i = 0; i < 3; i++) await fail(a);
    await a.settled();
    a.reset();
    await fail(a);
    await a.settled();
    expect(a.state).toBe('closed');
    expect(a.context.generation).toBe(1);
  });

  it('decides on its own window when the store cannot flush', async () => {
    const clock = createSimulatedClock(START);
    const store = new MemoryStore({ clock });
    store.flushWindow = async () => {
      throw new Error('store away');
    };
    const errors: unknown[] = [];
    const a = new CircuitBreaker('alone', { store, clock, ...rate });
    breakers.push(a);
    a.on('storeError', ({ error }) => errors.push(error));
    for (let i = 0; i < 3; i++) await fail(a);
    await succeed(a);
    await a.settled();
    expect(a.state).toBe('open');
    expect(errors).toHaveLength(1);
  });
});

describe('the window table of a store', () => {
  it('drops buckets that left the window, and totals only the flush generation', () => {
    const table = new WindowTable();
    const flush = (at: number, generation: number, failures: number) =>
      table.flush({
        generation,
        at,
        window: 1_000,
        instance: '',
        flushMs: 100,
        calls: 2,
        failures,
        slow: 0,
      });
    expect(flush(10_000, 1, 1)).toMatchObject({ calls: 2, failures: 1 });
    expect(flush(10_500, 1, 2)).toMatchObject({ calls: 4, failures: 3 });
    expect(flush(10_600, 2, 0)).toMatchObject({ calls: 2, failures: 0 });
    // The bucket of 10 000 (10 000-10 099) leaves the window at 11 100; 10 500's at 11 600.
    expect(flush(11_099, 1, 0)).toMatchObject({ calls: 6, failures: 3 });
    expect(flush(11_100, 1, 0)).toMatchObject({ calls: 6, failures: 2 });
    expect(flush(20_000, 1, 0)).toMatchObject({ calls: 2, failures: 0 });
  });

  it('counts the instances that failed when a quorum needs them', () => {
    const table = new WindowTable();
    const at = 50_000;
    const flush = (instance: string, failures: number, slow: number) =>
      table.flush({
        generation: 0,
        at,
        window: 1_000,
        instance,
        flushMs: 100,
        calls: 2,
        failures,
        slow,
      });
    flush('a', 1, 0);
    flush('a', 1, 1);
    expect(flush('b', 0, 1)).toMatchObject({ failingInstances: 1, slowInstances: 2 });
    expect(flush('c', 1, 0)).toMatchObject({ failingInstances: 2, slowInstances: 2 });
  });

  it('tells a flushing instance how many others count in the window, and their longest flush', () => {
    const table = new WindowTable();
    const flush = (instance: string, flushMs: number, calls = 1) =>
      table.flush({
        generation: 0,
        at: 50_000,
        window: 1_000,
        instance,
        flushMs,
        calls,
        failures: 0,
        slow: 0,
      });
    expect(flush('a', 100)).toMatchObject({ otherInstances: 0, otherFlushMs: 0 });
    expect(flush('a', 100)).toMatchObject({ otherInstances: 0, otherFlushMs: 0 });
    expect(flush('b', 300)).toMatchObject({ otherInstances: 1, otherFlushMs: 100 });
    // A read (no calls) does not make an instance count.
    expect(flush('c', 900, 0)).toMatchObject({ otherInstances: 2, otherFlushMs: 300 });
    expect(flush('a', 100)).toMatchObject({ otherInstances: 1, otherFlushMs: 300 });
  });
});

describe('slow-call rate', () => {
  const slowRule = {
    failMax: Number.POSITIVE_INFINITY,
    slowCallDuration: 1_000,
    slowCallRateThreshold: 50,
    minimumCalls: 2,
  };

  it('counts a call of exactly slowCallDuration as slow, and trips at the threshold', async () => {
    const {
      breakers: [a],
      clock,
      changes,
    } = fleet(1, slowRule);
    await slow(a, clock, 999);
    await slow(a, clock, 999, true);
    await a.settled();
    expect(a.state).toBe('closed');
    await slow(a, clock, 1_000);
    await slow(a, clock, 1_000, true);
    await a.settled();
    expect(a.state).toBe('open');
    expect(changes.map((c) => c.reason)).toEqual(['slowCallRateReached']);
  });
});

describe('retry-after', () => {
  const retry = {
    failMax: 5,
    resetTimeout: 30_000,
    retryAfter: (error: unknown) => (error instanceof Upstream ? error.retryAfterMs : undefined),
  };

  it('opens every instance at once for that long, whatever the counters say', async () => {
    const {
      breakers: [a, b],
      clock,
      changes,
    } = fleet(2, retry);
    await fail(a, 90_000);
    await settle([a, b]);
    expect([a.state, b.state]).toEqual(['open', 'open']);
    expect(changes[0]?.reason).toBe('retryAfter');
    const rejected = await succeed(b).catch((error: unknown) => error);
    expect(rejected).toBeInstanceOf(CircuitBreakerError);
    expect((rejected as CircuitBreakerError).retryAfterMs).toBe(90_000);
    clock.increment(89_999);
    expect(b.state).toBe('open');
    clock.increment(1);
    await settle([a, b]);
    expect([a.state, b.state]).toEqual(['halfOpen', 'halfOpen']);
  });

  it.each([
    ['below resetTimeout: the upstream value', retry, 3_000, 3_000],
    ['0: the floor, 1 s by default', retry, 0, 1_000],
    ['below a floor of 5 s', { ...retry, retryAfterFloor: 5_000 }, 2_000, 5_000],
    ['above 10 minutes without backoff', retry, 3_600_000, 600_000],
    ['above backoff.max', { ...retry, backoff: { multiplier: 2, max: 120_000 } }, 600_000, 120_000],
    ['negative', retry, -5, 1_000],
    ['Infinity', retry, Number.POSITIVE_INFINITY, 600_000],
  ] as const)('is bounded: %s', async (_, options, given, expected) => {
    const {
      breakers: [a],
    } = fleet(1, options);
    await fail(a, given);
    expect(a.context.openDuration).toBe(expected);
  });

  it('half-opens when a short retry-after ends, long before resetTimeout', async () => {
    const {
      breakers: [a],
      clock,
      changes,
    } = fleet(1, retry);
    await fail(a, 3_000);
    const rejected = (await succeed(a).catch((e: unknown) => e)) as CircuitBreakerError;
    expect(rejected.retryAfterMs).toBe(3_000);
    clock.increment(2_999);
    expect(a.state).toBe('open');
    clock.increment(1);
    expect(a.state).toBe('halfOpen');
    // Listeners hear it once the record holding it is written.
    await a.settled();
    expect(changes.map((c) => c.reason)).toEqual(['retryAfter', 'resetTimeoutElapsed']);
  });

  it('reopens a half-open circuit for that long when a probe gets it', async () => {
    const {
      breakers: [a],
      clock,
    } = fleet(1, retry);
    a.forceOpen();
    a.reset();
    await fail(a, 1);
    clock.increment(30_000);
    expect(a.state).toBe('halfOpen');
    await fail(a, 200_000);
    expect(a.state).toBe('open');
    expect(a.context.reason).toBe('retryAfter');
    expect(a.context.openDuration).toBe(200_000);
  });

  it('reports a retryAfter that throws or answers NaN, and counts the failure as usual', async () => {
    const {
      breakers: [a],
    } = fleet(1, {
      failMax: 2,
      retryAfter: (error) => {
        if ((error as Upstream).retryAfterMs === 1) throw new Error('bad header');
        return Number.NaN;
      },
    });
    const problems: unknown[] = [];
    a.on('classifyError', ({ error }) => problems.push(error));
    await fail(a, 1);
    expect(a.state).toBe('closed');
    await fail(a, 2);
    expect(a.context.reason).toBe('failMaxReached');
    expect(problems.map(String)).toEqual([
      'Error: bad header',
      'TypeError: retryAfter returned NaN; not used',
    ]);
  });
});

describe('backoff', () => {
  it('multiplies the open duration on each reopen, up to max, and a close resets it', async () => {
    const {
      breakers: [a],
      clock,
    } = fleet(1, {
      failMax: 1,
      successThreshold: 1,
      resetTimeout: 10_000,
      backoff: { multiplier: 3, max: 50_000 },
    });
    const durations: (number | undefined)[] = [];
    await fail(a);
    for (let i = 0; i < 3; i++) {
      durations.push(a.context.openDuration);
      clock.increment((a.context.openDuration ?? 0) - 1);
      expect(a.state).toBe('open');
      clock.increment(1);
      expect(a.state).toBe('halfOpen');
      await fail(a);
    }
    durations.push(a.context.openDuration);
    expect(durations).toEqual([10_000, 30_000, 50_000, 50_000]);
    const rejected = (await succeed(a).catch((e: unknown) => e)) as CircuitBreakerError;
    expect(rejected.retryAfterMs).toBe(50_000);
    clock.increment(50_000);
    await succeed(a);
    expect(a.state).toBe('closed');
    await fail(a);
    expect(a.context.openDuration).toBe(10_000);
  });

  it('grows on an expired probe lease too', async () => {
    const {
      breakers: [a],
      clock,
    } = fleet(1, {
      failMax: 1,
      resetTimeout: 10_000,
      probeLease: 1_000,
      backoff: { multiplier: 2, max: 60_000 },
    });
    await fail(a);
    clock.increment(10_000);
    void a.call(() => new Promise(() => {}));
    await new Promise(setImmediate);
    clock.increment(1_000);
    expect(a.state).toBe('open');
    expect(a.context.reason).toBe('probeLeaseExpired');
    expect(a.context.openDuration).toBe(20_000);
  });
});

describe('quorum', () => {
  it('with quorum 1, one instance trips the fleet', async () => {
    const {
      breakers: [a, b],
    } = fleet(2, { failMax: 3 });
    for (let i = 0; i < 3; i++) await fail(a);
    await settle([a, b]);
    expect([a.state, b.state]).toEqual(['open', 'open']);
  });

  it('with quorum 2, failures from one instance alone never trip; one from another does', async () => {
    const clock = createSimulatedClock(START);
    let writes = 0;
    class CountingStore extends MemoryStore {
      override compareAndSet(...args: Parameters<MemoryStore['compareAndSet']>) {
        writes++;
        return super.compareAndSet(...args);
      }
    }
    const store = new CountingStore({ clock });
    const [a, b] = [0, 1].map(
      () => new CircuitBreaker('quorum', { store, clock, failMax: 3, quorum: 2 }),
    ) as [CircuitBreaker, CircuitBreaker];
    breakers.push(a, b);
    for (let i = 0; i < 20; i++) await fail(a);
    await settle([a, b]);
    expect([a.state, b.state]).toEqual(['closed', 'closed']);
    // The streak stops at failMax - 1 and its one instance: the lone instance's further
    // failures change nothing, so nothing more is written.
    expect(a.context.failures).toBe(2);
    expect(writes).toBe(2);
    await fail(b);
    await settle([a, b]);
    expect([a.state, b.state]).toEqual(['open', 'open']);
    expect(a.context.reason).toBe('failMaxReached');
  });

  it('with quorum 2, a success ends the streak: the instances must fail in one streak', async () => {
    const {
      breakers: [a, b],
    } = fleet(2, { failMax: 2, quorum: 2 });
    await fail(a);
    await fail(a);
    await settle([a, b]);
    await succeed(a);
    await settle([a, b]);
    await fail(b);
    await settle([a, b]);
    expect(b.state).toBe('closed');
    await fail(a);
    await settle([a, b]);
    expect(b.state).toBe('open');
  });

  it('with failMax 1 and quorum 2, a success ends a streak that counts no failure', async () => {
    const {
      breakers: [a, b],
    } = fleet(2, { failMax: 1, quorum: 2 });
    // failMax 1 counts no failure under a quorum: the streak alone holds the lone instance.
    await fail(a);
    await settle([a, b]);
    expect(b.context).toMatchObject({ failures: 0, streak: [expect.any(String)] });
    await succeed(b);
    await settle([a, b]);
    expect(a.context.streak).toEqual([]);
    await fail(b);
    await settle([a, b]);
    expect([a.state, b.state]).toEqual(['closed', 'closed']);
    await fail(a);
    await settle([a, b]);
    expect([a.state, b.state]).toEqual(['open', 'open']);
  });

  it('with quorum 2, a failure rate trips only when two instances failed in the window', async () => {
    const {
      breakers: [a, b],
    } = fleet(2, { ...rate, quorum: 2 });
    for (let i = 0; i < 6; i++) await fail(a);
    await succeed(b);
    await settle([a, b]);
    expect(a.state).toBe('closed');
    await fail(b);
    await settle([a, b]);
    expect([a.state, b.state]).toEqual(['open', 'open']);
  });

  it('retry-after needs no quorum: the upstream said so', async () => {
    const {
      breakers: [a],
    } = fleet(2, {
      quorum: 2,
      retryAfter: (error) => (error as Upstream).retryAfterMs,
    });
    await fail(a, 60_000);
    expect(a.state).toBe('open');
  });
});
