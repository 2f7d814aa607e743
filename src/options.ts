import type { InspectionEvent, Observer } from 'xstate';
import type { Clock } from './clock.js';
import type { BreakerConfig } from './machine.js';
import { backoffOption, retryAfterFloorOption } from './open-duration-options.js';
import type { BreakerStore } from './stores/store.js';
import { checkDuration, describeValue, MAX_DELAY } from './validate.js';

/** How a call's error counts: against the circuit, not at all, or as a success. */
export type Outcome = 'failure' | 'ignored' | 'success';

/** Receives XState inspection events, e.g. `createWebSocketInspector().inspect`. */
export type InspectOption = Observer<InspectionEvent> | ((event: InspectionEvent) => void);

/** Options of a circuit breaker; every one is optional. */
export interface BreakerOptions {
  /**
   * Consecutive counted failures that trip the circuit. Default 5. `Infinity` turns the
   * consecutive rule off, so that only a rate rule (or a retry-after) trips.
   */
  failMax?: number;
  /** Milliseconds the circuit stays open before a probe may test recovery. Default 30 000. */
  resetTimeout?: number;
  /** Probe successes in half-open that close the circuit. Default 2. */
  successThreshold?: number;
  /** Probes in flight at once in half-open, across every instance sharing the store. Default 1. */
  halfOpenMaxCalls?: number;
  /**
   * Milliseconds a probe holds its slot; a probe that has not answered by then counts as a
   * failure and reopens the circuit. Default: `timeout` + 1 000 ms when `timeout` is set (so a
   * timed-out probe reports its timeout first), else `resetTimeout`.
   */
  probeLease?: number;
  /** Milliseconds a call may run: then its signal is aborted and it fails with `CallTimeoutError`. */
  timeout?: number;
  /**
   * Milliseconds a stream (`stream()`) may take to send its first chunk: then its signal is
   * aborted and it fails with `FirstChunkTimeoutError`. Default: `timeout`.
   */
  firstChunkTimeout?: number;
  /**
   * The longest gap in milliseconds between two chunks of a stream once it has begun (time the
   * consumer holds a chunk does not count): then its signal is aborted and it fails with
   * `ChunkTimeoutError`. Unset by default.
   */
  chunkTimeout?: number;
  /**
   * How an error counts. Default: every error is a failure. A call aborted by the caller's own
   * signal is always ignored; a `CallTimeoutError` is always a failure. `getCircuitBreaker`
   * keeps the first breaker's `classify` when asked again with another function.
   */
  classify?: (error: unknown) => Outcome;
  /** Where the statechart's snapshots live; the process-wide `MemoryStore` by default. */
  store?: BreakerStore;
  /** The clock to decide with; the store's clock by default. */
  clock?: Clock;
  /** An XState inspection observer: the running statechart shows in the Stately inspector. */
  inspect?: InspectOption;
  /**
   * Percent (0 < x ≤ 100): the circuit also trips when, over the last `window` ms, at least
   * `minimumCalls` outcomes were counted across the fleet and this share of them failed.
   * Ignored calls count in neither. Unset by default.
   */
  failureRateThreshold?: number;
  /** Counted calls the window must hold, fleet-wide, before a rate rule may trip. Default 20. */
  minimumCalls?: number;
  /** Milliseconds of outcomes the rate rules look at. Default 10 000. */
  window?: number;
  /** Milliseconds from which a counted call (successful or failed) is slow. */
  slowCallDuration?: number;
  /** Percent (0 < x ≤ 100) of the window's counted calls that were slow at which it trips. */
  slowCallRateThreshold?: number;
  /**
   * Milliseconds between this instance's flushes of its window counts to the store (and reads of
   * the fleet's totals), while its window holds calls. Default 500; at most `window`.
   */
  windowFlush?: number;
  /**
   * Each reopen without a close in between (a probe failed, a lease expired) multiplies the open
   * duration by `multiplier` (≥ 1), up to `max` ms (≥ `resetTimeout`); a close resets it.
   */
  backoff?: BackoffOptions;
  /**
   * The upstream's word on how long to stay away, in ms, or `undefined`: a counted failure for
   * which it returns a number opens the circuit at once, fleet-wide, for that long (at least
   * `retryAfterFloor`, at most `backoff.max` or 10 minutes), whatever the counters say;
   * `resetTimeout` plays no part.
   */
  retryAfter?: (error: unknown) => number | undefined;
  /**
   * The shortest open period a retry-after gives, in ms, so that a `retry-after: 0` does not
   * flap the circuit between open and half-open. Default 1 000; at most `backoff.max` (10
   * minutes without backoff). Shared by the fleet, like the thresholds.
   */
  retryAfterFloor?: number;
  /**
   * Distinct instances whose failures a trip by the consecutive or a rate rule needs, so that
   * one instance with a broken network cannot open the circuit for the fleet. Default 1.
   */
  quorum?: number;
}

