// Generated from src/machine.ts by `npm run models`; do not edit.
// Paste into the Stately editor (Import from code). Guards, actions and delays are named;
// their code is in src/machine.ts. The context is the initial one with the default options.
import { and, createMachine, or } from 'xstate';

export const machine = createMachine({
  id: 'breaker',
  initial: 'closed',
  context: {
    config: {
      failMax: 5,
      resetTimeout: 30000,
      successThreshold: 2,
      halfOpenMaxCalls: 1,
      probeLease: 30000,
    },
    failures: 0,
    streak: [],
    successes: 0,
    openedAt: null,
    openDuration: 30000,
    probes: {},
    generation: 0,
    reason: 'init',
  },
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
          {
            guard: and(['currentGeneration', 'countsTowardFailMax']),
            actions: 'countFailure',
          },
        ],
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
        SUCCESS: {
          guard: and(['currentGeneration', 'hasFailures']),
          actions: 'resetFailures',
        },
        RESET: {
          guard: or(['windowConfigured', 'hasFailures']),
          actions: 'resetCounts',
        },
        FORCE_OPEN: {
          target: 'forcedOpen',
          actions: 'forceOpen',
        },
        DISABLE: {
          target: 'disabled',
          actions: 'disable',
        },
      },
    },
    open: {
      after: {
        resetTimeout: {
          target: 'halfOpen',
          actions: 'startHalfOpen',
        },
      },
      on: {
        RESUME: {
          target: 'open',
          reenter: true,
        },
        PANIC_PROBE: {
          guard: and(['currentGeneration', 'panicProbeSlotFree']),
          target: '#breaker.halfOpen.probing',
          actions: 'startPanicProbe',
        },
        RESET: {
          target: 'closed',
          actions: 'reset',
        },
        FORCE_OPEN: {
          target: 'forcedOpen',
          actions: 'forceOpen',
        },
        DISABLE: {
          target: 'disabled',
          actions: 'disable',
        },
      },
    },
    halfOpen: {
      initial: 'waiting',
      on: {
        RESET: {
          target: 'closed',
          actions: 'reset',
        },
        FORCE_OPEN: {
          target: 'forcedOpen',
          actions: 'forceOpen',
        },
        DISABLE: {
          target: 'disabled',
          actions: 'disable',
        },
      },
      states: {
        waiting: {
          on: {
            PROBE_ACQUIRED: {
              guard: 'probeSlotFree',
              target: 'probing',
              actions: 'addProbe',
            },
          },
        },
        probing: {
          after: {
            probeLease: {
              target: '#breaker.open',
              actions: 'tripOnLeaseExpiry',
            },
          },
          on: {
            PROBE_ACQUIRED: {
              guard: 'probeSlotFree',
              target: 'probing',
              reenter: true,
              actions: 'addProbe',
            },
            SUCCESS: [
              {
                guard: 'successThresholdReached',
                target: '#breaker.closed',
                actions: 'close',
              },
              {
                guard: 'isLastProbe',
                target: 'waiting',
                actions: 'countProbeSuccess',
              },
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
              {
                guard: 'isProbe',
                target: '#breaker.open',
                actions: 'tripOnProbeFailure',
              },
            ],
            IGNORED: [
              {
                guard: 'isLastProbe',
                target: 'waiting',
                actions: 'releaseProbe',
              },
              {
                guard: 'isProbe',
                target: 'probing',
                reenter: true,
                actions: 'releaseProbe',
              },
            ],
            PROBE_RENEWED: {
              guard: 'leaseExtended',
              target: 'probing',
              reenter: true,
              actions: 'renewLease',
            },
            RESUME: {
              target: 'probing',
              reenter: true,
            },
          },
        },
      },
    },
    forcedOpen: {
      on: {
        RESET: {
          target: 'closed',
          actions: 'reset',
        },
        DISABLE: {
          target: 'disabled',
          actions: 'disable',
        },
      },
    },
    disabled: {
      on: {
        RESET: {
          target: 'closed',
          actions: 'reset',
        },
        FORCE_OPEN: {
          target: 'forcedOpen',
          actions: 'forceOpen',
        },
      },
    },
  },
});
