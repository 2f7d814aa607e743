import type { TransitionReason } from '../machine.js';
import type { CircuitState } from '../state.js';

/** What a replica tells its breaker. */
export interface ReplicaHooks {
  /**
   * The top-level state changed. `speculative`: decided by this instance alone while the store
   * does not answer; the fleet's record may still overrule it.
   */
  transition(
    from: CircuitState,
    to: CircuitState,
    reason: TransitionReason,
    generation: number,
    speculative: boolean,
  ): void;
  storeError(error: unknown): void;
  degraded(error: unknown): void;
  recovered(): void;
}
