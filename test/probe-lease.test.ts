import { describe, expect, it } from 'vitest';
import { type CircuitBreaker, CircuitBreakerError } from '../src/index.js';
import { deferred, fail, flush, simulatedBreaker, trip } from './support/fake-upstream.js';

/** A probe the test settles by hand; `called` tells whether the breaker ran it. */
function heldProbe(breaker: CircuitBreaker) {
  const answer = deferred<string>();
  const probe = { called: false, answer, result: Promise.resolve('') };
  probe.result = breaker.call(() => {
    probe.called = true;
    return answer.promise;
  });
  probe.result.catch(() => undefined);
  return probe;
}

async function halfOpened(options: Parameters<typeof simulatedBreaker>[0]) {
  const setup = simulatedBreaker(options);
  await trip(setup.breaker);
  setup.clock.increment(setup.breaker.config.resetTimeout);
  expect(setup.breaker.state).toBe('halfOpen');
  return setup;
}

describe('halfOpenMaxCalls', () => {
  it('admits that many probes and rejects the rest at once without calling them', async () => {
    const { breaker } = await halfOpened({ halfOpenMaxCalls: 2, successThreshold: 3 });
    const first = heldProbe(breaker);
    const second = heldProbe(breaker);
    await flush();
    expect(first.called && second.called).toBe(true);
    expect(Object.keys(breaker.context.probes)).toHaveLength(2);

    // Rejected while both probes are still in flight: nothing waits for a slot.
    let thirdCalled = false;
    const error = await breaker
      .call(async () => {
        thirdCalled = true;
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CircuitBreakerError);
    expect(error).toMatchObject({ state: 'halfOpen' });
    expect(thirdCalled).toBe(false);

    // A settled probe frees its slot for the next one.
    first.answer.resolve('ok');
    await first.result;
    const fourth = heldProbe(breaker);
    await flush();
    expect(fourth.called).toBe(true);
    expect(thirdCalled).toBe(false);
  });

  it('defaults to a single probe', async () => {
    const { breaker } = await halfOpened({});
    const probe = heldProbe(breaker);
    await flush();
    expect(probe.called).toBe(true);
    await expect(breaker.call(async () => 'second')).rejects.toMatchObject({ state: 'halfOpen' });
  });
});

describe('successThreshold', () => {
  it('closes after that many probe successes, not before', async () => {
    const { breaker } = await halfOpened({ successThreshold: 3 });
    await breaker.call(async () => 1);
    await breaker.call(async () => 2);
    expect(breaker.state).toBe('halfOpen');
    expect(breaker.context.successes).toBe(2);
    await breaker.call(async () => 3);
    expect(breaker.state).toBe('closed');
    expect(breaker.context.reason).toBe('successThresholdReached');
  });

  it('reopens on a probe failure, with a whole new resetTimeout', async () => {
    const { breaker, clock } = await halfOpened({ successThreshold: 3 });
    await breaker.call(async () => 1);
    clock.increment(1_234);
    const reopenedAt = clock.now();
    await breaker.call(fail).catch(() => undefined);
    expect(breaker.state).toBe('open');
    expect(breaker.context.reason).toBe('probeFailed');
    expect(breaker.context.openedAt).toBe(reopenedAt);
    clock.increment(breaker.config.resetTimeout - 1);
    expect(breaker.state).toBe('open');
    clock.increment(1);
    expect(breaker.state).toBe('halfOpen');
    expect(breaker.context.successes).toBe(0);
  });
});

describe('a probe that never answers', () => {
  it('reopens the circuit when its lease (default resetTimeout) runs out', async () => {
    const { breaker, clock } = await halfOpened({});
    expect(breaker.config.probeLease).toBe(breaker.config.resetTimeout);
    const probe = heldProbe(breaker);
    await flush();
    clock.increment(breaker.config.probeLease - 1);
    expect(breaker.state).toBe('halfOpen');
    clock.increment(1);
    expect(breaker.state).toBe('open');
    expect(breaker.context.reason).toBe('probeLeaseExpired');
    expect(breaker.context.probes).toEqual({});
    expect(probe.called).toBe(true);
  });

  it('outlasts the call timeout by default, so a hanging probe reopens by its timeout', async () => {
    const { breaker, clock } = await halfOpened({ timeout: 4_000 });
    expect(breaker.config.probeLease).toBeGreaterThan(4_000);
    const probe = heldProbe(breaker);
    await flush();
    clock.increment(4_000);
    await expect(probe.result).rejects.toMatchObject({ name: 'CallTimeoutError' });
    expect(breaker.state).toBe('open');
    expect(breaker.context.reason).toBe('probeFailed');
  });

  it('takes its lease from probeLease over timeout, and the late timeout is fenced off', async () => {
    const { breaker, clock } = await halfOpened({ timeout: 10_000, probeLease: 3_000 });
    const probe = heldProbe(breaker);
    await flush();
    clock.increment(3_000);
    expect(breaker.state).toBe('open');
    expect(breaker.context.reason).toBe('probeLeaseExpired');
    const context = structuredClone(breaker.context);
    // The call's own timeout fires later; its failure belongs to an older generation.
    clock.increment(7_000);
    await expect(probe.result).rejects.toMatchObject({ name: 'CallTimeoutError' });
    await flush();
    expect(breaker.context).toEqual(context);
  });

  it('gets a whole new resetTimeout from the expiry, not from the first opening', async () => {
    const { breaker, clock } = await halfOpened({ probeLease: 5_000 });
    heldProbe(breaker);
    await flush();
    clock.increment(5_000);
    const reopenedAt = clock.now();
    expect(breaker.state).toBe('open');
    expect(breaker.context.openedAt).toBe(reopenedAt);
    clock.increment(breaker.config.resetTimeout - 1);
    expect(breaker.state).toBe('open');
    clock.increment(1);
    expect(breaker.state).toBe('halfOpen');
  });

  it('has its late success ignored while open (generation fence)', async () => {
    const { breaker, clock } = await halfOpened({ probeLease: 5_000, successThreshold: 1 });
    const stale = heldProbe(breaker);
    await flush();
    clock.increment(5_000);
    expect(breaker.state).toBe('open');
    const whileOpen = structuredClone(breaker.context);
    stale.answer.resolve('late');
    await expect(stale.result).resolves.toBe('late');
    await flush();
    expect(breaker.state).toBe('open');
    expect(breaker.context).toEqual(whileOpen);
  });

  it('has its late success ignored after the circuit half-opened again', async () => {
    const { breaker, clock } = await halfOpened({ probeLease: 5_000, successThreshold: 1 });
    const stale = heldProbe(breaker);
    await flush();
    clock.increment(5_000);
    clock.increment(breaker.config.resetTimeout);
    expect(breaker.state).toBe('halfOpen');
    stale.answer.resolve('late');
    await stale.result;
    await flush();
    // successThreshold 1: a counted success would have closed the circuit.
    expect(breaker.state).toBe('halfOpen');
    expect(breaker.context.successes).toBe(0);
    expect(breaker.context.probes).toEqual({});
  });

  it('noticed late still half-opens resetTimeout after the recorded reopening', async () => {
    // A lease timer can fire late (busy event loop, suspended process); the circuit records
    // the lease deadline as openedAt, and every instance that rehydrates the record
    // half-opens resetTimeout after it. This instance must agree.
    const { breaker, clock } = await halfOpened({ probeLease: 5_000 });
    heldProbe(breaker);
    await flush();
    const deadline = clock.now() + 5_000;
    clock.increment(5_000 + breaker.config.resetTimeout);
    // SimulatedClock runs a timer that a firing timer schedules only on its next flush, even
    // when it is already due; increment(0) flushes without letting any time pass.
    clock.increment(0);
    expect(breaker.context.openedAt).toBe(deadline);
    expect(breaker.state).toBe('halfOpen');
  });
});

describe('a call admitted as a probe while the circuit closes', () => {
  it('runs as an ordinary call instead of being rejected as "closed"', async () => {
    // Admission waits for the store; meanwhile an operator (or another instance's probe)
    // may close the circuit. A closed circuit admits every call.
    const { breaker } = await halfOpened({});
    let called = false;
    const pending = breaker.call(async () => {
      called = true;
      return 'answered';
    });
    breaker.reset();
    await expect(pending).resolves.toBe('answered');
    expect(called).toBe(true);
    expect(breaker.state).toBe('closed');
  });
});