/** The `backoff` option. */
export interface BackoffOptions {
  /** What each reopen multiplies the open duration by (≥ 1). */
  multiplier: number;
  /** The longest open duration in ms (≥ `resetTimeout`). */
  max: number;
}

/** Options after defaults and validation. */
export interface ResolvedOptions {
  readonly config: BreakerConfig;
  readonly timeout: number | undefined;
  readonly firstChunkTimeout: number | undefined;
  readonly chunkTimeout: number | undefined;
  readonly classify: ((error: unknown) => Outcome) | undefined;
  readonly store: BreakerStore | undefined;
  readonly clock: Clock | undefined;
  readonly inspect: InspectOption | undefined;
  /** Milliseconds between window flushes; `undefined` when no rate rule is on. */
  readonly windowFlush: number | undefined;
  readonly retryAfter: ((error: unknown) => number | undefined) | undefined;
}

/** The defaults of the origin design: 5 failures, 30 s open, 2 successes, 1 probe. */
export const DEFAULTS = {
  failMax: 5,
  resetTimeout: 30_000,
  successThreshold: 2,
  halfOpenMaxCalls: 1,
} as const;

/** Defaults of the rate rules' options. */
export const WINDOW_DEFAULTS = {
  minimumCalls: 20,
  window: 10_000,
  windowFlush: 500,
} as const;

// How much longer than `timeout` a probe's lease runs by default.
const LEASE_MARGIN = 1_000;

const KNOWN = new Set<string>([
  'failMax',
  'resetTimeout',
  'successThreshold',
  'halfOpenMaxCalls',
  'probeLease',
  'timeout',
  'firstChunkTimeout',
  'chunkTimeout',
  'classify',
  'store',
  'clock',
  'inspect',
  'failureRateThreshold',
  'minimumCalls',
  'window',
  'slowCallDuration',
  'slowCallRateThreshold',
  'windowFlush',
  'backoff',
  'retryAfter',
  'retryAfterFloor',
  'quorum',
]);

// Options that mean nothing without a rate rule: refused alone, so that a forgotten threshold
// does not pass for a working window.
const WINDOW_ONLY = ['minimumCalls', 'window', 'windowFlush'] as const;

function count(name: string, value: unknown): number {
  if (typeof value !== 'number') {
    throw new TypeError(`option ${name} must be a number, got ${describeValue(value)}`);
  }
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `option ${name} must be a whole number of at least 1, got ${describeValue(value)}`,
    );
  }
  return value;
}

function percent(name: string, value: unknown): number {
  if (typeof value !== 'number') {
    throw new TypeError(`option ${name} must be a number (percent), got ${describeValue(value)}`);
  }
  if (!(value > 0 && value <= 100)) {
    throw new RangeError(
      `option ${name} must be a percent above 0 and at most 100, got ${describeValue(value)}`,
    );
  }
  return value;
}

function failMaxOption(value: unknown): number {
  return value === Number.POSITIVE_INFINITY ? value : count('failMax', value);
}

// The rate rules' part of the configuration: set only with a rate rule on.
function windowConfig(given: Record<string, unknown>) {
  const failureRate = optional(given.failureRateThreshold, (v) =>
    percent('failureRateThreshold', v),
  );
  const slowRate = optional(given.slowCallRateThreshold, (v) =>
    percent('slowCallRateThreshold', v),
  );
  const slowDuration = optional(given.slowCallDuration, (v) =>
    checkDuration('option slowCallDuration', v),
  );
  if ((slowRate === undefined) !== (slowDuration === undefined)) {
    throw new TypeError(
      slowRate === undefined
        ? 'option slowCallDuration needs slowCallRateThreshold (the share of slow calls that trips)'
        : 'option slowCallRateThreshold needs slowCallDuration (from how many ms a call is slow)',
    );
  }
  if (failureRate === undefined && slowRate === undefined) {
    for (const key of WINDOW_ONLY) {
      if (given[key] !== undefined) {
        throw new TypeError(
          `option ${key} needs a rate rule: failureRateThreshold or slowCallRateThreshold`,
        );
      }
    }
    return { config: {}, windowFlush: undefined };
  }
  const window =
    given.window === undefined
      ? WINDOW_DEFAULTS.window
      : checkDuration('option window', given.window);
  const windowFlush =
    given.windowFlush === undefined
      ? Math.min(WINDOW_DEFAULTS.windowFlush, window)
      : checkDuration('option windowFlush', given.windowFlush);
  if (windowFlush > window) {
    throw new RangeError(
      `option windowFlush must be at most window (${window} ms), got ${describeValue(windowFlush)}`,
    );
  }
  const config = {
    window,
    minimumCalls:
      given.minimumCalls === undefined
        ? WINDOW_DEFAULTS.minimumCalls
        : count('minimumCalls', given.minimumCalls),
    ...(failureRate === undefined ? {} : { failureRateThreshold: failureRate }),
    ...(slowRate === undefined
      ? {}
      : { slowCallDuration: slowDuration as number, slowCallRateThreshold: slowRate }),
  };
  return { config, windowFlush };
}

