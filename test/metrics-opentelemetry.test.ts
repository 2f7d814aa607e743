import { metrics } from '@opentelemetry/api';
import { CircuitBreaker, MemoryStore } from 'statebreaker';
import { type OpenTelemetryMeter, openTelemetryMetrics } from 'statebreaker/metrics';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { stepPerformanceNow } from './support/call-clock.js';
import { fail, simulatedBreaker, succeed, UpstreamError } from './support/fake-upstream.js';
import { type Measurement, RecordingMeter } from './support/recording-meter.js';

// statebreaker/metrics through the @opentelemetry/api Meter interface: the instruments it
// creates, what its observable callbacks report, and what it records per call.

const cleanups: (() => void)[] = [];

// Calls here seem to take 1 ms each, so that every one is timed.
beforeEach(() => {
  stepPerformanceNow(1);
});

afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
  vi.restoreAllMocks();
});

function breakerOf(...args: Parameters<typeof simulatedBreaker>) {
  const made = simulatedBreaker(...args);
  cleanups.push(() => made.breaker.dispose());
  return made;
}

function exporter(meter: OpenTelemetryMeter, options: { durations?: boolean } = {}) {
  const running = openTelemetryMetrics({ meter, ...options });
  cleanups.push(() => running.stop());
  return running;
}

/** `instrument`'s measurements for breaker `name`, as `attribute=value,...` → value. */
function of(measurements: readonly Measurement[], instrument: string, name: string) {
  const out: Record<string, number> = {};
  for (const m of measurements) {
    if (m.instrument !== instrument || m.attributes['statebreaker.name'] !== name) continue;
    const key = Object.entries(m.attributes)
      .filter(([k]) => k !== 'statebreaker.name')
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(',');
    out[key] = m.value;
  }
  return out;
}

const ignoreBadRequests = (error: unknown) =>
  error instanceof UpstreamError && error.status === 400
    ? ('ignored' as const)
    : ('failure' as const);

