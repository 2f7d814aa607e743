import { describe, expect, it } from 'vitest';
import { CallTimeoutError, CircuitBreakerError } from '../src/index.js';
import { flush, simulatedBreaker, trip, UpstreamError } from './support/fake-upstream.js';

function recorded(options: Parameters<typeof simulatedBreaker>[0] = {}) {
  const setup = simulatedBreaker(options);
  const outcomes: string[] = [];
  setup.breaker.on('success', () => outcomes.push('success'));
  setup.breaker.on('failure', (e) => outcomes.push(`failure:${(e.error as Error).name}`));
  setup.breaker.on('ignored', () => outcomes.push('ignored'));
  return { ...setup, outcomes };
}

describe('breaker.attempt', () => {
  it('records what its caller reports, once', async () => {
    const { breaker, outcomes } = recorded({ failMax: 2 });
    const a = await breaker.attempt();
    expect(a.failure(new UpstreamError())).toBe('failure');
    a.success();
    a.ignore();
    expect(a.failure(new UpstreamError())).toBe('failure');
    const b = await breaker.attempt();
    b.success();
    b.failure(new UpstreamError());
    const c = await breaker.attempt();
    c.ignore();
    expect(outcomes).toEqual(['failure:UpstreamError', 'success', 'ignored']);
    expect(breaker.context.failures).toBe(0);
  });

  it("classifies a failure with the breaker's classify and returns the outcome", async () => {
    const { breaker, outcomes } = recorded({
      classify: (e) => ((e as UpstreamError).status === 400 ? 'ignored' : 'failure'),
    });
    const a = await breaker.attempt();
    expect(a.failure(new UpstreamError(400))).toBe('ignored');
    const b = await breaker.attempt();
    expect(b.failure(new UpstreamError(500))).toBe('failure');
    expect(outcomes).toEqual(['ignored', 'failure:UpstreamError']);
  });

  it('rejects with CircuitBreakerError while open', async () => {
    const { breaker } = simulatedBreaker();
    await trip(breaker);
    await expect(breaker.attempt()).rejects.toBeInstanceOf(CircuitBreakerError);
  });

  it("aborts its signal and fails by itself on the breaker's timeout", async () => {
    const { breaker, clock, outcomes } = recorded({ timeout: 100, failMax: 1 });
    const a = await breaker.attempt();
    clock.increment(100);
    expect(a.signal.aborted).toBe(true);
    expect(a.signal.reason).toBeInstanceOf(CallTimeoutError);
    expect(outcomes).toEqual(['failure:CallTimeoutError']);
    expect(breaker.state).toBe('open');
    // The caller's later report changes nothing.
    a.success();
    expect(a.failure(new Error('aborted'))).toBe('failure');
    expect(outcomes).toHaveLength(1);
  });

  it("settles as ignored when the caller's signal aborts, and validates its options", async () => {
    const { breaker, outcomes } = recorded({ failMax: 1 });
    const controller = new AbortController();
    const a = await breaker.attempt({ signal: controller.signal, timeout: 1_000 });
    controller.abort(new Error('left'));
    expect(a.signal.aborted).toBe(true);
    expect(a.failure(new Error('fetch aborted'))).toBe('ignored');
    expect(outcomes).toEqual(['ignored']);
    expect(breaker.state).toBe('closed');
    await expect(breaker.attempt({ timeout: 0 })).rejects.toThrow(
      'attempt() option timeout must be more than 0',
    );
    await expect(breaker.attempt({ signal: 'x' as never })).rejects.toThrow(
      'attempt() option signal must be an AbortSignal',
    );
  });

  it('holds a half-open probe slot until it settles', async () => {
    const { breaker, clock } = simulatedBreaker({ successThreshold: 1 });
    await trip(breaker);
    clock.increment(breaker.config.resetTimeout);
    const probe = await breaker.attempt();
    await expect(breaker.attempt()).rejects.toMatchObject({ state: 'halfOpen' });
    probe.success();
    await flush();
    expect(breaker.state).toBe('closed');
  });

  it('times a stream by its first chunk for the slow-call rule', async () => {
    const { breaker, clock } = simulatedBreaker({
      failMax: Number.POSITIVE_INFINITY,
      slowCallDuration: 1_000,
      slowCallRateThreshold: 100,
      minimumCalls: 2,
    });
    for (let i = 0; i < 2; i++) {
      const a = await breaker.attempt();
      clock.increment(10);
      a.firstChunk();
      clock.increment(5_000);
      a.firstChunk();
      a.success();
    }
    await breaker.settled();
    expect(breaker.state).toBe('closed');
  });

  it('a probe renews its lease through chunk() while chunks flow, at most once per half lease', async () => {
    const { breaker, clock, outcomes } = recorded({ failMax: 1, successThreshold: 1 });
    await trip(breaker);
    clock.increment(breaker.config.resetTimeout);
    const lease = breaker.config.probeLease;
    const attempt = await breaker.attempt();
    const leases = new Set(Object.values(breaker.context.probes));
    for (let elapsed = 0; elapsed < 3 * lease; elapsed += lease / 10) {
      clock.increment(lease / 10);
      attempt.chunk();
      await flush();
      leases.add(Object.values(breaker.context.probes)[0] as number);
    }
    expect(breaker.state).toBe('halfOpen');
    // The admission's lease, then one renewal per half lease: 2 × 3 leases at most.
    expect(leases.size).toBeLessThanOrEqual(1 + 6);
    expect(leases.size).toBeGreaterThan(1);
    attempt.success();
    await flush();
    expect(breaker.state).toBe('closed');
    expect(outcomes).toEqual(['failure:UpstreamError', 'success']);
  });
});
