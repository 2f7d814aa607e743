/** One sample of a metric as prom-client's registry reads it. */
export interface PrometheusSample {
  readonly value: number;
  readonly labels: Readonly<Record<string, string | number>>;
  /** The sample's own name (a histogram's `_bucket`, `_sum`, `_count`). */
  readonly metricName?: string;
}

/** What prom-client's registry calls on a registered metric. */
export interface PrometheusMetric {
  get(): Promise<unknown>;
  reset(): void;
}

/**
 * A metric whose samples are computed when the registry is scraped, in the shape prom-client's
 * registry reads from its own metrics (`name`, `help`, `type`, `aggregator`, `get()`,
 * `reset()`). It needs no prom-client code: the values live in statebreaker's own counts.
 */
export class PrometheusCollector implements PrometheusMetric {
  readonly aggregator = 'sum';

  constructor(
    /** Written by the registry when it serves OpenMetrics (counters lose `_total`). */
    public name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    readonly samples: () => PrometheusSample[],
    readonly onReset: () => void = () => {},
  ) {}

  async get(): Promise<{
    name: string;
    help: string;
    type: string;
    values: PrometheusSample[];
    aggregator: string;
  }> {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values: this.samples(),
      aggregator: this.aggregator,
    };
  }

  reset(): void {
    this.onReset();
  }
}
