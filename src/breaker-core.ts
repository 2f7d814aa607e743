import type { BreakerHooks } from './breaker-hooks.js';
import type { BreakerWindow } from './breaker-window.js';
import type { Clock } from './clock.js';
import type { CircuitBreakerError } from './errors.js';
import type { Emitter } from './events.js';
import type { FirstTargetFailed } from './gate.js';
import type { Outcome } from './options.js';
import type { Replica } from './replica/replica.js';
import type { CircuitState } from './state.js';
import type { BreakerStore } from './stores/store.js';

/** The public members of a breaker that its core reads. */
export interface CoreBreaker {
  readonly name: string;
  readonly clock: Clock;
  readonly store: BreakerStore;
  readonly disposed: boolean;
}

/**
 * The private members of a breaker, read through functions that the breaker class lends once
 * (from its static block): a core then holds nothing but its breaker.
 */
export interface BreakerInternals<B extends CoreBreaker> {
  replica(breaker: B): Replica;
  timeout(breaker: B): number | undefined;
  classify(breaker: B): ((error: unknown) => Outcome) | undefined;
  retryAfter(breaker: B): ((error: unknown) => number | undefined) | undefined;
  events(breaker: B): Emitter;
  hooks(breaker: B): BreakerHooks;
  instance(breaker: B): string;
  window(breaker: B): BreakerWindow | undefined;
  slowMs(breaker: B): number | undefined;
  start(breaker: B): number;
  since(breaker: B): number;
  recordSuccess(
    breaker: B,
    generation: number,
    probeId: string | undefined,
    started: number,
    since: number,
  ): void;
  clockStop(breaker: B, started: number): number | undefined;
  callFirst<V, R>(
    breaker: B,
    fn: (value: V, signal: AbortSignal) => R | PromiseLike<R>,
    value: V,
    next: FirstTargetFailed,
  ): Promise<R>;
}

// Typed for no breaker in particular: the core never names the breaker class (it sits below it).
let internals: BreakerInternals<never> | undefined;

/** Lends the breaker class's private members to the cores (called once, by that class). */
export function lendInternals<B extends CoreBreaker>(lent: BreakerInternals<B>): void {
  internals = lent as unknown as BreakerInternals<never>;
}

/**
 * The members of a breaker that its gate, its slow call path and its error recording need and
 * that stay private on the breaker (internal, not exported by the package). A core holds only
 * its breaker and reads the rest through the lent functions, so that it costs one small object
 * when made (on the slow path and for a gate) and nothing kept: a breaker that failed once
 * (an open one waiting out its period) carries no closures or copies for it.
 */
export class BreakerCore<B extends CoreBreaker = CoreBreaker> {
  readonly #breaker: B;
  readonly #internals: BreakerInternals<B>;

  constructor(breaker: B) {
    if (internals === undefined) throw new Error('statebreaker: the breaker class is not loaded');
    this.#breaker = breaker;
    this.#internals = internals as unknown as BreakerInternals<B>;
  }

  get name(): string {
    return this.#breaker.name;
  }
  get clock(): Clock {
    return this.#breaker.clock;
  }
  get store(): BreakerStore {
    return this.#breaker.store;
  }
  get disposed(): boolean {
    return this.#breaker.disposed;
  }
  get replica(): Replica {
    return this.#internals.replica(this.#breaker);
  }
  get timeout(): number | undefined {
    return this.#internals.timeout(this.#breaker);
  }
  get classify(): ((error: unknown) => Outcome) | undefined {
    return this.#internals.classify(this.#breaker);
  }
  get retryAfter(): ((error: unknown) => number | undefined) | undefined {
    return this.#internals.retryAfter(this.#breaker);
  }
  get events(): Emitter {
    return this.#internals.events(this.#breaker);
  }
  get hooks(): BreakerHooks {
    return this.#internals.hooks(this.#breaker);
  }
  /** This breaker instance, as a quorum tells instances apart. */
  get instance(): string {
    return this.#internals.instance(this.#breaker);
  }
  get window(): BreakerWindow | undefined {
    return this.#internals.window(this.#breaker);
  }
  get slowMs(): number | undefined {
    return this.#internals.slowMs(this.#breaker);
  }
  /** `performance.now()` when this call is timed, else -1. */
  start(): number {
    return this.#internals.start(this.#breaker);
  }
  /** The clock when a slow-call rule needs it, else 0. */
  since(): number {
    return this.#internals.since(this.#breaker);
  }
  reject(state: CircuitState): CircuitBreakerError {
    return this.hooks.rejected(state, this.replica, this.clock);
  }
  recordSuccess(
    generation: number,
    probeId: string | undefined,
    started: number,
    since: number,
  ): void {
    this.#internals.recordSuccess(this.#breaker, generation, probeId, started, since);
  }
  /** The duration of a timed call (`undefined` for an untimed one); sets the next sample. */
  clockStop(started: number): number | undefined {
    return this.#internals.clockStop(this.#breaker, started);
  }
  /** The gate's `callFirst`: the closed path of `call()`, written in the breaker for speed. */
  callFirst<V, R>(
    fn: (value: V, signal: AbortSignal) => R | PromiseLike<R>,
    value: V,
    next: FirstTargetFailed,
  ): Promise<R> {
    return this.#internals.callFirst(this.#breaker, fn, value, next);
  }
}
