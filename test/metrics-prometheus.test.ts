import { type OpenMetricsContentType, Registry } from 'prom-client';
import {
  type MetricsExporter,
  type PrometheusRegistry,
  prometheusMetrics,
} from 'statebreaker/metrics';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { stepPerformanceNow } from './support/call-clock.js';
import { fail, simulatedBreaker, succeed, UpstreamError } from './support/fake-upstream.js';
import { parseScrape, type Sample, series } from './support/prometheus-text.js';

// statebreaker/metrics on a real prom-client Registry, read back from its text exposition
// (what Prometheus scrapes), with real breakers driven through their transitions.

const cleanups: (() => void)[] = [];

// Calls here seem to take 1 ms each, so that every one is timed, unless a test says otherwise.
beforeEach(() => {
  stepPerformanceNow(1);
});

afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  vi.restoreAllMocks();
});

function exporter(registry: Registry, options: { durations?: boolean } = {}): MetricsExporter {
  const metrics = prometheusMetrics({ registry, ...options });
  cleanups.push(() => metrics.stop());
  return metrics;
}

function breakerOf(...args: Parameters<typeof simulatedBreaker>) {
  const made = simulatedBreaker(...args);
  cleanups.push(() => made.breaker.dispose());
  return made;
}

async function scrape(registry: Registry): Promise<Sample[]> {
  return parseScrape(await registry.metrics());
}

/** The one state the gauge shows for `name`, after checking the other four show 0. */
function shownState(samples: readonly Sample[], name: string): string {
  const states = series(samples, 'statebreaker_state', { name });
  expect(Object.keys(states).sort()).toEqual(
    ['closed', 'disabled', 'forcedOpen', 'halfOpen', 'open'].map((s) => `state=${s}`),
  );
  const on = Object.entries(states).filter(([, value]) => value !== 0);
  expect(on).toHaveLength(1);
  expect(on[0]?.[1]).toBe(1);
  return (on[0]?.[0] ?? '').replace('state=', '');
}

const ignoreBadRequests = (error: unknown) =>
  error instanceof UpstreamError && error.status === 400
    ? ('ignored' as const)
    : ('failure' as const);

