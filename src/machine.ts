import { and, assign, or, setup } from 'xstate';

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
interface Timed {
  at: number;
}

/** The outcome of a call admitted under `generation`; `probeId` when it was a probe. */
interface Outcome extends Timed {
  generation: number;
  probeId?: string;
}

/**
 * A counted failure: `instance` names the breaker instance that saw it (for `quorum`);
 * `retryAfterMs`, the upstream's word on how long to stay away, opens the circuit at once.
 */
interface Failure extends Outcome {
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

// The empty streak and the empty set of probe leases, shared by every context that holds one: a
// context is never changed in place (each `assign` makes a new one), and every open or closed
// breaker of a process would otherwise keep an empty array and an empty object of its own.
const NO_STREAK: readonly string[] = Object.freeze([]);
const NO_PROBES: Record<string, number> = Object.freeze({}) as Record<string, number>;

function earliestLease(probes: Record<string, number>): number {
  let earliest = Number.POSITIVE_INFINITY;
  for (const id in probes) {
    const until = probes[id] as number;
    if (until < earliest) earliest = until;
  }
  return earliest;
}

// `xstate.after` events carry no time of their own; they fire at their own deadline, which the
// transition that follows records (openedAt), so that deadline stands in for "now".
function eventTime(event: { type: string }, fallback: number): number {
  return 'at' in event && typeof event.at === 'number' ? event.at : fallback;
}

function isProbeOf(context: BreakerContext, event: BreakerEvent): boolean {
  return (
    'probeId' in event &&
    event.probeId !== undefined &&
    'generation' in event &&
    event.generation === context.generation &&
    event.probeId in context.probes
  );
}

function withoutProbe(probes: Record<string, number>, id: string | undefined) {
  let next: Record<string, number> | undefined;
  for (const key in probes) {
    if (key === id) continue;
    next ??= {};
    next[key] = probes[key] as number;
  }
  return next ?? NO_PROBES;
}

/** Whether `counts` reach the failure-rate rule of `config` (at least `minimumCalls` counted). */
export function failureRateReached(config: BreakerConfig, counts: WindowCounts): boolean {
  const threshold = config.failureRateThreshold;
  return (
    threshold !== undefined &&
    counts.calls >= (config.minimumCalls ?? 1) &&
    counts.failures * 100 >= threshold * counts.calls
  );
}

/** Whether `counts` reach the slow-call rule of `config` (at least `minimumCalls` counted). */
export function slowCallRateReached(config: BreakerConfig, counts: WindowCounts): boolean {
  const threshold = config.slowCallRateThreshold;
  return (
    threshold !== undefined &&
    counts.calls >= (config.minimumCalls ?? 1) &&
    counts.slow * 100 >= threshold * counts.calls
  );
}

/**
 * How long the circuit stays open when it opens for a retry-after of `ms`: the upstream's value,
 * at least `retryAfterFloor` and at most `backoffMax` (10 minutes without backoff). `resetTimeout`
 * plays no part: the upstream said when to come back.
 */
export function retryAfterDuration(config: BreakerConfig, ms: number): number {
  const floor = config.retryAfterFloor ?? RETRY_AFTER_FLOOR;
  const max = Math.max(config.backoffMax ?? RETRY_AFTER_MAX, floor);
  return Math.min(Math.max(ms, floor), max);
}

/** How long the circuit stays open since `openedAt` (the delay `resetTimeout` waits that long). */
export function openDurationOf(context: BreakerContext): number {
  return context.openDuration ?? context.config.resetTimeout;
}

// A reopen without a close in between: the last open duration times the multiplier, bounded.
function reopenDuration(context: BreakerContext): number {
  const { config } = context;
  const multiplier = config.backoffMultiplier;
  if (multiplier === undefined) return config.resetTimeout;
  const grown = openDurationOf(context) * multiplier;
  return Math.min(Math.max(grown, config.resetTimeout), config.backoffMax ?? grown);
}

function instanceOf(event: BreakerEvent): string {
  return event.type === 'FAILURE' ? (event.instance ?? '') : '';
}

// The streak's instances with the event's: a quorum needs no more than `quorum` of them.
function streakWith(context: BreakerContext, event: BreakerEvent): readonly string[] {
  const streak = context.streak ?? NO_STREAK;
  const quorum = context.config.quorum ?? 1;
  const instance = instanceOf(event);
  if (quorum <= 1 || streak.length >= quorum || streak.includes(instance)) return streak;
  return [...streak, instance];
}

// Instances are told apart (and counted) only when a quorum above 1 needs them.
function windowQuorum(config: BreakerConfig, instances: number | undefined): boolean {
  const quorum = config.quorum ?? 1;
  return quorum <= 1 || (instances ?? 0) >= quorum;
}

function windowCounts(event: BreakerEvent): WindowCounts | undefined {
  return event.type === 'WINDOW' ? event : undefined;
}

// Every way into `open` clears the counters and the probes and fences older calls.
function opening(
  context: BreakerContext,
  reason: TransitionReason,
  openedAt: number,
  openDuration: number,
) {
  return {
    failures: 0,
    streak: NO_STREAK,
    successes: 0,
    probes: NO_PROBES,
    openedAt,
    openDuration,
    generation: context.generation + 1,
    reason,
  };
}

// A trip of the closed circuit by one of the counting rules, open for `resetTimeout`.
function tripFor(reason: TransitionReason) {
  return assign<BreakerContext, BreakerEvent, undefined, BreakerEvent, never>(
    ({ context, event }) =>
      opening(
        context,
        reason,
        eventTime(event, context.openedAt ?? 0),
        context.config.resetTimeout,
      ),
  );
}

/**
 * The circuit breaker's statechart: the only place where transitions are decided.
 *
 * States: `closed`, `open`, `halfOpen` (`waiting` for a probe or `probing`), and the sticky
 * operator states `forcedOpen` and `disabled`. Every guard, action and delay is named so that
 * it shows in the Stately editor and inspector.
 */
export const breakerMachine = setup({
  types: {
    context: {} as BreakerContext,
    events: {} as BreakerEvent,
    input: {} as BreakerConfig,
  },
  guards: {
    currentGeneration: ({ context, event }) =>
      'generation' in event && event.generation === context.generation,
    // A streak under a quorum may hold instances with no failure counted (failMax 1 counts
    // none: a lone instance's failure is all the streak holds), and a success ends it too.
    hasFailures: ({ context }) => context.failures > 0 || (context.streak?.length ?? 0) > 0,
    failMaxReached: ({ context }) => context.failures + 1 >= context.config.failMax,
    // With a quorum, a streak that reached failMax from too few instances waits for another
    // instance's failure; counting more of the same instance's would change nothing.
    quorumReached: ({ context, event }) => {
      const quorum = context.config.quorum ?? 1;
      return quorum <= 1 || streakWith(context, event).length >= quorum;
    },
    countsTowardFailMax: ({ context, event }) =>
      context.config.failMax !== Number.POSITIVE_INFINITY &&
      (context.failures + 1 < context.config.failMax ||
        streakWith(context, event).length > (context.streak?.length ?? 0)),
    retryAfterGiven: ({ event }) =>
      event.type === 'FAILURE' && typeof event.retryAfterMs === 'number',
    failureRateReached: ({ context, event }) => {
      const counts = windowCounts(event);
      return counts !== undefined && failureRateReached(context.config, counts);
    },
    failureQuorumReached: ({ context, event }) =>
      windowQuorum(context.config, windowCounts(event)?.failingInstances),
    slowCallRateReached: ({ context, event }) => {
      const counts = windowCounts(event);
      return counts !== undefined && slowCallRateReached(context.config, counts);
    },
    slowQuorumReached: ({ context, event }) =>
      windowQuorum(context.config, windowCounts(event)?.slowInstances),
    windowConfigured: ({ context }) => context.config.window !== undefined,
    probeSlotFree: ({ context, event }) =>
      event.type === 'PROBE_ACQUIRED' &&
      !(event.probeId in context.probes) &&
      Object.keys(context.probes).length < context.config.halfOpenMaxCalls,
    // An early probe counts against halfOpenMaxCalls like any other: it half-opens the circuit
    // with its slot taken, so the fleet's next panic (or probe) finds the slots as they are.
    panicProbeSlotFree: ({ context }) =>
      Object.keys(context.probes).length < context.config.halfOpenMaxCalls,
    leaseExtended: ({ context, event }) =>
      event.type === 'PROBE_RENEWED' &&
      isProbeOf(context, event) &&
      event.leaseUntil > (context.probes[event.probeId] as number),
    isProbe: ({ context, event }) => isProbeOf(context, event),
    isLastProbe: ({ context, event }) =>
      isProbeOf(context, event) && Object.keys(context.probes).length === 1,
    successThresholdReached: ({ context, event }) =>
      isProbeOf(context, event) && context.successes + 1 >= context.config.successThreshold,
  },
  actions: {
    countFailure: assign(({ context, event }) => ({
      failures: Math.min(context.failures + 1, context.config.failMax - 1),
      streak: streakWith(context, event),
    })),
    resetFailures: assign({ failures: 0, streak: NO_STREAK }),
    trip: tripFor('failMaxReached'),
    tripOnFailureRate: tripFor('failureRateReached'),
    tripOnSlowCallRate: tripFor('slowCallRateReached'),
    tripOnRetryAfter: assign(({ context, event }) =>
      opening(
        context,
        'retryAfter',
        eventTime(event, context.openedAt ?? 0),
        retryAfterDuration(
          context.config,
          event.type === 'FAILURE' ? (event.retryAfterMs ?? 0) : 0,
        ),
      ),
    ),
    tripOnProbeFailure: assign(({ context, event }) =>
      opening(
        context,
        'probeFailed',
        eventTime(event, context.openedAt ?? 0),
        reopenDuration(context),
      ),
    ),
    tripOnLeaseExpiry: assign(({ context }) =>
      opening(context, 'probeLeaseExpired', earliestLease(context.probes), reopenDuration(context)),
    ),
    startHalfOpen: assign(({ context }) => ({
      successes: 0,
      probes: NO_PROBES,
      generation: context.generation + 1,
      reason: 'resetTimeoutElapsed' as const,
    })),
    startPanicProbe: assign(({ context, event }) => ({
      successes: 0,
      probes: event.type === 'PANIC_PROBE' ? { [event.probeId]: event.leaseUntil } : NO_PROBES,
      generation: context.generation + 1,
      reason: 'panicProbe' as const,
    })),
    renewLease: assign({
      probes: ({ context, event }) =>
        event.type === 'PROBE_RENEWED'
          ? { ...context.probes, [event.probeId]: event.leaseUntil }
          : context.probes,
    }),
    addProbe: assign({
      probes: ({ context, event }) =>
        event.type === 'PROBE_ACQUIRED'
          ? { ...context.probes, [event.probeId]: event.leaseUntil }
          : context.probes,
    }),
    releaseProbe: assign({
      probes: ({ context, event }) =>
        withoutProbe(context.probes, 'probeId' in event ? event.probeId : undefined),
    }),
    countProbeSuccess: assign(({ context, event }) => ({
      successes: context.successes + 1,
      probes: withoutProbe(context.probes, 'probeId' in event ? event.probeId : undefined),
    })),
    close: assign(({ context }) => ({
      failures: 0,
      streak: NO_STREAK,
      successes: 0,
      probes: NO_PROBES,
      openDuration: context.config.resetTimeout,
      generation: context.generation + 1,
      reason: 'successThresholdReached' as const,
    })),
    forceOpen: assign(({ context }) => ({
      failures: 0,
      streak: NO_STREAK,
      successes: 0,
      probes: NO_PROBES,
      generation: context.generation + 1,
      reason: 'forcedOpen' as const,
    })),
    disable: assign(({ context }) => ({
      failures: 0,
      streak: NO_STREAK,
      successes: 0,
      probes: NO_PROBES,
      generation: context.generation + 1,
      reason: 'disabled' as const,
    })),
    resetCounts: assign(({ context }) => ({
      failures: 0,
      streak: NO_STREAK,
      generation: context.generation + 1,
      reason: 'reset' as const,
    })),
    reset: assign(({ context }) => ({
      failures: 0,
      streak: NO_STREAK,
      successes: 0,
      probes: NO_PROBES,
      openDuration: context.config.resetTimeout,
      generation: context.generation + 1,
      reason: 'reset' as const,
    })),
  },
  delays: {
    resetTimeout: ({ context, event }) => {
      const openedAt = context.openedAt ?? 0;
      return Math.max(0, openedAt + openDurationOf(context) - eventTime(event, openedAt));
    },
    probeLease: ({ context, event }) => {
      const deadline = earliestLease(context.probes);
      return Math.max(0, deadline - eventTime(event, deadline));
    },
  },
}).createMachine({
  id: MACHINE_ID,
  initial: 'closed',
  context: ({ input }) => ({
    config: input,
    failures: 0,
    streak: NO_STREAK,
    successes: 0,
    openedAt: null,
    openDuration: input.resetTimeout,
    probes: NO_PROBES,
    generation: 0,
    reason: 'init',
  }),
  states: {
    closed: {
      on: {
        FAILURE: [
          {
            guard: and(['currentGeneration', 'retryAfterGiven']),
            target: 'open',
            actions: 'tripOnRetryAfter',
          },
          {
            guard: and(['currentGeneration', 'failMaxReached', 'quorumReached']),
            target: 'open',
            actions: 'trip',
          },
          { guard: and(['currentGeneration', 'countsTowardFailMax']), actions: 'countFailure' },
        ],
        // The fleet's counts over the window, gathered outside the statechart.
        WINDOW: [
          {
            guard: and(['currentGeneration', 'failureRateReached', 'failureQuorumReached']),
            target: 'open',
            actions: 'tripOnFailureRate',
          },
          {
            guard: and(['currentGeneration', 'slowCallRateReached', 'slowQuorumReached']),
            target: 'open',
            actions: 'tripOnSlowCallRate',
          },
        ],
        SUCCESS: { guard: and(['currentGeneration', 'hasFailures']), actions: 'resetFailures' },
        // A reset starts a new generation: results of calls admitted before it land nowhere
        // (neither in the streak nor in the window, which counts one generation's calls).
        RESET: { guard: or(['windowConfigured', 'hasFailures']), actions: 'resetCounts' },
        FORCE_OPEN: { target: 'forcedOpen', actions: 'forceOpen' },
        DISABLE: { target: 'disabled', actions: 'disable' },
      },
    },
    open: {
      after: { resetTimeout: { target: 'halfOpen', actions: 'startHalfOpen' } },
      on: {
        // Restoring a snapshot re-arms no timer (xstate#5331): re-entering computes the
        // remaining delay from openedAt.
        RESUME: { target: 'open', reenter: true },
        PANIC_PROBE: {
          guard: and(['currentGeneration', 'panicProbeSlotFree']),
          target: '#breaker.halfOpen.probing',
          actions: 'startPanicProbe',
        },
        RESET: { target: 'closed', actions: 'reset' },
        FORCE_OPEN: { target: 'forcedOpen', actions: 'forceOpen' },
        DISABLE: { target: 'disabled', actions: 'disable' },
      },
    },
    halfOpen: {
      initial: 'waiting',
      on: {
        RESET: { target: 'closed', actions: 'reset' },
        FORCE_OPEN: { target: 'forcedOpen', actions: 'forceOpen' },
        DISABLE: { target: 'disabled', actions: 'disable' },
      },
      states: {
        waiting: {
          on: {
            PROBE_ACQUIRED: { guard: 'probeSlotFree', target: 'probing', actions: 'addProbe' },
          },
        },
        probing: {
          after: {
            probeLease: { target: '#breaker.open', actions: 'tripOnLeaseExpiry' },
          },
          on: {
            PROBE_ACQUIRED: {
              guard: 'probeSlotFree',
              target: 'probing',
              reenter: true,
              actions: 'addProbe',
            },
            SUCCESS: [
              { guard: 'successThresholdReached', target: '#breaker.closed', actions: 'close' },
              { guard: 'isLastProbe', target: 'waiting', actions: 'countProbeSuccess' },
              {
                guard: 'isProbe',
                target: 'probing',
                reenter: true,
                actions: 'countProbeSuccess',
              },
            ],
            FAILURE: [
              {
                guard: and(['isProbe', 'retryAfterGiven']),
                target: '#breaker.open',
                actions: 'tripOnRetryAfter',
              },
              { guard: 'isProbe', target: '#breaker.open', actions: 'tripOnProbeFailure' },
            ],
            IGNORED: [
              { guard: 'isLastProbe', target: 'waiting', actions: 'releaseProbe' },
              { guard: 'isProbe', target: 'probing', reenter: true, actions: 'releaseProbe' },
            ],
            PROBE_RENEWED: {
              guard: 'leaseExtended',
              target: 'probing',
              reenter: true,
              actions: 'renewLease',
            },
            RESUME: { target: 'probing', reenter: true },
          },
        },
      },
    },
    forcedOpen: {
      on: {
        RESET: { target: 'closed', actions: 'reset' },
        DISABLE: { target: 'disabled', actions: 'disable' },
      },
    },
    disabled: {
      on: {
        RESET: { target: 'closed', actions: 'reset' },
        FORCE_OPEN: { target: 'forcedOpen', actions: 'forceOpen' },
      },
    },
  },
});

/** The statechart's type, for tools that take it as a parameter. */
export type BreakerMachine = typeof breakerMachine;
