import { describeValue, MAX_DELAY } from '../validate.js';
import { DEFAULT_IDLE_TIMEOUT } from './totals-by-name.js';

/**
 * Upper bounds (seconds) of the duration histogram's buckets by default: Prometheus's default
 * buckets, and 30 s, 60 s and 120 s above them for LLM calls that run for minutes.
 */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
];

/** Options shared by both exporters. */
export interface MetricsOptions {
  /**
   * Upper bounds of the call duration histogram's buckets, in seconds, increasing.
   * Default {@link DEFAULT_BUCKETS}.
   */
  readonly buckets?: readonly number[];
  /**
   * Whether to time calls for the duration histogram. Timing reads the clock twice per call
   * (about 80 ns on a small VM, more than the rest of a closed-circuit call), so once 8 timed
   * calls in a row took under 0.1 ms, one call in 64 is timed, and an untimed call counts with
   * the duration last timed for its kind: the histogram counts every call, its buckets a sample.
   * A call goes untimed only within the 63 calls after such a run; a slower timed call ends the
   * sampling, and slower calls are then all timed. `false` leaves the histogram out. Default
   * `true`.
   */
  readonly durations?: boolean;
  /**
   * Milliseconds a breaker name's series stay after its last live breaker is disposed: its
   * counts are read by the scrapes meanwhile, then dropped, so that dynamic names (per tenant,
   * per model) do not hold memory for the process's whole life. A name made again afterwards
   * counts from zero (a counter reset to Prometheus). At most 1 000 idle names are kept at once,
   * the longest idle dropped first. `Infinity` keeps every name. Default 600 000 (10 minutes).
   */
  readonly idleTimeout?: number;
}

/** The shared options, checked. */
export interface ResolvedMetricsOptions {
  readonly buckets: readonly number[];
  readonly durations: boolean;
  readonly idleTimeout: number;
}

/**
 * Checks an exporter's options object: `required` names its one required option, which the
 * caller checks; every other name must be a shared option.
 * @throws TypeError or RangeError naming the function, the option and the value
 */
export function resolveMetricsOptions(
  fn: string,
  required: string,
  options: unknown,
): ResolvedMetricsOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(
      `${fn} needs an options object with ${required}, got ${describeValue(options)}`,
    );
  }
  for (const key of Object.keys(options)) {
    if (key !== required && key !== 'buckets' && key !== 'durations' && key !== 'idleTimeout') {
      throw new TypeError(`${fn} got an unknown option ${JSON.stringify(key)}`);
    }
  }
  const {
    buckets = DEFAULT_BUCKETS,
    durations = true,
    idleTimeout = DEFAULT_IDLE_TIMEOUT,
  } = options as MetricsOptions;
  if (typeof durations !== 'boolean') {
    throw new TypeError(
      `${fn} option durations must be a boolean, got ${describeValue(durations)}`,
    );
  }
  return {
    buckets: checkBuckets(fn, buckets),
    durations,
    idleTimeout: checkIdleTimeout(fn, idleTimeout),
  };
}

function checkIdleTimeout(fn: string, value: unknown): number {
  if (typeof value !== 'number') {
    throw new TypeError(
      `${fn} option idleTimeout must be a number of milliseconds, got ${describeValue(value)}`,
    );
  }
  if (!(value >= 0 && (value <= MAX_DELAY || value === Number.POSITIVE_INFINITY))) {
    throw new RangeError(
      `${fn} option idleTimeout must be at least 0 and at most ${MAX_DELAY} ms, or Infinity, got ${describeValue(value)}`,
    );
  }
  return value;
}

function checkBuckets(fn: string, buckets: unknown): readonly number[] {
  if (!Array.isArray(buckets)) {
    throw new TypeError(
      `${fn} option buckets must be an array of seconds, got ${describeValue(buckets)}`,
    );
  }
  if (buckets.length === 0) throw new RangeError(`${fn} option buckets must not be empty`);
  let previous = 0;
  for (const bound of buckets as unknown[]) {
    if (typeof bound !== 'number' || !Number.isFinite(bound) || bound <= previous) {
      throw new RangeError(
        `${fn} option buckets must be finite numbers of seconds above 0, each above the one ` +
          `before, got ${describeValue(bound)} in [${buckets.map(String).join(', ')}]`,
      );
    }
    previous = bound;
  }
  return Object.freeze([...(buckets as number[])]);
}

/**
 * `value` as a `T` when it has each of `methods` (the user's registry or meter, whose package
 * statebreaker does not load, so only its shape can be checked).
 * @throws TypeError naming the option and what it must be.
 */
export function withMethods<T>(
  value: unknown,
  methods: readonly (keyof T & string)[],
  option: string,
  expected: string,
): T {
  const candidate = value as Record<string, unknown> | null;
  if (
    typeof candidate !== 'object' ||
    candidate === null ||
    methods.some((method) => typeof candidate[method] !== 'function')
  ) {
    throw new TypeError(`${option} must be ${expected}, got ${describeValue(value)}`);
  }
  return value as T;
}
