import type { Clock } from './clock.js';
import type { Outcome } from './options.js';

/** The key of a breaker's gate, for the attempts, streams and routes built on it. */
export const gateOf: unique symbol = Symbol('statebreaker.gate');

/** What a breaker's admission hands back: how to record the admitted call's outcome. */
export interface Ticket {
  /** The statechart's generation at admission; outcomes of older generations are fenced. */
  readonly generation: number;
  /** The probe's id when the call was admitted as a half-open (or panic) probe. */
  readonly probeId: string | undefined;
  /** `performance.now()` at admission when the call is timed, else -1. */
  readonly started: number;
  /** The breaker's clock at admission when a slow-call rule needs it, else 0. */
  readonly since: number;
  /** False while the circuit is disabled: nothing is recorded. */
  readonly recorded: boolean;
}

/** Where a route continues after its first target's call failed on the fast path. */
export interface FirstTargetFailed {
  afterFirst<V, R>(
    fn: (value: V, signal: AbortSignal) => R | PromiseLike<R>,
    error: unknown,
    outcome: Outcome,
  ): Promise<R>;
}

/**
 * One breaker's admission and outcome recording, for calls whose outcome their caller reports
 * (attempts, streams, routes). Built by the breaker on first use; the logic that uses it lives
 * beside the attempt and the stream, not in the breaker.
 */
export interface BreakerGate {
  readonly name: string;
  readonly clock: Clock;
  /** The breaker's `timeout`, `firstChunkTimeout` and `chunkTimeout` options. */
  readonly timeout: number | undefined;
  readonly firstChunkTimeout: number | undefined;
  readonly chunkTimeout: number | undefined;
  /** The configuration's `probeLease` (ms). */
  readonly probeLease: number;
  /**
   * Admits a call or rejects with `CircuitBreakerError`. `panicGeneration`: the generation of
   * the open period in which a route asks an early probe of an open circuit.
   */
  admit(panicGeneration: number | undefined): Promise<Ticket>;
  /** Records a success; `since` replaces the ticket's for the slow-call rule. */
  succeed(ticket: Ticket, since: number): void;
  /** Classifies and records an error; `signal` is the caller's (its abort is ignored). */
  fail(ticket: Ticket, error: unknown, signal: AbortSignal | undefined, since: number): Outcome;
  /** Records an ignored outcome (a consumer that stopped early, a caller's abort). */
  ignore(ticket: Ticket, reason: unknown): void;
  /**
   * Whether a call would take the closed-circuit fast path: loaded, not disposed, closed, and
   * no `timeout` (so no signal to make).
   */
  readonly fastPath: boolean;
  /**
   * A route's first target on the fast path: `fn(value, signal)` recorded like `call()`; when
   * it throws, `next.afterFirst(fn, error, outcome)` continues within the same promise, so a
   * route whose first target answers costs what one call does.
   */
  callFirst<V, R>(
    fn: (value: V, signal: AbortSignal) => R | PromiseLike<R>,
    value: V,
    next: FirstTargetFailed,
  ): Promise<R>;
  /** How `error` counts (the breaker's `classify`), recording nothing: for a disabled circuit. */
  outcomeOf(error: unknown, signal: AbortSignal | undefined): Outcome;
  /** Extends a probe's lease to `leaseUntil` on the breaker's clock. */
  renew(ticket: Ticket, leaseUntil: number): void;
}
