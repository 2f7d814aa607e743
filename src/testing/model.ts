// The model: which steps each statechart state offers, and the event each one sends.
import { __unsafe_getAllOwnEventDescriptors, type SnapshotFrom } from 'xstate';
import type { BreakerEvent, breakerMachine } from '../machine.js';
import { topLevelState } from '../state.js';
import type { BreakerStepKind } from './steps.js';

export type BreakerSnapshot = SnapshotFrom<typeof breakerMachine>;

/** A step before the model has run it: what to do, not yet what to expect. */
export interface StepPlan {
  readonly kind: BreakerStepKind;
  readonly probe?: string;
  readonly rejects?: boolean;
  /** For `advance`: the statechart's delayed event it fires, if any. */
  readonly fires?: string;
}

/** The events of the graph: a breaker event (or a delayed or idle tick) tagged with its step. */
export type GraphEvent = Record<string, unknown> & {
  readonly type: string;
  readonly plan: StepPlan;
};

export const IDLE_TICK = 'clock.advance';
export const AFTER_PREFIX = 'xstate.after.';

export function liveProbes(snapshot: BreakerSnapshot): string[] {
  return Object.keys(snapshot.context.probes).sort();
}

// Probe names are the smallest free `pN`: deterministic, and drawn from a pool of
// halfOpenMaxCalls names, so that they can be part of the state key and the graph stays finite.
function freeProbeName(live: readonly string[]): string {
  for (let n = 1; ; n++) if (!live.includes(`p${n}`)) return `p${n}`;
}

function delayedEvents(snapshot: BreakerSnapshot): string[] {
  return __unsafe_getAllOwnEventDescriptors(snapshot).filter((type) =>
    type.startsWith(AFTER_PREFIX),
  );
}

/** The steps a state offers, no-ops included: a no-op the breaker gets wrong is a bug too. */
export function plansFor(snapshot: BreakerSnapshot): StepPlan[] {
  const state = topLevelState(snapshot.value);
  const { generation, config } = snapshot.context;
  const plans: StepPlan[] = [];
  if (state === 'halfOpen') {
    const live = liveProbes(snapshot);
    const full = live.length >= config.halfOpenMaxCalls;
    plans.push({ kind: 'startProbe', probe: freeProbeName(live), rejects: full });
    for (const probe of live) {
      plans.push({ kind: 'succeedProbe', probe });
      plans.push({ kind: 'failProbe', probe });
      plans.push({ kind: 'ignoreProbe', probe });
    }
  } else {
    const rejects = state === 'open' || state === 'forcedOpen';
    plans.push(
      { kind: 'succeed', rejects },
      { kind: 'fail', rejects },
      { kind: 'ignore', rejects },
    );
  }
  // A stale result needs a call admitted under an older generation, which gen 0 cannot have.
  if (generation > 0) {
    plans.push({ kind: 'staleSucceed' }, { kind: 'staleFail' }, { kind: 'staleIgnore' });
  }
  const delayed = delayedEvents(snapshot);
  if (delayed.length === 0) plans.push({ kind: 'advance' });
  for (const fires of delayed) plans.push({ kind: 'advance', fires });
  plans.push({ kind: 'forceOpen' }, { kind: 'disable' }, { kind: 'reset' });
  return plans;
}

/** The event the breaker sends to its statechart for a step, at time `at`. */
export function eventFor(
  plan: StepPlan,
  snapshot: BreakerSnapshot,
  at: number,
): BreakerEvent | { readonly type: string } {
  const { generation, config } = snapshot.context;
  const probeId = plan.probe;
  switch (plan.kind) {
    case 'succeed':
      return { type: 'SUCCESS', generation, at };
    case 'fail':
      return { type: 'FAILURE', generation, at };
    case 'ignore':
      return { type: 'IGNORED', generation, at };
    case 'staleSucceed':
      return { type: 'SUCCESS', generation: generation - 1, at };
    case 'staleFail':
      return { type: 'FAILURE', generation: generation - 1, at };
    case 'staleIgnore':
      return { type: 'IGNORED', generation: generation - 1, at };
    case 'startProbe':
      return {
        type: 'PROBE_ACQUIRED',
        probeId: probeId as string,
        leaseUntil: at + config.probeLease,
        at,
      };
    case 'succeedProbe':
      return { type: 'SUCCESS', generation, probeId, at };
    case 'failProbe':
      return { type: 'FAILURE', generation, probeId, at };
    case 'ignoreProbe':
      return { type: 'IGNORED', generation, probeId, at };
    case 'advance':
      return { type: plan.fires ?? IDLE_TICK };
    case 'forceOpen':
      return { type: 'FORCE_OPEN', at };
    case 'disable':
      return { type: 'DISABLE', at };
    case 'reset':
      return { type: 'RESET', at };
  }
}

/**
 * The state key of the graph: state value and counters, the live probes' names, and whether
 * any call can be stale yet. Timestamps, lease deadlines and the generation are left out: they
 * grow without bound and change no decision the statechart makes.
 */
export function serializeState(snapshot: BreakerSnapshot): string {
  const { failures, successes, generation } = snapshot.context;
  return JSON.stringify({
    value: snapshot.value,
    failures,
    successes,
    probes: liveProbes(snapshot),
    stale: generation > 0,
  });
}

export function planKey(plan: StepPlan): string {
  return JSON.stringify([plan.kind, plan.probe ?? null, plan.fires ?? null]);
}
