import type {
  Attributes,
  BatchObservableCallback,
  Counter,
  Gauge,
  Histogram,
  Meter,
  MetricOptions,
  Observable,
  ObservableCallback,
  ObservableResult,
  UpDownCounter,
} from '@opentelemetry/api';

/** One value an instrument took: recorded, added, or observed at a collection. */
export interface Measurement {
  readonly instrument: string;
  readonly value: number;
  readonly attributes: Attributes;
}

type Kind =
  | 'counter'
  | 'upDownCounter'
  | 'gauge'
  | 'histogram'
  | 'observableCounter'
  | 'observableUpDownCounter'
  | 'observableGauge';

/** An instrument as it was created. */
export interface Created {
  readonly name: string;
  readonly kind: Kind;
  readonly options: MetricOptions | undefined;
}

class RecordingObservable implements Observable {
  readonly callbacks = new Set<ObservableCallback>();
  constructor(readonly name: string) {}
  addCallback(callback: ObservableCallback): void {
    this.callbacks.add(callback);
  }
  removeCallback(callback: ObservableCallback): void {
    this.callbacks.delete(callback);
  }
}

/**
 * A test double of the user's `@opentelemetry/api` Meter: it keeps what statebreaker asks of
 * it (instruments created, values recorded, observable callbacks) and runs the callbacks when
 * `collect()` is called, as an SDK's reader would. It checks statebreaker's calls into the API,
 * not OpenTelemetry.
 */
export class RecordingMeter implements Meter {
  readonly created: Created[] = [];
  readonly recorded: Measurement[] = [];
  readonly #observables: RecordingObservable[] = [];

  #instrument(name: string, kind: Kind, options: MetricOptions | undefined) {
    this.created.push({ name, kind, options });
    const record = (value: number, attributes: Attributes = {}) => {
      this.recorded.push({ instrument: name, value, attributes });
    };
    return { record, add: record };
  }

  #observable(name: string, kind: Kind, options: MetricOptions | undefined): RecordingObservable {
    this.created.push({ name, kind, options });
    const observable = new RecordingObservable(name);
    this.#observables.push(observable);
    return observable;
  }

  createGauge(name: string, options?: MetricOptions): Gauge {
    return this.#instrument(name, 'gauge', options);
  }
  createHistogram(name: string, options?: MetricOptions): Histogram {
    return this.#instrument(name, 'histogram', options);
  }
  createCounter(name: string, options?: MetricOptions): Counter {
    return this.#instrument(name, 'counter', options);
  }
  createUpDownCounter(name: string, options?: MetricOptions): UpDownCounter {
    return this.#instrument(name, 'upDownCounter', options);
  }
  createObservableGauge(name: string, options?: MetricOptions): Observable {
    return this.#observable(name, 'observableGauge', options);
  }
  createObservableCounter(name: string, options?: MetricOptions): Observable {
    return this.#observable(name, 'observableCounter', options);
  }
  createObservableUpDownCounter(name: string, options?: MetricOptions): Observable {
    return this.#observable(name, 'observableUpDownCounter', options);
  }
  addBatchObservableCallback(_callback: BatchObservableCallback, _observables: Observable[]) {
    throw new Error('statebreaker does not use batch callbacks');
  }
  removeBatchObservableCallback(_callback: BatchObservableCallback, _observables: Observable[]) {
    throw new Error('statebreaker does not use batch callbacks');
  }

  /** Runs every observable callback, as a reader's collection does, and returns what they saw. */
  collect(): Measurement[] {
    const seen: Measurement[] = [];
    for (const observable of this.#observables) {
      const result: ObservableResult = {
        observe(value, attributes = {}) {
          seen.push({ instrument: observable.name, value, attributes });
        },
      };
      for (const callback of observable.callbacks) void callback(result);
    }
    return seen;
  }

  /** How many callbacks are registered on all observables. */
  get callbackCount(): number {
    return this.#observables.reduce((n, o) => n + o.callbacks.size, 0);
  }
}
