import { Registry } from 'prom-client';
import type { CircuitBreaker } from 'statebreaker';
import { openTelemetryMetrics, prometheusMetrics } from 'statebreaker/metrics';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fail, simulatedBreaker, succeed } from './support/fake-upstream.js';
import { parseScrape, series } from './support/prometheus-text.js';
import { RecordingMeter } from './support/recording-meter.js';

// The gauges people chart beside the counters: the fleet's failure and slow-call rates over the
// window (-1 below minimumCalls, as resilience4j shows them), and a bound on what a disposed
// breaker name costs the exporter: its series go after an idle time.

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  vi.useRealTimers();
});

function breakerOf(...args: Parameters<typeof simulatedBreaker>) {
  const made = simulatedBreaker(...args);
  cleanups.push(() => made.breaker.dispose());
  return made;
}

// 60 %: the mixes below (25 %, 50 %) keep the circuit closed, so the window stays.
const rateRule = {
  failMax: Number.POSITIVE_INFINITY,
  failureRateThreshold: 60,
  minimumCalls: 4,
};

async function calls(breaker: CircuitBreaker, outcomes: readonly ('ok' | 'fail')[]) {
  for (const outcome of outcomes)
    await breaker.call(outcome === 'ok' ? succeed : fail).catch(() => {});
  // A flush brings the fleet's totals back to the statechart.
  await breaker.settled();
}

describe('rate gauges', () => {
  it('Prometheus: statebreaker_failure_rate and _slow_call_rate per breaker with that rule', async () => {
    const registry = new Registry();
    const metrics = prometheusMetrics({ registry });
    cleanups.push(() => metrics.stop());
    const { breaker } = breakerOf(rateRule, 'rated');
    breakerOf({}, 'unrated');
    const scrape = async () => parseScrape(await registry.metrics());
    expect(series(await scrape(), 'statebreaker_failure_rate')).toEqual({ 'name=rated': -1 });
    await calls(breaker, ['fail', 'ok', 'fail', 'ok']);
    const samples = await scrape();
    expect(series(samples, 'statebreaker_failure_rate')).toEqual({ 'name=rated': 50 });
    expect(series(samples, 'statebreaker_slow_call_rate')).toEqual({});
  });

  it('OpenTelemetry: statebreaker.failure_rate per breaker with that rule', async () => {
    const meter = new RecordingMeter();
    const running = openTelemetryMetrics({ meter });
    cleanups.push(() => running.stop());
    const { breaker } = breakerOf(rateRule, 'rated');
    await calls(breaker, ['fail', 'ok', 'ok', 'ok']);
    const rates = meter
      .collect()
      .filter((m) => m.instrument === 'statebreaker.failure_rate')
      .map((m) => [m.attributes['statebreaker.name'], m.value]);
    expect(rates).toEqual([['rated', 25]]);
  });
});

describe("a disposed breaker name's series", () => {
  it('stay for idleTimeout after its last breaker is disposed, then go', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const registry = new Registry();
    const metrics = prometheusMetrics({ registry, idleTimeout: 60_000 });
    cleanups.push(() => metrics.stop());
    const calledOf = async () =>
      series(parseScrape(await registry.metrics()), 'statebreaker_calls_total', {
        kind: 'successful',
      });
    const { breaker: first } = breakerOf({}, 'tenant-1');
    const { breaker: second } = breakerOf({}, 'tenant-1');
    await first.call(succeed);
    await second.call(succeed);
    first.dispose();
    vi.advanceTimersByTime(120_000);
    // A live breaker of the name keeps it.
    expect(await calledOf()).toEqual({ 'name=tenant-1': 2 });
    second.dispose();
    vi.advanceTimersByTime(59_999);
    expect(await calledOf()).toEqual({ 'name=tenant-1': 2 });
    vi.advanceTimersByTime(1);
    expect(await calledOf()).toEqual({});
    // Made again, the name counts from zero: a counter reset to Prometheus.
    const { breaker: again } = breakerOf({}, 'tenant-1');
    await again.call(succeed);
    expect(await calledOf()).toEqual({ 'name=tenant-1': 1 });
  });

  it('are bounded: beyond 1 000 idle names the longest idle go, with no scrape at all', async () => {
    const registry = new Registry();
    const metrics = prometheusMetrics({ registry });
    cleanups.push(() => metrics.stop());
    for (let i = 0; i < 1_200; i++) {
      const { breaker } = simulatedBreaker({}, `tenant-${i}`);
      await breaker.call(succeed);
      breaker.dispose();
    }
    const names = Object.keys(
      series(parseScrape(await registry.metrics()), 'statebreaker_calls_total', {
        kind: 'successful',
      }),
    );
    expect(names).toHaveLength(1_000);
    expect(names).not.toContain('name=tenant-199');
    expect(names).toContain('name=tenant-200');
  });

  it('stay for ever with idleTimeout Infinity, and a bad idleTimeout is refused', () => {
    const registry = new Registry();
    expect(() => prometheusMetrics({ registry, idleTimeout: -1 })).toThrow(
      'prometheusMetrics() option idleTimeout must be at least 0',
    );
    expect(() => prometheusMetrics({ registry, idleTimeout: '1m' as never })).toThrow(TypeError);
    const metrics = prometheusMetrics({ registry, idleTimeout: Number.POSITIVE_INFINITY });
    metrics.stop();
  });
});
