import type { BreakerObserver } from './breaker-observer.js';
import type { Clock } from './clock.js';
import { warnUnheardDegraded, warnUnheardMismatch } from './degraded-warning.js';
import { asError, CircuitBreakerError } from './errors.js';
import type { Emitter } from './events.js';
import { openDurationOf, type TransitionReason } from './machine.js';
import { ConfigMismatchError, CorruptRecordError } from './record/errors.js';
import type { Replica } from './replica/replica.js';
import type { CircuitState } from './state.js';

// Who hears a breaker (its metrics exporters and its listeners), and the replica's callbacks, as
// prototype methods: per-breaker closures cost ~60 B each (and ~250 B more under esbuild
// keepNames), which an idle breaker should not pay. The observer loops on the call path are
// indexed: a for-of iterator is not always optimized away, and would cost an allocation per call.
export class BreakerHooks {
  /** The metrics exporters following the breaker; replaced, never changed in place. */
  observers: readonly BreakerObserver[] | null = null;
  constructor(
    readonly name: string,
    readonly events: Emitter,
  ) {}
  transition(
    from: CircuitState,
    to: CircuitState,
    reason: TransitionReason,
    generation: number,
    speculative: boolean,
  ) {
    const observers = this.observers;
    if (observers !== null) for (const observer of observers) observer.transition(from, to, reason);
    this.events.emit('stateChange', { name: this.name, from, to, reason, generation, speculative });
  }
  storeError(thrown: unknown) {
    const error = asError(thrown);
    const observers = this.observers;
    if (observers !== null) for (const observer of observers) observer.storeError(error);
    if (error instanceof ConfigMismatchError && !this.events.has('storeError')) {
      warnUnheardMismatch(error);
    }
    this.events.emit(
      'storeError',
      error instanceof CorruptRecordError
        ? { name: this.name, error, key: error.key }
        : { name: this.name, error },
    );
  }
  degraded(thrown: unknown) {
    const error = asError(thrown);
    if (!this.events.has('degraded') && !this.events.has('storeError')) {
      warnUnheardDegraded(this.name, error);
    }
    this.events.emit('degraded', { name: this.name, error });
  }
  recovered() {
    this.events.emit('recovered', { name: this.name });
  }
  /** A counted failure, heard by the exporters and the `failure` listeners. */
  failed(error: unknown, durationMs: number | undefined) {
    const observers = this.observers;
    if (observers !== null) {
      for (let i = 0; i < observers.length; i++) observers[i]?.failed(durationMs);
    }
    if (this.events.has('failure'))
      this.events.emit('failure', { name: this.name, error, durationMs });
  }
  /** An ignored outcome, heard by the exporters and the `ignored` listeners. */
  ignored(error: unknown, durationMs: number | undefined) {
    const observers = this.observers;
    if (observers !== null) {
      for (let i = 0; i < observers.length; i++) observers[i]?.ignored(durationMs);
    }
    if (this.events.has('ignored'))
      this.events.emit('ignored', { name: this.name, error, durationMs });
  }
  /**
   * The error of a call rejected in `state` (with the time left until an open circuit
   * half-opens), once the exporters and the `rejected` listeners heard it.
   */
  rejected(state: CircuitState, replica: Replica, clock: Clock): CircuitBreakerError {
    const retryAfterMs =
      state === 'open' && replica.openedAt !== null
        ? Math.max(0, replica.openedAt + openDurationOf(replica.context) - clock.now())
        : undefined;
    const error = CircuitBreakerError.create(this.name, state, retryAfterMs);
    const observers = this.observers;
    if (observers !== null) for (let i = 0; i < observers.length; i++) observers[i]?.rejected();
    if (this.events.has('rejected')) this.events.emit('rejected', { name: this.name, error });
    return error;
  }
}
