import { Registry } from 'prom-client';
import { CircuitBreaker, failover, MemoryStore } from 'statebreaker';
import { openTelemetryMetrics, prometheusMetrics } from 'statebreaker/metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { fail, trip } from './support/fake-upstream.js';
import { parseScrape, series } from './support/prometheus-text.js';
import { RecordingMeter } from './support/recording-meter.js';

// The failover counter in both exporters: a real prom-client registry read back from its text
// exposition, and the OpenTelemetry instruments through a recording meter.

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

async function outage() {
  const store = new MemoryStore();
  const a = new CircuitBreaker('metrics-a', { store, failMax: 2 });
  const b = new CircuitBreaker('metrics-b', { store });
  cleanups.push(
    () => a.dispose(),
    () => b.dispose(),
  );
  const route = failover(
    [
      { breaker: a, value: 'a' },
      { breaker: b, value: 'b' },
    ],
    { name: 'llm' },
  );
  const upstream = async (value: string) => (value === 'a' ? fail() : value);
  await route.call(upstream);
  await route.call(upstream);
  await route.call(upstream);
  await route.call(upstream);
  await trip(b);
  await route.call(upstream).catch(() => undefined);
}

describe('failover metrics', () => {
  it('counts statebreaker_failover_total{route,from,to,reason} on a prom-client registry', async () => {
    const registry = new Registry();
    const metrics = prometheusMetrics({ registry });
    cleanups.push(() => metrics.stop());
    await outage();
    const samples = parseScrape(await registry.metrics());
    expect(series(samples, 'statebreaker_failover_total', { route: 'llm' })).toEqual({
      'from=metrics-a,to=metrics-b,reason=failure': 2,
      'from=metrics-a,to=metrics-b,reason=rejected': 3,
      'from=metrics-b,to=,reason=rejected': 1,
    });
    metrics.stop();
    await outage();
    expect(registry.getSingleMetric('statebreaker_failover_total')).toBeUndefined();
  });

  it('counts the same as the statebreaker.failover counter in OpenTelemetry', async () => {
    const meter = new RecordingMeter();
    const metrics = openTelemetryMetrics({ meter });
    cleanups.push(() => metrics.stop());
    await outage();
    const seen = meter
      .collect()
      .filter((m) => m.instrument === 'statebreaker.failover')
      .map((m) => [
        m.attributes['statebreaker.route'],
        m.attributes['statebreaker.from'],
        m.attributes['statebreaker.to'],
        m.attributes['statebreaker.reason'],
        m.value,
      ]);
    expect(seen).toEqual([
      ['llm', 'metrics-a', 'metrics-b', 'failure', 2],
      ['llm', 'metrics-a', 'metrics-b', 'rejected', 3],
      ['llm', 'metrics-b', '', 'rejected', 1],
    ]);
  });
});
