import { and, assign, or, setup } from 'xstate';
import {
  type BreakerConfig,
  type BreakerContext,
  type BreakerEvent,
  MACHINE_ID,
} from './machine-context.js';
import {
  earliestLease,
  eventTime,
  failureRateReached,
  isProbeOf,
  NO_PROBES,
  NO_STREAK,
  openDurationOf,
  opening,
  reopenDuration,
  retryAfterDuration,
  slowCallRateReached,
  streakWith,
  tripFor,
  windowCounts,
  windowQuorum,
  withoutProbe,
} from './machine-rules.js';

// The types and rules live beside the statechart; importers of the machine find them here too.
export * from './machine-context.js';
export {
  failureRateReached,
  openDurationOf,
  retryAfterDuration,
  slowCallRateReached,
} from './machine-rules.js';
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
