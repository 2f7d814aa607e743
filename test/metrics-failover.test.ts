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

  it("a disposed tenant's failover series go after idleTimeout, with its call series, in both exporters", async () => {
    let now = 0;
    const realNow = Date.now;
    Date.now = () => now;
    cleanups.push(() => {
      Date.now = realNow;
    });
    const registry = new Registry();
    const prometheus = prometheusMetrics({ registry, idleTimeout: 1_000 });
    cleanups.push(() => prometheus.stop());
    const meter = new RecordingMeter();
    const otel = openTelemetryMetrics({ meter, idleTimeout: 1_000 });
    cleanups.push(() => otel.stop());
    const store = new MemoryStore();
    const kept = new CircuitBreaker('tenant-kept-b', { store });
    cleanups.push(() => kept.dispose());
    for (let tenant = 0; tenant < 50; tenant++) {
      const a = new CircuitBreaker(`tenant-${tenant}-a`, { store });
      const b = new CircuitBreaker(`tenant-${tenant}-b`, { store });
      const route = failover(
        [
          { breaker: a, value: 'a' },
          { breaker: b, value: 'b' },
        ],
        { name: `tenant-${tenant}` },
      );
      await route.call(async (value: string) => (value === 'a' ? fail() : value));
      a.dispose();
      b.dispose();
    }
    // A route whose next target still lives keeps its series.
    const left = new CircuitBreaker('tenant-left-a', { store });
    await failover(
      [
        { breaker: left, value: 'a' },
        { breaker: kept, value: 'b' },
      ],
      { name: 'tenant-left' },
    ).call(async (value: string) => (value === 'a' ? fail() : value));
    left.dispose();

    const scraped = async () => {
      const samples = parseScrape(await registry.metrics());
      const otelRoutes = meter
        .collect()
        .filter((m) => m.instrument === 'statebreaker.failover')
        .map((m) => m.attributes['statebreaker.route']);
      return {
        prometheus: Object.keys(series(samples, 'statebreaker_failover_total')).length,
        calls: Object.keys(series(samples, 'statebreaker_calls_total')).length,
        otel: new Set(otelRoutes).size,
      };
    };
    expect(await scraped()).toMatchObject({ prometheus: 51, otel: 51 });
    now += 10_000;
    const after = await scraped();
    expect(after).toMatchObject({ prometheus: 1, otel: 1 });
    // Only the live breaker's call series are left.
    expect(after.calls).toBeGreaterThan(0);
    expect(series(parseScrape(await registry.metrics()), 'statebreaker_failover_total')).toEqual({
      'route=tenant-left,from=tenant-left-a,to=tenant-kept-b,reason=failure': 1,
    });
  });
});
