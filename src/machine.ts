import { and, assign, setup } from 'xstate';

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
}

/** Why the circuit last changed its top-level state. */
export type TransitionReason =
  | 'init'
  | 'failMaxReached'
  | 'resetTimeoutElapsed'
  | 'successThresholdReached'
  | 'probeFailed'
  | 'probeLeaseExpired'
  | 'forcedOpen'
  | 'disabled'
  | 'reset';

/** The statechart's extended state: counters, timestamps, probe leases and configuration. */
export interface BreakerContext {
  readonly config: BreakerConfig;
  /** Consecutive counted failures while `closed`. */
  failures: number;
  /** Probe successes in the current half-open round. */
  successes: number;
  /** When the circuit last opened, on the breaker's clock (ms); `null` before it ever did. */
  openedAt: number | null;
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

/** Events the breaker sends to the statechart. */
export type BreakerEvent =
  | ({ type: 'SUCCESS' } & Outcome)
  | ({ type: 'FAILURE' } & Outcome)
  | ({ type: 'IGNORED' } & Outcome)
  | ({ type: 'PROBE_ACQUIRED'; probeId: string; leaseUntil: number } & Timed)
  | ({ type: 'RESUME' } & Timed)
  | ({ type: 'FORCE_OPEN' } & Timed)
  | ({ type: 'DISABLE' } & Timed)
  | ({ type: 'RESET' } & Timed);

/** The machine's id; delayed events are named `xstate.after.<delay>.breaker.<path>`. */
export const MACHINE_ID = 'breaker';

/** Bumped when the persisted shape of the machine changes incompatibly. */
export const SCHEMA_VERSION = 1;

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
  const next: Record<string, number> = {};
  for (const key in probes) if (key !== id) next[key] = probes[key] as number;
  return next;
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
    hasFailures: ({ context }) => context.failures > 0,
    failMaxReached: ({ context }) => context.failures + 1 >= context.config.failMax,
    probeSlotFree: ({ context, event }) =>
      event.type === 'PROBE_ACQUIRED' &&
      !(event.probeId in context.probes) &&
      Object.keys(context.probes).length < context.config.halfOpenMaxCalls,
    isProbe: ({ context, event }) => isProbeOf(context, event),
    isLastProbe: ({ context, event }) =>
      isProbeOf(context, event) && Object.keys(context.probes).length === 1,
    successThresholdReached: ({ context, event }) =>
      isProbeOf(context, event) && context.successes + 1 >= context.config.successThreshold,
  },
  actions: {
    countFailure: assign({ failures: ({ context }) => context.failures + 1 }),
    resetFailures: assign({ failures: 0 }),
    trip: assign(({ context, event }) => ({
      failures: 0,
      successes: 0,
      probes: {},
      openedAt: eventTime(event, context.openedAt ?? 0),
      generation: context.generation + 1,
      reason: 'failMaxReached' as const,
    })),
    tripOnProbeFailure: assign(({ context, event }) => ({
      successes: 0,
      probes: {},
      openedAt: eventTime(event, context.openedAt ?? 0),
      generation: context.generation + 1,
      reason: 'probeFailed' as const,
    })),
    tripOnLeaseExpiry: assign(({ context }) => ({
      successes: 0,
      probes: {},
      openedAt: earliestLease(context.probes),
      generation: context.generation + 1,
      reason: 'probeLeaseExpired' as const,
    })),
    startHalfOpen: assign(({ context }) => ({
      successes: 0,
      probes: {},
      generation: context.generation + 1,
      reason: 'resetTimeoutElapsed' as const,
    })),
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
      successes: 0,
      probes: {},
      generation: context.generation + 1,
      reason: 'successThresholdReached' as const,
    })),
    forceOpen: assign(({ context }) => ({
      failures: 0,
      successes: 0,
      probes: {},
      generation: context.generation + 1,
      reason: 'forcedOpen' as const,
    })),
    disable: assign(({ context }) => ({
      failures: 0,
      successes: 0,
      probes: {},
      generation: context.generation + 1,
      reason: 'disabled' as const,
    })),
    reset: assign(({ context }) => ({
      failures: 0,
      successes: 0,
      probes: {},
      generation: context.generation + 1,
      reason: 'reset' as const,
    })),
  },
  delays: {
    resetTimeout: ({ context, event }) => {
      const openedAt = context.openedAt ?? 0;
      return Math.max(0, openedAt + context.config.resetTimeout - eventTime(event, openedAt));
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
    successes: 0,
    openedAt: null,
    probes: {},
    generation: 0,
    reason: 'init',
  }),
  states: {
    closed: {
      on: {
        FAILURE: [
          {
            guard: and(['currentGeneration', 'failMaxReached']),
            target: 'open',
            actions: 'trip',
          },
          { guard: 'currentGeneration', actions: 'countFailure' },
        ],
        SUCCESS: { guard: and(['currentGeneration', 'hasFailures']), actions: 'resetFailures' },
        RESET: { guard: 'hasFailures', actions: 'resetFailures' },
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
            FAILURE: { guard: 'isProbe', target: '#breaker.open', actions: 'tripOnProbeFailure' },
            IGNORED: [
              { guard: 'isLastProbe', target: 'waiting', actions: 'releaseProbe' },
              { guard: 'isProbe', target: 'probing', reenter: true, actions: 'releaseProbe' },
            ],
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
