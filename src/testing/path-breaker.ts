// Breakers for paths: the errors a path's calls reject with, and how to build a breaker for them.
import { CircuitBreaker } from '../breaker.js';
import type { Clock } from '../clock.js';
import type { BreakerConfig } from '../machine.js';
import { configOptions, type Outcome } from '../options.js';
import { MemoryStore } from '../stores/memory.js';
import type { BreakerStore } from '../stores/store.js';
import { PATH_CONFIG } from './steps.js';

/** The error a `fail` step's call rejects with: a counted failure. */
export class PathFailureError extends Error {
  override readonly name = 'PathFailureError';
  /** The step's retry-after in ms, which {@link pathRetryAfter} hands to the breaker. */
  readonly retryAfterMs: number | undefined;

  constructor(message?: string, retryAfterMs?: number) {
    super(message);
    this.retryAfterMs = retryAfterMs;
  }
}

/** The error an `ignore` step's call rejects with; {@link classifyPathError} ignores it. */
export class PathIgnoredError extends Error {
  override readonly name = 'PathIgnoredError';
}

/**
 * A `classify` option for breakers driven by paths: {@link PathIgnoredError} is ignored, every
 * other error is a failure. Breakers given to {@link runBreakerPath} need it (or a classify
 * that agrees on these two errors).
 */
export function classifyPathError(error: unknown): Outcome {
  return error instanceof PathIgnoredError ? 'ignored' : 'failure';
}

/**
 * A `retryAfter` option for breakers driven by paths: the retry-after a step gave its
 * {@link PathFailureError}, if any.
 */
export function pathRetryAfter(error: unknown): number | undefined {
  return error instanceof PathFailureError ? error.retryAfterMs : undefined;
}

/** Where and how {@link createPathBreaker} builds a breaker. */
export interface PathBreakerOptions {
  /** The simulated clock the path's `advance` steps move. */
  readonly clock: Clock;
  /** The store; a new `MemoryStore` on `clock` by default. Share one to build a fleet. */
  readonly store?: BreakerStore;
  /** The thresholds; use the `config` of the paths being run. Default {@link PATH_CONFIG}. */
  readonly config?: BreakerConfig;
}

/**
 * A breaker ready for {@link runBreakerPath}: the paths' config, the simulated clock,
 * {@link classifyPathError} and {@link pathRetryAfter}. Several built on one store and name
 * form a fleet.
 */
export function createPathBreaker(name: string, options: PathBreakerOptions): CircuitBreaker {
  const { clock, config = PATH_CONFIG } = options;
  return new CircuitBreaker(name, {
    ...configOptions(config),
    clock,
    store: options.store ?? new MemoryStore({ clock }),
    classify: classifyPathError,
    retryAfter: pathRetryAfter,
  });
}

/** What {@link runBreakerPath} needs of a breaker; `CircuitBreaker` has it all. */
export type PathBreaker = Pick<
  CircuitBreaker,
  'call' | 'state' | 'context' | 'settled' | 'forceOpen' | 'disable' | 'reset'
>;
