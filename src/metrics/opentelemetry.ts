import { CALL_KINDS, type CallKind, type DurationRecorder, TotalsObserver } from './call-totals.js';
import type { MetricsExporter } from './exporter.js';
import { FailoverCounts } from './failover-counts.js';
import { followBreakers } from './follow-breakers.js';
import { liveStates, STATES } from './live-states.js';
import { type MetricsOptions, resolveMetricsOptions, withMethods } from './options.js';
import { TotalsByName } from './totals-by-name.js';

/** Attributes of one measurement. */
export type OpenTelemetryAttributes = Readonly<Record<string, string>>;

/** The part of an OpenTelemetry observable result the exporter uses. */
export interface OpenTelemetryObservableResult {
  observe(value: number, attributes?: OpenTelemetryAttributes): void;
}

/** The part of an OpenTelemetry observable instrument the exporter uses. */
export interface OpenTelemetryObservable {
  addCallback(callback: (result: OpenTelemetryObservableResult) => void): void;
  removeCallback(callback: (result: OpenTelemetryObservableResult) => void): void;
}

/** The part of an OpenTelemetry histogram the exporter uses. */
export interface OpenTelemetryHistogram {
  record(value: number, attributes?: OpenTelemetryAttributes): void;
}

/** Instrument options as `@opentelemetry/api` takes them. */
export interface OpenTelemetryInstrumentOptions {
  description?: string;
  unit?: string;
  advice?: { explicitBucketBoundaries?: number[] };
}

/** The part of an `@opentelemetry/api` `Meter` the exporter uses (any API 1.x meter). */
export interface OpenTelemetryMeter {
  createObservableGauge(
    name: string,
    options?: OpenTelemetryInstrumentOptions,
  ): OpenTelemetryObservable;
  createObservableCounter(
    name: string,
    options?: OpenTelemetryInstrumentOptions,
  ): OpenTelemetryObservable;
  createHistogram(name: string, options?: OpenTelemetryInstrumentOptions): OpenTelemetryHistogram;
}

/** Options of {@link openTelemetryMetrics}. */
export interface OpenTelemetryMetricsOptions extends MetricsOptions {
  /** The meter to create the instruments with, e.g. `metrics.getMeter('statebreaker')`. */
  readonly meter: OpenTelemetryMeter;
}

/** The names of the instruments {@link openTelemetryMetrics} creates. */
export const OTEL_METRIC_NAMES = {
  state: 'statebreaker.state',
  calls: 'statebreaker.calls',
  duration: 'statebreaker.call.duration',
  transitions: 'statebreaker.transitions',
  storeErrors: 'statebreaker.store.errors',
  degraded: 'statebreaker.degraded',
  failovers: 'statebreaker.failover',
  failureRate: 'statebreaker.failure_rate',
  slowCallRate: 'statebreaker.slow_call_rate',
} as const;

const FN = 'openTelemetryMetrics()';
const NAME = 'statebreaker.name';
const STATE = 'statebreaker.state';
const OUTCOME = 'statebreaker.outcome';

function checkMeter(meter: unknown): OpenTelemetryMeter {
  return withMethods<OpenTelemetryMeter>(
    meter,
    ['createObservableGauge', 'createObservableCounter', 'createHistogram'],
    `${FN} option meter`,
    'an @opentelemetry/api Meter',
  );
}

/**
 * Reports statebreaker's metrics through an OpenTelemetry meter, for every breaker of the
 * process, created before or after this call, until `stop()`:
 *
 * - `statebreaker.state` observable gauge, attributes `statebreaker.name`,
 *   `statebreaker.state`: 1 for each live breaker's current state, 0 for the other four;
 * - `statebreaker.calls` observable counter, `statebreaker.name`, `statebreaker.outcome`
 *   (`successful`, `failed`, `ignored`, `rejected`);
 * - `statebreaker.call.duration` histogram in seconds (unit `s`), `statebreaker.name`,
 *   `statebreaker.outcome` (`successful`, `failed`, `ignored`), unless `durations: false`;
 * - `statebreaker.transitions` observable counter, `statebreaker.name`, `statebreaker.state`
 *   (the state entered), `statebreaker.previous_state`, `statebreaker.reason`;
 * - `statebreaker.store.errors` observable counter, `statebreaker.name`, `error.type` (the
 *   error's class name);
 * - `statebreaker.degraded` observable gauge, `statebreaker.name`;
 * - `statebreaker.failover` observable counter, `statebreaker.route`, `statebreaker.from`,
 *   `statebreaker.to` (`none` when no target was left), `statebreaker.reason`: failover
 *   routes moving a call on (an OpenTelemetry Prometheus exporter names it
 *   `statebreaker_failover_total`).
 * - `statebreaker.failure_rate` and `statebreaker.slow_call_rate` observable gauges (unit `%`),
 *   `statebreaker.name`, for breakers with that rate rule: the fleet's rate over the window,
 *   -1 below `minimumCalls`.
 *
 * A disposed breaker's gauges go away; its counts stay until its name has had no live breaker
 * for `idleTimeout`.
 *
 * The counters are observable: statebreaker counts in plain numbers and the meter reads them
 * when it collects, so a call costs no attribute lookup in the SDK. Only the histogram is
 * recorded per call.
 *
 * @example
 * import { metrics } from '@opentelemetry/api';
 * import { openTelemetryMetrics } from 'statebreaker/metrics';
 * const exporter = openTelemetryMetrics({ meter: metrics.getMeter('statebreaker') });
 *
 * @throws TypeError or RangeError for a bad option.
 */
