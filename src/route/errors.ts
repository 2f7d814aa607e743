import { CallTimeoutError, CircuitBreakerError } from '../errors.js';
import type { CircuitState } from '../state.js';

/** One target's part in a route call that found no answer. */
export interface TargetAttempt {
  /** The target's breaker name. */
  readonly name: string;
  /** The breaker's state when the route left it. */
  readonly state: CircuitState;
  /** When the target's breaker rejected the call: milliseconds until it may half-open. */
  readonly retryAfterMs?: number;
  /** When the target was called: the error it failed with (`CircuitBreakerError` when rejected). */
  readonly error?: unknown;
}

/** Every target of a route rejected the call or failed; `attempts` says how, in order. */
export class AllTargetsFailedError extends Error {
  override readonly name = 'AllTargetsFailedError';
  /** The route's name. */
  readonly route: string;
  /** Per target tried, in order: its name, state, and retry-after or error. */
  readonly attempts: ReadonlyArray<TargetAttempt>;

  constructor(route: string, attempts: ReadonlyArray<TargetAttempt>) {
    const parts = attempts.map((a) =>
      a.retryAfterMs !== undefined
        ? `${a.name} ${a.state} (retry after ${a.retryAfterMs} ms)`
        : a.error instanceof Error && !(a.error instanceof CircuitBreakerError)
          ? `${a.name} failed: ${a.error.message}${a.state === 'closed' ? '' : ` (now ${a.state})`}`
          : `${a.name} ${a.state}`,
    );
    super(`every target of route "${route}" rejected or failed: ${parts.join('; ')}`);
    this.route = route;
    this.attempts = attempts;
  }
}

/**
 * A route call ran past the route's `timeout`: the target at work was aborted (its breaker
 * counts it as ignored: the route's budget, not the upstream, ran out).
 */
export class RouteTimeoutError extends CallTimeoutError {
  override readonly name: string = 'RouteTimeoutError';
  /** The route's name. */
  readonly route: string;

  constructor(route: string, timeoutMs: number) {
    super(route, timeoutMs);
    this.route = route;
    this.message = `route "${route}" found no answer within ${timeoutMs} ms`;
  }
}

/** A target whose breaker rejected the call, as {@link AllTargetsFailedError} lists it. */
export function rejectedTarget(name: string, error: CircuitBreakerError): TargetAttempt {
  return error.retryAfterMs === undefined
    ? { name, state: error.state, error }
    : { name, state: error.state, retryAfterMs: error.retryAfterMs, error };
}
