export type { MetricsExporter } from './exporter.js';
export {
  type OpenTelemetryMeter,
  type OpenTelemetryMetricsOptions,
  OTEL_METRIC_NAMES,
  openTelemetryMetrics,
} from './opentelemetry.js';
export { DEFAULT_BUCKETS, type MetricsOptions } from './options.js';
export {
  PROMETHEUS_METRIC_NAMES,
  type PrometheusMetricsOptions,
  type PrometheusRegistry,
  prometheusMetrics,
} from './prometheus.js';
export type { PrometheusMetric } from './prometheus-collector.js';
