import type { TransitionReason } from './machine.js';
import type { CircuitState } from './state.js';

/**
 * @internal What a metrics exporter hears from one breaker, called directly rather than through
 * the breaker's events: no payload is built, a listener-less breaker's degraded warning stays
 * on, and the hot path pays one null check while no exporter runs.
 *
 * `durationMs` is how long the call ran, absent when the call was not timed: it began before an
 * observer with `timed` was attached, or it fell outside the sample (once 8 timed calls in a
 * row took under 0.1 ms, one call in 64 is timed until a timed call is slower). The methods must not throw.
 */
export interface BreakerObserver {
  /** Whether the breaker should read the clock around every call for this observer. */
  readonly timed: boolean;
  successful(durationMs: number | undefined): void;
  failed(durationMs: number | undefined): void;
  ignored(durationMs: number | undefined): void;
  rejected(): void;
  /** A change of top-level state this instance made or adopted from another instance. */
  transition(from: CircuitState, to: CircuitState, reason: TransitionReason): void;
  storeError(error: unknown): void;
}