describe('prometheusMetrics', () => {
  it('follows breakers made before and after it through closed, open, half-open and closed', async () => {
    const registry = new Registry();
    const { breaker: before, clock } = breakerOf({ failMax: 2 }, 'made before');
    exporter(registry);
    const { breaker: after } = breakerOf({ classify: ignoreBadRequests }, 'made after');

    expect(shownState(await scrape(registry), 'made before')).toBe('closed');
    await before.call(succeed);
    await before.call(fail).catch(() => undefined);
    await before.call(fail).catch(() => undefined);
    expect(shownState(await scrape(registry), 'made before')).toBe('open');
    await expect(before.call(succeed)).rejects.toThrow(/open/);
    clock.increment(30_000);
    // Reported once the record holding it is written.
    await before.settled();
    expect(shownState(await scrape(registry), 'made before')).toBe('halfOpen');
    await before.call(succeed);
    await before.call(succeed);
    expect(before.state).toBe('closed');

    await after.call(succeed);
    await after.call(() => Promise.reject(new UpstreamError(400))).catch(() => undefined);

    const samples = await scrape(registry);
    expect(shownState(samples, 'made before')).toBe('closed');
    expect(shownState(samples, 'made after')).toBe('closed');
    expect(series(samples, 'statebreaker_calls_total', { name: 'made before' })).toEqual({
      'kind=successful': 3,
      'kind=failed': 2,
      'kind=ignored': 0,
      'kind=rejected': 1,
    });
    expect(series(samples, 'statebreaker_calls_total', { name: 'made after' })).toEqual({
      'kind=successful': 1,
      'kind=failed': 0,
      'kind=ignored': 1,
      'kind=rejected': 0,
    });
    expect(series(samples, 'statebreaker_transitions_total', { name: 'made before' })).toEqual({
      'from=closed,to=open,reason=failMaxReached': 1,
      'from=open,to=halfOpen,reason=resetTimeoutElapsed': 1,
      'from=halfOpen,to=closed,reason=successThresholdReached': 1,
    });
    expect(series(samples, 'statebreaker_transitions_total', { name: 'made after' })).toEqual({});
    // Every admitted call is timed, none of the rejected ones.
    expect(series(samples, 'statebreaker_call_duration_seconds_count')).toEqual({
      'name=made before,kind=successful': 3,
      'name=made before,kind=failed': 2,
      'name=made after,kind=successful': 1,
      'name=made after,kind=ignored': 1,
    });
    const buckets = samples.filter(
      (s) =>
        s.metric === 'statebreaker_call_duration_seconds_bucket' &&
        s.labels.name === 'made before' &&
        s.labels.kind === 'successful',
    );
    const counts = buckets.map((s) => s.value);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(buckets.at(-1)?.labels.le).toBe('+Inf');
    expect(counts.at(-1)).toBe(3);
    expect(buckets.map((s) => s.labels.le)).toEqual([
      ...[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120].map(String),
      '+Inf',
    ]);
    expect(series(samples, 'statebreaker_degraded')).toMatchObject({
      'name=made before': 0,
      'name=made after': 0,
    });
  });

  it('shows forced open and disabled, counts the calls forced open rejects and none while disabled', async () => {
    const registry = new Registry();
    exporter(registry);
    const { breaker } = breakerOf({}, 'operated');
    breaker.forceOpen();
    // In force at once; reported once the record holding it is written.
    await expect(breaker.call(succeed)).rejects.toThrow(/forcedOpen/);
    await breaker.settled();
    expect(shownState(await scrape(registry), 'operated')).toBe('forcedOpen');
    breaker.disable();
    await breaker.settled();
    expect(shownState(await scrape(registry), 'operated')).toBe('disabled');
    await breaker.call(succeed);
    await breaker.call(fail).catch(() => undefined);
    breaker.reset();
    await breaker.call(succeed);
    const samples = await scrape(registry);
    expect(shownState(samples, 'operated')).toBe('closed');
    // A disabled breaker records nothing: its two calls are in no count.
    expect(series(samples, 'statebreaker_calls_total', { name: 'operated' })).toEqual({
      'kind=successful': 1,
      'kind=failed': 0,
      'kind=ignored': 0,
      'kind=rejected': 1,
    });
    expect(series(samples, 'statebreaker_transitions_total', { name: 'operated' })).toEqual({
      'from=closed,to=forcedOpen,reason=forcedOpen': 1,
      'from=forcedOpen,to=disabled,reason=disabled': 1,
      'from=disabled,to=closed,reason=reset': 1,
    });
  });

  it("drops a disposed breaker's state series and keeps its counts", async () => {
    const registry = new Registry();
    exporter(registry);
    const first = breakerOf({ failMax: 1 }, 'short-lived');
    await first.breaker.call(fail).catch(() => undefined);
    first.breaker.dispose();
    let samples = await scrape(registry);
    expect(series(samples, 'statebreaker_state', { name: 'short-lived' })).toEqual({});
    expect(series(samples, 'statebreaker_degraded', { name: 'short-lived' })).toEqual({});
    expect(series(samples, 'statebreaker_calls_total', { name: 'short-lived' })).toMatchObject({
      'kind=failed': 1,
    });
    expect(series(samples, 'statebreaker_transitions_total', { name: 'short-lived' })).toEqual({
      'from=closed,to=open,reason=failMaxReached': 1,
    });
    // The next breaker of that name adds to the same counters.
    const second = breakerOf({}, 'short-lived');
    await second.breaker.call(succeed);
    samples = await scrape(registry);
    expect(shownState(samples, 'short-lived')).toBe('closed');
    expect(series(samples, 'statebreaker_calls_total', { name: 'short-lived' })).toMatchObject({
      'kind=successful': 1,
      'kind=failed': 1,
    });
  });

  it('counts each live breaker of a name in its own state', async () => {
    const registry = new Registry();
    exporter(registry);
    // Two breakers of one name on two stores: two statecharts, not one.
    const a = breakerOf({ failMax: 1 }, 'twice');
    breakerOf({}, 'twice');
    await a.breaker.call(fail).catch(() => undefined);
    expect(series(await scrape(registry), 'statebreaker_state', { name: 'twice' })).toEqual({
      'state=closed': 1,
      'state=open': 1,
      'state=halfOpen': 0,
      'state=forcedOpen': 0,
      'state=disabled': 0,
    });
  });

  it('reads no clock unless someone wants durations, and nothing at all once stopped', async () => {
    const now = stepPerformanceNow(1);
    const { breaker } = breakerOf({}, 'clocked');
    const clockReads = async (calls: number) => {
      now.mockClear();
      for (let i = 0; i < calls; i++) await breaker.call(succeed);
      return now.mock.calls.length;
    };
    expect(await clockReads(10)).toBe(0);
    const registry = new Registry();
    const timed = prometheusMetrics({ registry });
    expect(await clockReads(10)).toBe(20);
    timed.stop();
    expect(await clockReads(10)).toBe(0);
    const untimed = prometheusMetrics({ registry, durations: false });
    expect(await clockReads(10)).toBe(0);
    const samples = await scrape(registry);
    expect(samples.some((s) => s.metric.startsWith('statebreaker_call_duration'))).toBe(false);
    // A new exporter counts from its own start: the stopped one's calls are not in it.
    expect(series(samples, 'statebreaker_calls_total', { name: 'clocked' })).toMatchObject({
      'kind=successful': 10,
    });
    untimed.stop();
    expect(await registry.metrics()).not.toContain('statebreaker');
  });

  it('times one in 64 calls faster than 0.1 ms after 8 of them in a row, and counts every call', async () => {
    const registry = new Registry();
    exporter(registry);
    const { breaker } = breakerOf({}, 'sampled');
    const count = async () =>
      series(await scrape(registry), 'statebreaker_call_duration_seconds_count', {
        name: 'sampled',
      })['kind=successful'];
    const clockReads = async (calls: number) => {
      now.mockClear();
      for (let i = 0; i < calls; i++) await breaker.call(succeed);
      return now.mock.calls.length;
    };
    const now = stepPerformanceNow(0.001);
    // The first 8 calls are timed; they were fast, so 1 in 64 after them: calls 72, 136 and
    // 200. The others count with the duration last timed.
    expect(await clockReads(200)).toBe(2 * 11);
    expect(await count()).toBe(200);
    // Calls grew slow: the next sample (call 264) sees it, and from then on every call is timed.
    now.mockRestore();
    const slow = stepPerformanceNow(0.25);
    for (let i = 0; i < 64; i++) await breaker.call(succeed);
    expect(slow.mock.calls.length).toBe(2);
    expect(await count()).toBe(264);
    slow.mockClear();
    for (let i = 0; i < 2; i++) await breaker.call(succeed);
    expect(slow.mock.calls.length).toBe(4);
    expect(await count()).toBe(266);
  });

  it('times every slow call that follows a few fast ones: sampling needs 8 fast calls in a row', async () => {
    const registry = new Registry();
    exporter(registry);
    const { breaker } = breakerOf({}, 'mixed');
    const histogram = async () => {
      const samples = await scrape(registry);
      const of = (metric: string) =>
        series(samples, metric, { name: 'mixed' }) as Record<string, number>;
      return {
        fast: of('statebreaker_call_duration_seconds_bucket')['kind=successful,le=0.005'],
        sum: of('statebreaker_call_duration_seconds_sum')['kind=successful'],
        count: of('statebreaker_call_duration_seconds_count')['kind=successful'],
      };
    };
    // Cache hits and misses: 7 fast calls (under 0.1 ms), then 10 of 20 ms.
    const fast = stepPerformanceNow(0.001);
    for (let i = 0; i < 7; i++) await breaker.call(succeed);
    fast.mockRestore();
    const slow = stepPerformanceNow(20);
    for (let i = 0; i < 10; i++) await breaker.call(succeed);
    expect(slow.mock.calls.length).toBe(2 * 10);
    const seen = await histogram();
    expect(seen.count).toBe(17);
    expect(seen.fast).toBe(7);
    expect(seen.sum).toBeCloseTo(10 * 0.02 + 7 * 0.000001, 6);
  });

  it('counts every call of every kind in the histogram while it samples durations', async () => {
    const registry = new Registry();
    exporter(registry);
    const { breaker } = breakerOf({ failMax: 1_000 }, 'sampled-kinds');
    stepPerformanceNow(0.001);
    // The first 8 calls are timed, then one in 64: calls 72, 136, 200 and 264, the failures.
    for (let i = 0; i < 8; i++) await breaker.call(succeed);
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 63; i++) await breaker.call(succeed);
      await breaker.call(fail).catch(() => {});
    }
    const samples = await scrape(registry);
    const counts = series(samples, 'statebreaker_call_duration_seconds_count', {
      name: 'sampled-kinds',
    });
    const calls = series(samples, 'statebreaker_calls_total', { name: 'sampled-kinds' });
    expect(calls).toMatchObject({ 'kind=successful': 260, 'kind=failed': 4 });
    // Every sampled call is a failure: each untimed success counts with the 8th one's duration.
    expect(counts).toMatchObject({ 'kind=successful': 260, 'kind=failed': 4 });
  });

  it('serves OpenMetrics too, and stop() still removes what it registered', async () => {
    const registry = new Registry<OpenMetricsContentType>();
    registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    const metrics = prometheusMetrics({ registry });
    const { breaker } = breakerOf({}, 'openmetrics');
    await breaker.call(succeed);
    const text = await registry.metrics();
    expect(text).toContain('# TYPE statebreaker_calls counter');
    expect(text).toContain('statebreaker_calls_total{name="openmetrics",kind="successful"} 1');
    metrics.stop();
    expect(await registry.metrics()).not.toContain('statebreaker');
  });

  it('refuses a registry that already holds its metrics, registering nothing', async () => {
    const registry = new Registry();
    exporter(registry);
    const { breaker } = breakerOf({}, 'registered once');
    await breaker.call(succeed);
    expect(() => prometheusMetrics({ registry })).toThrow(
      /already has statebreaker_state, statebreaker_calls_total, .*stop\(\)/,
    );
    // The first exporter still counts each call once.
    await breaker.call(succeed);
    expect(
      series(await scrape(registry), 'statebreaker_calls_total', { name: 'registered once' }),
    ).toMatchObject({ 'kind=successful': 2 });
  });

  it('refuses bad options, naming them', () => {
    const registry = new Registry();
    const call = (options: unknown) => () =>
      prometheusMetrics(options as Parameters<typeof prometheusMetrics>[0]);
    expect(call(undefined)).toThrow(TypeError);
    expect(call({})).toThrow(/option registry must be a prom-client Registry, got undefined/);
    expect(call({ registry: {} })).toThrow(/option registry must be a prom-client Registry/);
    expect(call({ registry, bucket: [1] })).toThrow(/unknown option "bucket"/);
    expect(call({ registry, buckets: [] })).toThrow(RangeError);
    expect(call({ registry, buckets: [0.1, 0.1] })).toThrow(/got 0.1 in \[0.1, 0.1\]/);
    expect(call({ registry, buckets: [-1] })).toThrow(RangeError);
    expect(call({ registry, buckets: 'fast' })).toThrow(/buckets must be an array/);
    expect(call({ registry, durations: 'yes' })).toThrow(/durations must be a boolean/);
    expect(registry.getMetricsAsArray()).toEqual([]);
  });

  it('takes a prom-client registry as it is typed', () => {
    const typed: PrometheusRegistry = new Registry();
    expect(typed).toBeInstanceOf(Registry);
  });
});
