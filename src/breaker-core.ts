import type { BreakerHooks } from './breaker-hooks.js';
import type { BreakerWindow } from './breaker-window.js';
import type { Clock } from './clock.js';
import type { CircuitBreakerError } from './errors.js';
import type { Emitter } from './events.js';
import type { BreakerGate } from './gate.js';
import type { Outcome } from './options.js';
import type { Replica } from './replica/replica.js';
import type { CircuitState } from './state.js';
import type { BreakerStore } from './stores/store.js';

/**
 * The members of a breaker that its gate, its slow call path and its error recording need and
 * that stay private on the breaker (an internal interface, not exported by the package): built
 * by the breaker on first use and kept in a side table, so that a breaker that only takes the
 * fast path carries nothing for it.
 */
export interface BreakerCore {
  readonly name: string;
  readonly clock: Clock;
  readonly store: BreakerStore;
  readonly replica: Replica;
  readonly timeout: number | undefined;
  readonly disposed: boolean;
  /** The gate's `callFirst`: the closed path of `call()`, written in the breaker for speed. */
  readonly callFirst: BreakerGate['callFirst'];
  /** `performance.now()` when this call is timed, else -1. */
  start(): number;
  /** The clock when a slow-call rule needs it, else 0. */
  since(): number;
  reject(state: CircuitState): CircuitBreakerError;
  recordSuccess(
    generation: number,
    probeId: string | undefined,
    started: number,
    since: number,
  ): void;
  /** The duration of a timed call (`undefined` for an untimed one); sets the next sample. */
  clockStop(started: number): number | undefined;
  readonly classify: ((error: unknown) => Outcome) | undefined;
  readonly retryAfter: ((error: unknown) => number | undefined) | undefined;
  readonly events: Emitter;
  readonly hooks: BreakerHooks;
  /** This breaker instance, as a quorum tells instances apart. */
  readonly instance: string;
  readonly window: BreakerWindow | undefined;
  readonly slowMs: number | undefined;
}

const cores = new WeakMap<object, BreakerCore>();

/** The core already kept for `breaker`, if any. */
export function keptCore(breaker: object): BreakerCore | undefined {
  return cores.get(breaker);
}

/** Keeps `core` as the core of `breaker`, built once, on first use. */
export function keepCore(breaker: object, core: BreakerCore): BreakerCore {
  cores.set(breaker, core);
  return core;
}
