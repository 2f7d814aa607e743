import type { InspectionEvent, Observer } from 'xstate';
import type { Clock } from './clock.js';
import type { BreakerConfig } from './machine.js';
import type { BreakerStore } from './stores/store.js';
import { checkDuration, describeValue, MAX_DELAY } from './validate.js';

/** How a call's error counts: against the circuit, not at all, or as a success. */
export type Outcome = 'failure' | 'ignored' | 'success';

/** Receives XState inspection events, e.g. `createWebSocketInspector().inspect`. */
export type InspectOption = Observer<InspectionEvent> | ((event: InspectionEvent) => void);

/** Options of a circuit breaker; every one is optional. */
export interface BreakerOptions {
  /** Consecutive counted failures that trip the circuit. Default 5. */
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
}

/** Options after defaults and validation. */
export interface ResolvedOptions {
  readonly config: BreakerConfig;
  readonly timeout: number | undefined;
  readonly classify: ((error: unknown) => Outcome) | undefined;
  readonly store: BreakerStore | undefined;
  readonly clock: Clock | undefined;
  readonly inspect: InspectOption | undefined;
}

/** The defaults of the origin design: 5 failures, 30 s open, 2 successes, 1 probe. */
export const DEFAULTS = {
  failMax: 5,
  resetTimeout: 30_000,
  successThreshold: 2,
  halfOpenMaxCalls: 1,
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
  'classify',
  'store',
  'clock',
  'inspect',
]);

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
  const resetTimeout =
    given.resetTimeout === undefined
      ? DEFAULTS.resetTimeout
      : checkDuration('option resetTimeout', given.resetTimeout);
  const config = {
    failMax: given.failMax === undefined ? DEFAULTS.failMax : count('failMax', given.failMax),
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
  return { config, timeout, classify, store, clock, inspect };
}

// Compared by value or identity: another store or clock is another shared statechart or
// another time base.
const COMPARED = ['timeout', 'store', 'clock'] as const;
// Compared by presence only: a handler written inline where the breaker is asked for is a new
// function object on every call, yet the same code, so its identity says nothing.
const HANDLERS = ['classify', 'inspect'] as const;

/**
 * The options that differ between two resolved option sets, by name. `classify` and `inspect`
 * differ only when one set has it and the other not.
 */
export function optionDifferences(a: ResolvedOptions, b: ResolvedOptions): string[] {
  const differences: string[] = [];
  for (const key of Object.keys(a.config) as (keyof BreakerConfig)[]) {
    if (a.config[key] !== b.config[key])
      differences.push(`${key} (${a.config[key]} vs ${b.config[key]})`);
  }
  const differ = (key: (typeof COMPARED)[number] | (typeof HANDLERS)[number]) =>
    differences.push(`${key} (${describeValue(a[key])} vs ${describeValue(b[key])})`);
  for (const key of COMPARED) if (a[key] !== b[key]) differ(key);
  for (const key of HANDLERS) if ((a[key] === undefined) !== (b[key] === undefined)) differ(key);
  return differences;
}
