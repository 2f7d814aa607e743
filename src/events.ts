import type { CircuitBreakerError } from './errors.js';
import type { TransitionReason } from './machine.js';
import type { CircuitState } from './state.js';

/** A change of the breaker's top-level state, local or adopted from another instance. */
export interface StateChangeEvent {
  readonly name: string;
  readonly from: CircuitState;
  readonly to: CircuitState;
  readonly reason: TransitionReason;
  /** The statechart's generation after the change. */
  readonly generation: number;
  /**
   * Decided by this instance alone while the store does not answer (the breaker is degraded):
   * not yet confirmed by the fleet, whose record may overrule it when the store is back.
   * `false` for a change the store confirmed or that this instance wrote while it answered.
   */
  readonly speculative: boolean;
}

/**
 * The events a breaker emits, by name, with their payloads.
 *
 * `durationMs` of `success`, `failure` and `ignored` is how long the call ran (from calling
 * the function to its settling, on `performance.now()`); the breaker reads the clock only
 * while one of these three events has a listener, so it is absent for a call that began
 * before the first such listener was added.
 */
export interface BreakerEventMap {
  stateChange: StateChangeEvent;
  /** A call admitted by the breaker returned (or its error was classified as a success). */
  success: { readonly name: string; readonly durationMs?: number };
  /** A call failed and was classified as a failure (the statechart counts it unless it is stale). */
  failure: { readonly name: string; readonly error: unknown; readonly durationMs?: number };
  /** A call failed and the failure was ignored: it neither trips nor closes the circuit. */
  ignored: { readonly name: string; readonly error: unknown; readonly durationMs?: number };
  /**
   * The `classify` option threw, or returned something other than `'failure'`, `'ignored'` or
   * `'success'`; the call counted as a failure. Or the `retryAfter` option threw, or returned
   * something other than a number or `undefined`; the failure counted without a retry-after.
   * `error` is what the option threw, or a `TypeError` naming what it returned.
   */
  classifyError: { readonly name: string; readonly error: unknown };
  /** A call was rejected without being made. */
  rejected: { readonly name: string; readonly error: CircuitBreakerError };
  /**
   * The store failed or held a bad record; the breaker went on deciding locally. `key` names
   * the Redis key of a `CorruptRecordError`. `error` is the library's `ConfigMismatchError`,
   * `CorruptRecordError` or `LostRecordError`, the store's own (`RedisStoreTimeoutError`, the
   * client's), or an `Error` whose `cause` is whatever else a store rejected with.
   */
  storeError: { readonly name: string; readonly error: Error; readonly key?: string };
  /**
   * The breaker lost its store and now decides locally; `error` is the store's failure, as in
   * `storeError`.
   */
  degraded: { readonly name: string; readonly error: Error };
  /** The store answers again and the breaker's state is reconciled with it. */
  recovered: { readonly name: string };
}

/** A listener of one breaker event. */
export type BreakerListener<K extends keyof BreakerEventMap> = (event: BreakerEventMap[K]) => void;

type AnyListener = (event: never) => void;

/**
 * A typed event emitter whose listener table is allocated on the first `on`, so that an idle
 * breaker with no listeners costs nothing, and whose `has` lets the hot path skip building
 * payloads nobody reads.
 */
export class Emitter {
  #listeners: Map<keyof BreakerEventMap, Set<AnyListener>> | null = null;

  on<K extends keyof BreakerEventMap>(event: K, listener: BreakerListener<K>): () => void {
    if (typeof listener !== 'function') {
      throw new TypeError(`listener for "${event}" must be a function, got ${typeof listener}`);
    }
    this.#listeners ??= new Map();
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener as AnyListener);
    return () => this.off(event, listener);
  }

  off<K extends keyof BreakerEventMap>(event: K, listener: BreakerListener<K>): void {
    const set = this.#listeners?.get(event);
    if (set === undefined) return;
    set.delete(listener as AnyListener);
    if (set.size === 0) this.#listeners?.delete(event);
  }

  /** Removes every listener: nothing is emitted after it. */
  clear(): void {
    this.#listeners = null;
  }

  has(event: keyof BreakerEventMap): boolean {
    return this.#listeners?.has(event) === true;
  }

  emit<K extends keyof BreakerEventMap>(event: K, payload: BreakerEventMap[K]): void {
    const set = this.#listeners?.get(event);
    if (set === undefined) return;
    for (const listener of set) {
      try {
        (listener as BreakerListener<K>)(payload);
      } catch (error) {
        // A listener's bug must not break the breaker nor the call that triggered the event.
        process.emitWarning(`statebreaker: a "${event}" listener threw: ${String(error)}`);
      }
    }
  }
}