describe('openTelemetryMetrics', () => {
  it('creates its instruments with their names, kinds and units', () => {
    const meter = new RecordingMeter();
    exporter(meter);
    expect(meter.created.map(({ name, kind, options }) => [name, kind, options?.unit])).toEqual([
      ['statebreaker.call.duration', 'histogram', 's'],
      ['statebreaker.state', 'observableGauge', '{breaker}'],
      ['statebreaker.calls', 'observableCounter', '{call}'],
      ['statebreaker.transitions', 'observableCounter', '{transition}'],
      ['statebreaker.store.errors', 'observableCounter', '{error}'],
      ['statebreaker.degraded', 'observableGauge', '{breaker}'],
      ['statebreaker.failover', 'observableCounter', '{failover}'],
      ['statebreaker.failure_rate', 'observableGauge', '%'],
      ['statebreaker.slow_call_rate', 'observableGauge', '%'],
    ]);
    expect(meter.created[0]?.options?.advice?.explicitBucketBoundaries).toEqual([
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
    ]);
  });

  it('reports states, calls, transitions and durations of breakers made before and after it', async () => {
    const meter = new RecordingMeter();
    const { breaker: before, clock } = breakerOf({ failMax: 2 }, 'before');
    exporter(meter, {});
    const { breaker: after } = breakerOf({ classify: ignoreBadRequests }, 'after');

    await before.call(fail).catch(() => undefined);
    await before.call(fail).catch(() => undefined);
    await before.call(succeed).catch(() => undefined);
    let seen = meter.collect();
    expect(of(seen, 'statebreaker.state', 'before')).toEqual({
      'statebreaker.state=closed': 0,
      'statebreaker.state=open': 1,
      'statebreaker.state=halfOpen': 0,
      'statebreaker.state=forcedOpen': 0,
      'statebreaker.state=disabled': 0,
    });
    clock.increment(30_000);
    await before.call(succeed);
    await before.call(succeed);
    await after.call(() => Promise.reject(new UpstreamError(400))).catch(() => undefined);

    seen = meter.collect();
    expect(of(seen, 'statebreaker.state', 'before')).toMatchObject({
      'statebreaker.state=closed': 1,
      'statebreaker.state=open': 0,
    });
    expect(of(seen, 'statebreaker.calls', 'before')).toEqual({
      'statebreaker.outcome=successful': 2,
      'statebreaker.outcome=failed': 2,
      'statebreaker.outcome=ignored': 0,
      'statebreaker.outcome=rejected': 1,
    });
    expect(of(seen, 'statebreaker.calls', 'after')).toMatchObject({
      'statebreaker.outcome=ignored': 1,
    });
    expect(of(seen, 'statebreaker.transitions', 'before')).toEqual({
      'statebreaker.state=open,statebreaker.previous_state=closed,statebreaker.reason=failMaxReached': 1,
      'statebreaker.state=halfOpen,statebreaker.previous_state=open,statebreaker.reason=resetTimeoutElapsed': 1,
      'statebreaker.state=closed,statebreaker.previous_state=halfOpen,statebreaker.reason=successThresholdReached': 1,
    });
    expect(of(seen, 'statebreaker.degraded', 'before')).toEqual({ '': 0 });

    // One duration per admitted call, in seconds; none for the rejected call.
    const durations = meter.recorded.filter((m) => m.instrument === 'statebreaker.call.duration');
    expect(durations.map((m) => m.attributes)).toEqual([
      { 'statebreaker.name': 'before', 'statebreaker.outcome': 'failed' },
      { 'statebreaker.name': 'before', 'statebreaker.outcome': 'failed' },
      { 'statebreaker.name': 'before', 'statebreaker.outcome': 'successful' },
      { 'statebreaker.name': 'before', 'statebreaker.outcome': 'successful' },
      { 'statebreaker.name': 'after', 'statebreaker.outcome': 'ignored' },
    ]);
    for (const { value } of durations) expect(value).toBeGreaterThanOrEqual(0);
    // The attributes of a series are one object, built once.
    expect(durations[0]?.attributes).toBe(durations[1]?.attributes);
  });

  it('reports a store error by its class as error.type', async () => {
    const meter = new RecordingMeter();
    exporter(meter);
    const store = new MemoryStore();
    const strict = new CircuitBreaker('configured twice', { store, failMax: 2 });
    const lenient = new CircuitBreaker('configured twice', { store, failMax: 4 });
    cleanups.push(
      () => strict.dispose(),
      () => lenient.dispose(),
    );
    // A record written under failMax 2 reaches the breaker configured with 4.
    await strict.call(fail).catch(() => undefined);
    await strict.settled();
    await lenient.settled();
    expect(of(meter.collect(), 'statebreaker.store.errors', 'configured twice')).toEqual({
      'error.type=ConfigMismatchError': 1,
    });
  });

  it('stops reporting and recording on stop(), and times no call without durations', async () => {
    const meter = new RecordingMeter();
    const running = openTelemetryMetrics({ meter });
    const { breaker } = breakerOf({}, 'stopped');
    await breaker.call(succeed);
    expect(meter.callbackCount).toBe(8);
    running.stop();
    running.stop();
    expect(meter.callbackCount).toBe(0);
    await breaker.call(succeed);
    expect(meter.collect()).toEqual([]);
    expect(meter.recorded).toHaveLength(1);

    const untimed = new RecordingMeter();
    exporter(untimed, { durations: false });
    await breaker.call(succeed);
    expect(untimed.created.map((c) => c.name)).not.toContain('statebreaker.call.duration');
    expect(untimed.recorded).toEqual([]);
    expect(of(untimed.collect(), 'statebreaker.calls', 'stopped')).toMatchObject({
      'statebreaker.outcome=successful': 1,
    });
  });

  it("takes @opentelemetry/api's own meter, a no-op one without an SDK", async () => {
    const meter: OpenTelemetryMeter = metrics.getMeter('statebreaker-test');
    exporter(meter);
    const { breaker } = breakerOf({}, 'no sdk');
    await expect(breaker.call(succeed)).resolves.toBe('ok');
  });

  it('refuses bad options, naming them', () => {
    const call = (options: unknown) => () =>
      openTelemetryMetrics(options as Parameters<typeof openTelemetryMetrics>[0]);
    expect(call(null)).toThrow(/needs an options object with meter, got null/);
    expect(call({ meter: {} })).toThrow(/option meter must be an @opentelemetry\/api Meter/);
    expect(call({ meter: new RecordingMeter(), registry: 1 })).toThrow(/unknown option "registry"/);
    expect(call({ meter: new RecordingMeter(), buckets: [Number.NaN] })).toThrow(RangeError);
  });
});
