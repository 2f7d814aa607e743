import { describe, expect, it } from 'vitest';
import { CircuitBreakerError } from '../src/index.js';
import { simulatedBreaker, trip } from './support/fake-upstream.js';

/** Calls through the breaker and returns what it threw, and whether fn ran. */
async function attempt(breaker: ReturnType<typeof simulatedBreaker>['breaker']) {
  let called = false;
  const error = await breaker
    .call(async () => {
      called = true;
      return 'reached upstream';
    })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  return { called, error };
}

describe('while open', () => {
  it('rejects with a CircuitBreakerError that names the breaker, state and wait', async () => {
    const { breaker } = simulatedBreaker({}, 'openai');
    await trip(breaker);
    const { called, error } = await attempt(breaker);
    expect(called).toBe(false);
    expect(error).toBeInstanceOf(CircuitBreakerError);
    expect(error).toBeInstanceOf(Error);
    const rejection = error as CircuitBreakerError;
    expect(rejection.name).toBe('CircuitBreakerError');
    expect(rejection.breaker).toBe('openai');
    expect(rejection.state).toBe('open');
    expect(rejection.retryAfterMs).toBe(30_000);
    expect(rejection.message).toContain('"openai"');
    expect(rejection.message).toContain('open');
    expect(rejection.message).toContain('30000 ms');
  });

  it('counts retryAfterMs down with the clock', async () => {
    const { breaker, clock } = simulatedBreaker({ resetTimeout: 10_000 });
    await trip(breaker);
    const waits: (number | undefined)[] = [];
    for (const step of [0, 2_500, 7_499]) {
      clock.increment(step);
      const { error } = await attempt(breaker);
      waits.push((error as CircuitBreakerError).retryAfterMs);
    }
    expect(waits).toEqual([10_000, 7_500, 1]);
  });

  it('never calls fn, however many calls arrive', async () => {
    const { breaker } = simulatedBreaker();
    await trip(breaker);
    const outcomes = await Promise.all(Array.from({ length: 50 }, () => attempt(breaker)));
    expect(outcomes.some((o) => o.called)).toBe(false);
    expect(outcomes.every((o) => o.error instanceof CircuitBreakerError)).toBe(true);
  });
});

describe('while forced open', () => {
  it('rejects without calling fn and promises no retry time', async () => {
    const { breaker } = simulatedBreaker();
    breaker.forceOpen();
    const { called, error } = await attempt(breaker);
    expect(called).toBe(false);
    expect(error).toBeInstanceOf(CircuitBreakerError);
    expect(error).toMatchObject({ state: 'forcedOpen', retryAfterMs: undefined });
    expect((error as Error).message).toContain('forcedOpen');
  });
});

describe("the 'rejected' event", () => {
  it('carries the very error the call rejected with', async () => {
    const { breaker } = simulatedBreaker({}, 'search');
    await trip(breaker);
    const seen: unknown[] = [];
    breaker.on('rejected', (event) => {
      expect(event.name).toBe('search');
      seen.push(event.error);
    });
    const first = await attempt(breaker);
    breaker.forceOpen();
    const second = await attempt(breaker);
    expect(seen).toEqual([first.error, second.error]);
    expect(seen[0]).toBe(first.error);
    expect(seen[1]).toMatchObject({ state: 'forcedOpen' });
  });

  it('is emitted for a half-open call that finds every probe slot taken', async () => {
    const { breaker, clock } = simulatedBreaker();
    await trip(breaker);
    clock.increment(breaker.config.resetTimeout);
    const states: string[] = [];
    breaker.on('rejected', ({ error }) => states.push(error.state));
    void breaker.call(() => new Promise<never>(() => undefined));
    const { called, error } = await attempt(breaker);
    expect(called).toBe(false);
    expect(error).toMatchObject({ state: 'halfOpen', retryAfterMs: undefined });
    expect(states).toEqual(['halfOpen']);
  });
});
