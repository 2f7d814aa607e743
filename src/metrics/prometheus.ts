import { BucketCounts } from './bucket-counts.js';
import { CALL_KINDS, TotalsObserver } from './call-totals.js';
import type { MetricsExporter } from './exporter.js';
import { FailoverCounts } from './failover-counts.js';
import { followBreakers } from './follow-breakers.js';
import { liveStates, STATES } from './live-states.js';
import { type MetricsOptions, resolveMetricsOptions, withMethods } from './options.js';
import {
  PrometheusCollector,
  type PrometheusMetric,
  type PrometheusSample,
} from './prometheus-collector.js';
import { TotalsByName } from './totals-by-name.js';

/** The part of a prom-client `Registry` the exporter uses (any prom-client 15 registry). */
export interface PrometheusRegistry {
  registerMetric(metric: PrometheusMetric): void;
  removeSingleMetric(name: string): void;
  getSingleMetric(name: string): unknown;
}

/** Options of {@link prometheusMetrics}. */
export interface PrometheusMetricsOptions extends MetricsOptions {
  /** The prom-client registry to register the metrics on, e.g. `register` or `new Registry()`. */
  readonly registry: PrometheusRegistry;
}

/** The names of the metrics {@link prometheusMetrics} registers. */
export const PROMETHEUS_METRIC_NAMES = {
  state: 'statebreaker_state',
  calls: 'statebreaker_calls_total',
  duration: 'statebreaker_call_duration_seconds',
  transitions: 'statebreaker_transitions_total',
  storeErrors: 'statebreaker_store_errors_total',
  degraded: 'statebreaker_degraded',
  failovers: 'statebreaker_failover_total',
  failureRate: 'statebreaker_failure_rate',
  slowCallRate: 'statebreaker_slow_call_rate',
} as const;

const FN = 'prometheusMetrics()';

function checkRegistry(registry: unknown): PrometheusRegistry {
  return withMethods<PrometheusRegistry>(
    registry,
    ['registerMetric', 'removeSingleMetric', 'getSingleMetric'],
    `${FN} option registry`,
    'a prom-client Registry',
  );
}

/**
 * Registers statebreaker's metrics on a prom-client registry, for every breaker of the process,
 * created before or after this call, until `stop()`:
 *
 * - `statebreaker_state{name,state}` gauge: 1 for each live breaker's current state, 0 for
 *   the other four (the number of live breakers of that name in that state);
 * - `statebreaker_calls_total{name,kind}` counter: `successful`, `failed`, `ignored`,
 *   `rejected`;
 * - `statebreaker_call_duration_seconds{name,kind}` histogram: `successful`, `failed`,
 *   `ignored` (unless `durations: false`);
 * - `statebreaker_transitions_total{name,from,to,reason}` counter: the changes this process's
 *   breakers made or adopted from other instances;
 * - `statebreaker_store_errors_total{name,error}` counter, `error` the error's class name;
 * - `statebreaker_degraded{name}` gauge: live breakers of that name deciding without their
 *   store;
 * - `statebreaker_failover_total{route,from,to,reason}` counter: failover routes moving a
 *   call on from one target to the next (`to` is `none` when no target was left).
 * - `statebreaker_failure_rate{name}` and `statebreaker_slow_call_rate{name}` gauges, for
 *   breakers with that rate rule: the fleet's rate over the window in percent, -1 below
 *   `minimumCalls`.
 *
 * Counting is plain arithmetic on statebreaker's side; prom-client reads the counts when it is
 * scraped. A disposed breaker's state, degraded and rate series go away; its counts stay until
 * its name has had no live breaker for `idleTimeout`.
 *
 * @example
 * import { register } from 'prom-client';
 * import { prometheusMetrics } from 'statebreaker/metrics';
 * const metrics = prometheusMetrics({ registry: register });
 * // ...on shutdown: metrics.stop();
 *
 * @throws TypeError or RangeError for a bad option; Error when the registry already holds a
 * metric of one of these names (another exporter's, not stopped).
 */
