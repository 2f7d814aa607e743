import type { CircuitBreaker } from 'statebreaker';
import { afterEach, describe, expect, it } from 'vitest';
import { fail, simulatedBreaker, succeed } from './support/fake-upstream.js';

// breaker.rates: the fleet's failure and slow-call rates over the window, as the statechart last
// judged them (-1 below minimumCalls, as resilience4j shows them), for metrics and views.

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function breakerOf(...args: Parameters<typeof simulatedBreaker>) {
  const made = simulatedBreaker(...args);
  cleanups.push(() => made.breaker.dispose());
  return made;
}

// 60 %: the mixes below (25 %) keep the circuit closed, so the window stays.
const rateRule = {
  failMax: Number.POSITIVE_INFINITY,
  failureRateThreshold: 60,
  minimumCalls: 4,
};

async function calls(breaker: CircuitBreaker, outcomes: readonly ('ok' | 'fail')[]) {
  for (const outcome of outcomes) {
    await breaker.call(outcome === 'ok' ? succeed : fail).catch(() => {});
  }
  // A flush brings the fleet's totals back to the statechart.
  await breaker.settled();
}

describe('breaker.rates', () => {
  it('breaker.rates: -1 below minimumCalls, then the percent; undefined without a rate rule', async () => {
    const { breaker } = breakerOf(rateRule, 'rated');
    expect(breaker.rates).toEqual({ calls: 0, failureRate: -1, slowCallRate: -1 });
    await calls(breaker, ['fail', 'ok']);
    expect(breaker.rates).toEqual({ calls: 2, failureRate: -1, slowCallRate: -1 });
    await calls(breaker, ['ok', 'ok']);
    expect(breaker.rates).toEqual({ calls: 4, failureRate: 25, slowCallRate: -1 });
    expect(breakerOf({}, 'unrated').breaker.rates).toBeUndefined();
  });

  it('counts slow calls for the slow-call rate', async () => {
    const { breaker, clock } = breakerOf(
      { slowCallDuration: 100, slowCallRateThreshold: 60, minimumCalls: 2 },
      'slow',
    );
    await breaker.call(async () => {
      clock.increment(150);
      return 'slow';
    });
    await breaker.call(succeed);
    await breaker.settled();
    expect(breaker.rates).toEqual({ calls: 2, failureRate: -1, slowCallRate: 50 });
  });

  it('an old window is an empty one: the rates go back to -1 after the window', async () => {
    const { breaker, clock } = breakerOf(rateRule, 'aged');
    await calls(breaker, ['fail', 'ok', 'ok', 'ok']);
    expect(breaker.rates?.failureRate).toBe(25);
    clock.increment(10_000);
    expect(breaker.rates).toEqual({ calls: 0, failureRate: -1, slowCallRate: -1 });
  });
});
