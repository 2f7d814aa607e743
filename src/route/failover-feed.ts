import { CallTimeoutError } from '../errors.js';
import type { CircuitState } from '../state.js';

/** Why a route left a target for the next one. */
export type FailoverReason =
  /** The target's breaker did not admit the call (open, forced open, or no probe slot free). */
  | 'rejected'
  /** The target was called and the call failed (classified a failure). */
  | 'failure'
  /** The target was called and ran past its breaker's deadline (a `CallTimeoutError`). */
  | 'timeout';

/** A route moved a call on from one target (`from`) to the next (`to`; `null`: none left). */
export interface FailoverEvent {
  /** The route's name. */
  readonly route: string;
  /** The breaker name of the target left. */
  readonly from: string;
  /** The breaker name of the next target, or `null` when none is left. */
  readonly to: string | null;
  readonly reason: FailoverReason;
  /** The state of the target's breaker when the route left it. */
  readonly state: CircuitState;
}

/** Why a route left a target that failed: its breaker's deadline, or another failure. */
export function failureReason(error: unknown): FailoverReason {
  return error instanceof CallTimeoutError ? 'timeout' : 'failure';
}

type FailoverListener = (event: FailoverEvent) => void;

// Process-wide, for the metrics exporters: they count every route's failovers, made before
// or after they started, without the route knowing of them.
const listeners = new Set<FailoverListener>();

/** Hears every route's failovers until the returned function is called. */
export function followFailovers(listener: FailoverListener): () => void {
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
  };
}

/** Whether anyone in the process follows failovers. */
export function failoversFollowed(): boolean {
  return listeners.size > 0;
}

/** Tells every follower of a failover; a follower's bug reaches no call. */
export function failedOver(event: FailoverEvent): void {
  for (const listener of listeners) {
    try {
      listener(event);
    } catch (error) {
      process.emitWarning(`statebreaker: a failover follower threw: ${String(error)}`);
    }
  }
}