function hasMethods(value: unknown, methods: readonly string[]): boolean {
  if (value === null || typeof value !== 'object') return false;
  const record = value as Record<string, unknown>;
  return methods.every((method) => typeof record[method] === 'function');
}

function optional<T>(value: unknown, check: (value: unknown) => T): T | undefined {
  return value === undefined ? undefined : check(value);
}

/**
 * Applies defaults and validates breaker options.
 * @throws TypeError or RangeError naming the option and the value.
 */
export function resolveOptions(options: unknown): ResolvedOptions {
  if (options === undefined) options = {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`breaker options must be an object, got ${describeValue(options)}`);
  }
  const given = options as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!KNOWN.has(key)) throw new TypeError(`unknown breaker option ${JSON.stringify(key)}`);
  }
  const timeout = optional(given.timeout, (v) => checkDuration('option timeout', v));
  const firstChunkTimeout = optional(given.firstChunkTimeout, (v) =>
    checkDuration('option firstChunkTimeout', v),
  );
  const chunkTimeout = optional(given.chunkTimeout, (v) => checkDuration('option chunkTimeout', v));
  const resetTimeout =
    given.resetTimeout === undefined
      ? DEFAULTS.resetTimeout
      : checkDuration('option resetTimeout', given.resetTimeout);
  const rates = windowConfig(given);
  const backoff =
    given.backoff === undefined ? undefined : backoffOption(given.backoff, resetTimeout);
  const floor = retryAfterFloorOption(given.retryAfterFloor, backoff?.backoffMax);
  const quorum = given.quorum === undefined ? 1 : count('quorum', given.quorum);
  const config: BreakerConfig = {
    failMax: given.failMax === undefined ? DEFAULTS.failMax : failMaxOption(given.failMax),
    resetTimeout,
    successThreshold:
      given.successThreshold === undefined
        ? DEFAULTS.successThreshold
        : count('successThreshold', given.successThreshold),
    halfOpenMaxCalls:
      given.halfOpenMaxCalls === undefined
        ? DEFAULTS.halfOpenMaxCalls
        : count('halfOpenMaxCalls', given.halfOpenMaxCalls),
    probeLease:
      given.probeLease === undefined
        ? timeout === undefined
          ? resetTimeout
          : Math.min(timeout + LEASE_MARGIN, MAX_DELAY)
        : checkDuration('option probeLease', given.probeLease),
    ...rates.config,
    ...(backoff ?? {}),
    ...(floor === undefined ? {} : { retryAfterFloor: floor }),
    ...(quorum > 1 ? { quorum } : {}),
  };
  const classify = optional(given.classify, (v) => {
    if (typeof v !== 'function') {
      throw new TypeError(`option classify must be a function, got ${describeValue(v)}`);
    }
    return v as (error: unknown) => Outcome;
  });
  const store = optional(given.store, (v) => {
    if (
      !hasMethods(v, ['load', 'compareAndSet', 'subscribe']) ||
      !hasMethods((v as { clock?: unknown }).clock, ['now', 'setTimeout', 'clearTimeout'])
    ) {
      throw new TypeError(
        `option store must be a BreakerStore (load, compareAndSet, subscribe, clock), got ${describeValue(v)}`,
      );
    }
    return v as BreakerStore;
  });
  const clock = optional(given.clock, (v) => {
    if (!hasMethods(v, ['now', 'setTimeout', 'clearTimeout'])) {
      throw new TypeError(
        `option clock must have now, setTimeout and clearTimeout methods, got ${describeValue(v)}`,
      );
    }
    return v as Clock;
  });
  const inspect = optional(given.inspect, (v) => {
    if (typeof v !== 'function' && !hasMethods(v, ['next'])) {
      throw new TypeError(
        `option inspect must be an inspection observer (a function or { next }), got ${describeValue(v)}`,
      );
    }
    return v as InspectOption;
  });
  const retryAfter = optional(given.retryAfter, (v) => {
    if (typeof v !== 'function') {
      throw new TypeError(`option retryAfter must be a function, got ${describeValue(v)}`);
    }
    return v as (error: unknown) => number | undefined;
  });
  return {
    // Frozen: the breaker hands it out as its `config`, and the statechart decides with it.
    config: Object.freeze(config),
    timeout,
    firstChunkTimeout,
    chunkTimeout,
    classify,
    store,
    clock,
    inspect,
    windowFlush: rates.windowFlush,
    retryAfter,
  };
}

/**
 * The breaker options that give `config`: the configuration's fields are options of the same
 * names, but for `backoffMultiplier` and `backoffMax`, which are the `backoff` option.
 */
export function configOptions(config: Partial<BreakerConfig>): BreakerOptions {
  const { backoffMultiplier, backoffMax, ...rest } = config;
  if (backoffMultiplier === undefined && backoffMax === undefined) return { ...rest };
  return {
    ...rest,
    backoff: { multiplier: backoffMultiplier as number, max: backoffMax as number },
  };
}
