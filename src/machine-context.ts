// The statechart's types and constants: its configuration, context and events, as records and
// stores read them.

/** Thresholds the statechart decides with; part of every persisted snapshot. */
export interface BreakerConfig {
  /** Consecutive counted failures in `closed` that trip the circuit. */
  readonly failMax: number;
  /** Milliseconds the circuit stays `open` before it half-opens. */
  readonly resetTimeout: number;
  /** Probe successes in `halfOpen` that close the circuit. */
  readonly successThreshold: number;
  /** Probes allowed in flight at once in `halfOpen`, fleet-wide. */
  readonly halfOpenMaxCalls: number;
  /** Milliseconds a probe may run before its lease expires and counts as a failure. */
  readonly probeLease: number;
  /**
   * Milliseconds of outcomes the rate rules look at (set only with a rate rule); the fleet's
   * counts over them arrive as `WINDOW` events.
   */
  readonly window?: number;
  /** Counted calls the window must hold before a rate rule may trip (set with a rate rule). */
  readonly minimumCalls?: number;
  /** Percent of the window's counted calls that failed at which the circuit trips. */
  readonly failureRateThreshold?: number;
  /** Milliseconds from which a counted call is slow (set with `slowCallRateThreshold`). */
  readonly slowCallDuration?: number;
  /** Percent of the window's counted calls that were slow at which the circuit trips. */
  readonly slowCallRateThreshold?: number;
  /** Each reopen without a close in between multiplies the open duration by this (≥ 1). */
  readonly backoffMultiplier?: number;
  /** The longest open duration backoff grows to, and the longest retry-after honoured (ms). */
  readonly backoffMax?: number;
  /**
   * The shortest open period a retry-after gives (ms); unset: {@link RETRY_AFTER_FLOOR}. Keeps a
   * retry-after of 0 from flapping the circuit between open and half-open.
   */
  readonly retryAfterFloor?: number;
  /** Distinct instances whose failures a consecutive or rate trip needs (unset: 1). */
  readonly quorum?: number;
}

/** The fleet's counts over the window, as a `WINDOW` event carries them. */
export interface WindowCounts {
  /** Counted calls (successful or failed; ignored calls count in neither). */
  readonly calls: number;
  readonly failures: number;
  /** Counted calls that took at least `slowCallDuration`. */
  readonly slow: number;
  /** Distinct instances that reported failures in the window (told apart only with a quorum). */
  readonly failingInstances: number;
  /** Distinct instances that reported slow calls in the window (told apart only with a quorum). */
  readonly slowInstances: number;
}

/** The longest retry-after honoured without `backoff` (its `max` otherwise): 10 minutes. */
export const RETRY_AFTER_MAX = 600_000;

/** The shortest open period a retry-after gives unless `retryAfterFloor` says otherwise: 1 s. */
export const RETRY_AFTER_FLOOR = 1_000;

/** Why the circuit last changed its top-level state. */
export type TransitionReason =
  | 'init'
  | 'failMaxReached'
  | 'failureRateReached'
  | 'slowCallRateReached'
  | 'retryAfter'
  | 'resetTimeoutElapsed'
  | 'successThresholdReached'
  | 'probeFailed'
  | 'probeLeaseExpired'
  | 'panicProbe'
  | 'forcedOpen'
  | 'disabled'
  | 'reset';

/** The statechart's extended state: counters, timestamps, probe leases and configuration. */
export interface BreakerContext {
  readonly config: BreakerConfig;
  /**
   * Consecutive counted failures while `closed`, at most `failMax - 1` (a streak that reached
   * `failMax` without a quorum of instances stays there); 0 when `failMax` is `Infinity`.
   */
  failures: number;
  /**
   * Instances that reported a failure in the current streak (at most `quorum` of them; empty
   * when `quorum` is 1). Absent in records written before it existed: read as empty.
   */
  streak?: readonly string[];
  /** Probe successes in the current half-open round. */
  successes: number;
  /** When the circuit last opened, on the breaker's clock (ms); `null` before it ever did. */
  openedAt: number | null;
  /**
   * How long the circuit stays open since `openedAt` (ms): `resetTimeout`, grown by backoff on
   * each reopen, or a retry-after. Absent in records written before it existed: `resetTimeout`.
   */
  openDuration?: number;
  /** Probes in flight in `halfOpen`: probe id → lease deadline on the breaker's clock. */
  probes: Record<string, number>;
  /** Increments on every change of top-level state; fences results of older calls. */
  generation: number;
  /** Why the circuit last changed its top-level state. */
  reason: TransitionReason;
}

/** Time on the breaker's clock (ms) carried by every event the breaker sends. */
export interface Timed {
  at: number;
}

/** The outcome of a call admitted under `generation`; `probeId` when it was a probe. */
export interface Outcome extends Timed {
  generation: number;
  probeId?: string;
}

/**
 * A counted failure: `instance` names the breaker instance that saw it (for `quorum`);
 * `retryAfterMs`, the upstream's word on how long to stay away, opens the circuit at once.
 */
export interface Failure extends Outcome {
  instance?: string;
  retryAfterMs?: number;
}

/** Events the breaker sends to the statechart. */
export type BreakerEvent =
  | ({ type: 'SUCCESS' } & Outcome)
  | ({ type: 'FAILURE' } & Failure)
  | ({ type: 'IGNORED' } & Outcome)
  | ({ type: 'WINDOW'; generation: number } & WindowCounts & Timed)
  | ({ type: 'PROBE_ACQUIRED'; probeId: string; leaseUntil: number } & Timed)
  // A route whose every target is open asks the one whose open period ends soonest for an
  // early probe; `generation` is the open period it judged.
  | ({ type: 'PANIC_PROBE'; probeId: string; leaseUntil: number; generation: number } & Timed)
  // A probe still at work (a stream whose chunks flow) extends its lease.
  | ({ type: 'PROBE_RENEWED'; probeId: string; leaseUntil: number; generation: number } & Timed)
  | ({ type: 'RESUME' } & Timed)
  | ({ type: 'FORCE_OPEN' } & Timed)
  | ({ type: 'DISABLE' } & Timed)
  | ({ type: 'RESET' } & Timed);

/** The machine's id; delayed events are named `xstate.after.<delay>.breaker.<path>`. */
export const MACHINE_ID = 'breaker';

/** Bumped when the persisted shape of the machine changes incompatibly. */
export const SCHEMA_VERSION = 1;