export function prometheusMetrics(options: PrometheusMetricsOptions): MetricsExporter {
  const { buckets, durations, idleTimeout } = resolveMetricsOptions(FN, 'registry', options);
  const registry = checkRegistry(options.registry);
  const taken = Object.values(PROMETHEUS_METRIC_NAMES).filter(
    (name) => registry.getSingleMetric(name) !== undefined,
  );
  if (taken.length > 0) {
    throw new Error(
      `${FN}: the registry already has ${taken.join(', ')}; stop() the exporter that ` +
        'registered them, or give this one another registry',
    );
  }

  const totals = new TotalsByName<BucketCounts>(
    () =>
      durations
        ? {
            successful: new BucketCounts(buckets),
            failed: new BucketCounts(buckets),
            ignored: new BucketCounts(buckets),
          }
        : null,
    idleTimeout,
  );
  const resetCounts = () => {
    for (const t of totals.values()) {
      t.reset();
      if (t.durations !== null) for (const kind of CALL_KINDS) t.durations[kind].reset();
    }
  };
  const rateGauge = (name: string, help: string, rate: 'failureRate' | 'slowCallRate') =>
    new PrometheusCollector(name, help, 'gauge', () => {
      const samples: PrometheusSample[] = [];
      for (const entry of liveStates().values()) {
        const value = entry[rate];
        if (value !== undefined) samples.push({ labels: { name: entry.name }, value });
      }
      return samples;
    });

  const failovers = new FailoverCounts((name) => totals.holds(name));
  const collectors = [
    new PrometheusCollector(
      PROMETHEUS_METRIC_NAMES.state,
      'Live circuit breakers of this name in this state: 1 for the current state, 0 for the others.',
      'gauge',
      () => {
        const samples: PrometheusSample[] = [];
        for (const { name, states } of liveStates().values()) {
          for (const state of STATES)
            samples.push({ labels: { name, state }, value: states[state] });
        }
        return samples;
      },
    ),
    new PrometheusCollector(
      PROMETHEUS_METRIC_NAMES.calls,
      'Calls through circuit breakers by kind: admitted and successful, failed or ignored; rejected.',
      'counter',
      () => {
        const samples: PrometheusSample[] = [];
        for (const t of totals.values()) {
          for (const kind of CALL_KINDS)
            samples.push({ labels: { name: t.name, kind }, value: t[kind] });
          samples.push({ labels: { name: t.name, kind: 'rejected' }, value: t.rejected });
        }
        return samples;
      },
      resetCounts,
    ),
    new PrometheusCollector(
      PROMETHEUS_METRIC_NAMES.transitions,
      'Changes of circuit breaker state this process made or adopted from other instances.',
      'counter',
      () => {
        const samples: PrometheusSample[] = [];
        for (const t of totals.values()) {
          for (const { from, to, reason, count } of t.transitions.values()) {
            samples.push({ labels: { name: t.name, from, to, reason }, value: count });
          }
        }
        return samples;
      },
      resetCounts,
    ),
    new PrometheusCollector(
      PROMETHEUS_METRIC_NAMES.storeErrors,
      'Errors of circuit breaker stores, by error class.',
      'counter',
      () => {
        const samples: PrometheusSample[] = [];
        for (const t of totals.values()) {
          for (const [error, count] of t.storeErrors) {
            samples.push({ labels: { name: t.name, error }, value: count });
          }
        }
        return samples;
      },
      resetCounts,
    ),
    new PrometheusCollector(
      PROMETHEUS_METRIC_NAMES.degraded,
      'Live circuit breakers of this name deciding alone because their store does not answer.',
      'gauge',
      () =>
        [...liveStates().values()].map(({ name, degraded }) => ({
          labels: { name },
          value: degraded,
        })),
    ),
    new PrometheusCollector(
      PROMETHEUS_METRIC_NAMES.failovers,
      'Calls a failover route moved on from one target to the next, by reason.',
      'counter',
      () =>
        [...failovers.values()].map(({ route, from, to, reason, count }) => ({
          labels: { route, from, to, reason },
          value: count,
        })),
      () => failovers.reset(),
    ),
    rateGauge(
      PROMETHEUS_METRIC_NAMES.failureRate,
      "The fleet's failure rate over the window in percent, -1 below minimumCalls (breakers with a failure-rate rule).",
      'failureRate',
    ),
    rateGauge(
      PROMETHEUS_METRIC_NAMES.slowCallRate,
      "The fleet's slow-call rate over the window in percent, -1 below minimumCalls (breakers with a slow-call rule).",
      'slowCallRate',
    ),
  ];
  if (durations) {
    const duration: PrometheusCollector = new PrometheusCollector(
      PROMETHEUS_METRIC_NAMES.duration,
      'How long calls admitted by circuit breakers ran, in seconds, by kind.',
      'histogram',
      () => {
        const samples: PrometheusSample[] = [];
        const base = duration.name;
        for (const t of totals.values()) {
          const series = t.durations;
          if (series === null) continue;
          const name = t.name;
          t.settle();
          for (const kind of CALL_KINDS) {
            const h = series[kind];
            // A kind's series appear with its first call: most breakers never ignore one.
            if (h.count === 0) continue;
            const cumulative = h.cumulative();
            buckets.forEach((le, i) => {
              samples.push({
                metricName: `${base}_bucket`,
                labels: { name, kind, le },
                value: cumulative[i] as number,
              });
            });
            samples.push(
              { metricName: `${base}_bucket`, labels: { name, kind, le: '+Inf' }, value: h.count },
              { metricName: `${base}_sum`, labels: { name, kind }, value: h.sum },
              { metricName: `${base}_count`, labels: { name, kind }, value: h.count },
            );
          }
        }
        return samples;
      },
      resetCounts,
    );
    collectors.splice(2, 0, duration);
  }

  // The names as registered: an OpenMetrics scrape renames counters in place.
  const registered = collectors.map((collector) => [collector.name, collector] as const);
  for (const collector of collectors) registry.registerMetric(collector);
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
      for (const [name, collector] of registered) {
        // Only what this exporter registered: the name may have been taken over since.
        if (registry.getSingleMetric(name) === collector) registry.removeSingleMetric(name);
      }
    },
  };
}
