// Steps and paths: the plain data users drive their code with.
import type { BreakerConfig } from '../machine.js';
import type { CircuitState } from '../state.js';

/**
 * What a step of a path does, in the terms of code that uses a breaker:
 * - `succeed`, `fail`, `ignore`: a call that resolves, rejects with a counted failure, or
 *   rejects with an error the breaker's `classify` ignores;
 * - `slowSucceed`, `slowFail`: the same, taking `ms` on the clock (at least `slowCallDuration`);
 * - `startProbe`: start a call and hold it unanswered (in half-open: a probe);
 * - `succeedProbe`, `failProbe`, `ignoreProbe`: answer the held call named by `probe`;
 * - `staleSucceed`, `staleFail`, `staleIgnore`: answer a call admitted before the circuit last
 *   changed state (its result must change nothing);
 * - `advance`: move the clock `ms` forward;
 * - `forceOpen`, `disable`, `reset`: the operator methods of the same names.
 */
export type BreakerStepKind =
  | 'succeed'
  | 'fail'
  | 'ignore'
  | 'slowSucceed'
  | 'slowFail'
  | 'startProbe'
  | 'succeedProbe'
  | 'failProbe'
  | 'ignoreProbe'
  | 'staleSucceed'
  | 'staleFail'
  | 'staleIgnore'
  | 'advance'
  | 'forceOpen'
  | 'disable'
  | 'reset';

/** The statechart's counters after a step, as a breaker's `context` shows them. */
export interface BreakerCounters {
  /** Consecutive counted failures while closed. */
  readonly failures: number;
  /** Probe successes in the current half-open round. */
  readonly successes: number;
  /** The held calls that are live probes, by the names the path's steps gave them. */
  readonly probes: readonly string[];
}

/** One step of a path and what the breaker must show after it. */
export interface BreakerStep {
  readonly kind: BreakerStepKind;
  /** The held call this step starts or answers (`startProbe`, `*Probe`). */
  readonly probe?: string;
  /** Milliseconds to move the clock (`advance`), or that the call takes (`slowSucceed`, `slowFail`). */
  readonly ms?: number;
  /**
   * The breaker of the fleet (by index) that must make the call, when the configuration's
   * `quorum` tells instances apart; other steps go to any breaker.
   */
  readonly instance?: number;
  /** For `fail` and `failProbe`: the upstream's retry-after in ms, carried by the error. */
  readonly retryAfterMs?: number;
  /**
   * For `succeed`, `fail`, `ignore` and `startProbe`: whether the breaker rejects the call with
   * `CircuitBreakerError` without running it.
   */
  readonly rejects?: boolean;
  /** The breaker's state after the step. */
  readonly expect: CircuitState;
  /** The statechart's counters after the step. */
  readonly counters: BreakerCounters;
  /** A short label, e.g. `fail`, `startProbe p1`, `advance 30000 ms`. */
  readonly label: string;
}

/** A sequence of steps from a fresh closed breaker that ends by taking one transition. */
export interface BreakerPath {
  /** The transition the path exists for, and the steps that reach and take it. */
  readonly description: string;
  readonly steps: readonly BreakerStep[];
}

/** The paths of {@link getBreakerPaths} and how much of the statechart's graph they cover. */
export interface BreakerPaths {
  /** The configuration the graph was generated for; build the breakers under test with it. */
  readonly config: BreakerConfig;
  /** Breakers a run needs at least: steps name instances up to `quorum` - 1. */
  readonly instances: number;
  readonly paths: readonly BreakerPath[];
  /** Vertices of the graph: state value plus counters, probe names, and "any call stale yet". */
  readonly vertices: number;
  /** Edges of the graph: every step offered in every vertex, no-ops included. */
  readonly edges: number;
  /** Vertices some path passes through. */
  readonly coveredVertices: number;
  /** Edges some path takes. Equal to `edges`: each edge has a path of its own. */
  readonly coveredEdges: number;
}

/**
 * The configuration {@link getBreakerPaths} uses by default: small enough for a fast suite, with
 * two probe slots so that paths run probes side by side, and a lease apart from `resetTimeout`.
 */
export const PATH_CONFIG: BreakerConfig = Object.freeze({
  failMax: 3,
  resetTimeout: 30_000,
  successThreshold: 2,
  halfOpenMaxCalls: 2,
  probeLease: 10_000,
});