export function openTelemetryMetrics(options: OpenTelemetryMetricsOptions): MetricsExporter {
  const { buckets, durations, idleTimeout } = resolveMetricsOptions(FN, 'meter', options);
  const meter = checkMeter(options.meter);

  const histogram = durations
    ? meter.createHistogram(OTEL_METRIC_NAMES.duration, {
        description: 'How long calls admitted by circuit breakers ran, by outcome.',
        unit: 's',
        advice: { explicitBucketBoundaries: [...buckets] },
      })
    : null;
  const totals = new TotalsByName((name) => {
    if (histogram === null) return null;
    const recorder = (kind: CallKind): DurationRecorder => {
      // One attributes object per series, built once: recording allocates nothing.
      const attributes = Object.freeze({ [NAME]: name, [OUTCOME]: kind });
      // The API records one observation at a time: an untimed call is recorded with the
      // duration recorded last, once per call, so that the histogram's count stays the number
      // of calls (at the next timed call or collection).
      let last = -1;
      let count = 0;
      const repeat = (times: number) => {
        for (let i = 0; i < times; i++) histogram.record(last, attributes);
      };
      return {
        record: (seconds, calls) => {
          const untimed = Math.max(0, calls - 1 - count);
          // Untimed calls since the last record took its duration; before the first, this one.
          const first = last < 0;
          if (!first) repeat(untimed);
          last = seconds;
          repeat(first ? untimed + 1 : 1);
          count = calls;
        },
        settle: (calls) => {
          if (last < 0) return;
          repeat(calls - count);
          count = calls;
        },
      };
    };
    return {
      successful: recorder('successful'),
      failed: recorder('failed'),
      ignored: recorder('ignored'),
    };
  }, idleTimeout);

  const failovers = new FailoverCounts((name) => totals.holds(name));
  const observed: [OpenTelemetryObservable, (result: OpenTelemetryObservableResult) => void][] = [
    [
      meter.createObservableGauge(OTEL_METRIC_NAMES.state, {
        description: 'Live circuit breakers of this name in this state.',
        unit: '{breaker}',
      }),
      (result) => {
        for (const { name, states } of liveStates().values()) {
          for (const state of STATES)
            result.observe(states[state], { [NAME]: name, [STATE]: state });
        }
      },
    ],
    [
      meter.createObservableCounter(OTEL_METRIC_NAMES.calls, {
        description: 'Calls through circuit breakers, by outcome.',
        unit: '{call}',
      }),
      (result) => {
        for (const t of totals.values()) {
          // The histogram is not observable: calls not timed since its last record are
          // recorded now, as the counts are read.
          t.settle();
          for (const kind of CALL_KINDS)
            result.observe(t[kind], { [NAME]: t.name, [OUTCOME]: kind });
          result.observe(t.rejected, { [NAME]: t.name, [OUTCOME]: 'rejected' });
        }
      },
    ],
    [
      meter.createObservableCounter(OTEL_METRIC_NAMES.transitions, {
        description: 'Changes of circuit breaker state this process made or adopted.',
        unit: '{transition}',
      }),
      (result) => {
        for (const t of totals.values()) {
          for (const { from, to, reason, count } of t.transitions.values()) {
            result.observe(count, {
              [NAME]: t.name,
              [STATE]: to,
              'statebreaker.previous_state': from,
              'statebreaker.reason': reason,
            });
          }
        }
      },
    ],
    [
      meter.createObservableCounter(OTEL_METRIC_NAMES.storeErrors, {
        description: 'Errors of circuit breaker stores, by error class.',
        unit: '{error}',
      }),
      (result) => {
        for (const t of totals.values()) {
          for (const [error, count] of t.storeErrors) {
            result.observe(count, { [NAME]: t.name, 'error.type': error });
          }
        }
      },
    ],
    [
      meter.createObservableGauge(OTEL_METRIC_NAMES.degraded, {
        description: 'Live circuit breakers of this name deciding alone without their store.',
        unit: '{breaker}',
      }),
      (result) => {
        for (const { name, degraded } of liveStates().values()) {
          result.observe(degraded, { [NAME]: name });
        }
      },
    ],
    [
      meter.createObservableCounter(OTEL_METRIC_NAMES.failovers, {
        description: 'Calls a failover route moved on from one target to the next, by reason.',
        unit: '{failover}',
      }),
      (result) => {
        for (const { route, from, to, reason, count } of failovers.values()) {
          result.observe(count, {
            'statebreaker.route': route,
            'statebreaker.from': from,
            'statebreaker.to': to,
            'statebreaker.reason': reason,
          });
        }
      },
    ],
    ...(['failureRate', 'slowCallRate'] as const).map(
      (rate): [OpenTelemetryObservable, (result: OpenTelemetryObservableResult) => void] => [
        meter.createObservableGauge(OTEL_METRIC_NAMES[rate], {
          description: `The fleet's ${rate === 'failureRate' ? 'failure' : 'slow-call'} rate over the window, -1 below minimumCalls.`,
          unit: '%',
        }),
        (result) => {
          for (const entry of liveStates().values()) {
            const value = entry[rate];
            if (value !== undefined) result.observe(value, { [NAME]: entry.name });
          }
        },
      ],
    ),
  ];
  for (const [instrument, callback] of observed) instrument.addCallback(callback);
  const unfollow = followBreakers(
    (breaker) => new TotalsObserver(totals.attach(breaker.name)),
    (breaker) => totals.release(breaker.name),
  );
  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      unfollow();
      failovers.stop();
      for (const [instrument, callback] of observed) instrument.removeCallback(callback);
    },
  };
}
