// The model: which steps each state offers, and what each one does to the statechart and to
// the fleet's window (which lives outside the statechart and reaches it as `WINDOW` events).
import {
  __unsafe_getAllOwnEventDescriptors,
  initialTransition,
  type SnapshotFrom,
  transition,
} from 'xstate';
import { type BreakerConfig, type BreakerEvent, breakerMachine } from '../machine.js';
import { topLevelState } from '../state.js';
import type { BreakerStepKind } from './steps.js';

export type BreakerSnapshot = SnapshotFrom<typeof breakerMachine>;

/** The fleet's window as the model keeps it: counts of the current closed period. */
export interface ModelWindow {
  readonly calls: number;
  readonly failures: number;
  readonly slow: number;
  /** Names of the instances that reported failures / slow calls (with a quorum above 1). */
  readonly failing: readonly string[];
  readonly slowing: readonly string[];
}

/** A state of the model: the statechart's snapshot and, with a rate rule, the window. */
export interface ModelState {
  readonly machine: BreakerSnapshot;
  readonly window: ModelWindow | null;
}

/** What the model offers besides the configuration. */
export interface ModelOptions {
  /** Failures that carry this retry-after (ms) are offered too, in closed and as probes. */
  readonly retryAfterMs?: number;
}

/** A step before the model has run it: what to do, not yet what to expect. */
export interface StepPlan {
  readonly kind: BreakerStepKind;
  readonly probe?: string;
  readonly rejects?: boolean;
  /** For `advance`: the statechart's delayed event it fires, if any. */
  readonly fires?: string;
  /** The instance (breaker of the fleet) that makes the call, when a quorum tells them apart. */
  readonly instance?: number;
  /** For a failure: the upstream's retry-after (ms). */
  readonly retryAfterMs?: number;
}

/** The events of the graph: a step's plan; the model works out the statechart's events. */
export type GraphEvent = Record<string, unknown> & {
  readonly type: string;
  readonly plan: StepPlan;
};

export const IDLE_TICK = 'clock.advance';
export const AFTER_PREFIX = 'xstate.after.';

const EMPTY_WINDOW: ModelWindow = { calls: 0, failures: 0, slow: 0, failing: [], slowing: [] };

export function liveProbes(snapshot: BreakerSnapshot): string[] {
  return Object.keys(snapshot.context.probes).sort();
}

/** The model's first state for `config`. */
export function initialModel(config: BreakerConfig): ModelState {
  const [machine] = initialTransition(breakerMachine, config);
  return { machine, window: config.window === undefined ? null : EMPTY_WINDOW };
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

/** The instance a call is made by, by the name the statechart hears. */
export function instanceName(instance: number | undefined): string | undefined {
  return instance === undefined ? undefined : `i${instance}`;
}

// Counted calls in closed, each from every instance a quorum tells apart.
function countedPlans(config: BreakerConfig, options: ModelOptions): StepPlan[] {
  const quorum = config.quorum ?? 1;
  const instances = quorum > 1 ? Array.from({ length: quorum }, (_, i) => i) : [undefined];
  const kinds: BreakerStepKind[] =
    config.slowCallDuration === undefined
      ? ['succeed', 'fail']
      : ['succeed', 'fail', 'slowSucceed', 'slowFail'];
  const plans: StepPlan[] = [];
  for (const kind of kinds) {
    for (const instance of kind === 'succeed' ? [undefined] : instances) {
      plans.push(
        instance === undefined ? { kind, rejects: false } : { kind, instance, rejects: false },
      );
    }
  }
  if (options.retryAfterMs !== undefined) {
    plans.push({ kind: 'fail', rejects: false, retryAfterMs: options.retryAfterMs });
  }
  return plans;
}

/**
 * The steps a state offers, no-ops included: a no-op the breaker gets wrong is a bug too. With a
 * rate rule, counted calls are offered until the window holds `minimumCalls` + 1 of them, which
 * keeps the graph finite.
 */
export function plansFor(state: ModelState, options: ModelOptions = {}): StepPlan[] {
  const snapshot = state.machine;
  const top = topLevelState(snapshot.value);
  const { generation, config } = snapshot.context;
  const plans: StepPlan[] = [];
  if (top === 'halfOpen') {
    const live = liveProbes(snapshot);
    const full = live.length >= config.halfOpenMaxCalls;
    plans.push({ kind: 'startProbe', probe: freeProbeName(live), rejects: full });
    for (const probe of live) {
      plans.push({ kind: 'succeedProbe', probe });
      plans.push({ kind: 'failProbe', probe });
      if (options.retryAfterMs !== undefined) {
        plans.push({ kind: 'failProbe', probe, retryAfterMs: options.retryAfterMs });
      }
      plans.push({ kind: 'ignoreProbe', probe });
    }
  } else if (top === 'closed') {
    const window = state.window;
    if (window === null || window.calls <= (config.minimumCalls ?? 0)) {
      plans.push(...countedPlans(config, options));
    }
    plans.push({ kind: 'ignore', rejects: false });
  } else {
    const rejects = top === 'open' || top === 'forcedOpen';
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

function failure(plan: StepPlan, generation: number, at: number, probeId?: string): BreakerEvent {
  const instance = instanceName(plan.instance);
  return {
    type: 'FAILURE',
    generation,
    ...(probeId === undefined ? {} : { probeId }),
    ...(instance === undefined ? {} : { instance }),
    ...(plan.retryAfterMs === undefined ? {} : { retryAfterMs: plan.retryAfterMs }),
    at,
  };
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
    case 'slowSucceed':
      return { type: 'SUCCESS', generation, at };
    case 'fail':
    case 'slowFail':
      return failure(plan, generation, at);
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
      return failure(plan, generation, at, probeId);
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

function counted(plan: StepPlan): boolean {
  return (
    plan.kind === 'succeed' ||
    plan.kind === 'fail' ||
    plan.kind === 'slowSucceed' ||
    plan.kind === 'slowFail'
  );
}

function withOutcome(window: ModelWindow, plan: StepPlan): ModelWindow {
  const failed = plan.kind === 'fail' || plan.kind === 'slowFail';
  const slow = plan.kind === 'slowSucceed' || plan.kind === 'slowFail';
  const name = instanceName(plan.instance);
  const add = (names: readonly string[], yes: boolean) =>
    yes && name !== undefined && !names.includes(name) ? [...names, name].sort() : names;
  return {
    calls: window.calls + 1,
    failures: window.failures + (failed ? 1 : 0),
    slow: window.slow + (slow ? 1 : 0),
    failing: add(window.failing, failed),
    slowing: add(window.slowing, slow),
  };
}

/**
 * One step of the model at time `at`: the statechart's event; then, for a call counted in
 * `closed` whose generation still stands, the window's new totals as a `WINDOW` event (what the
 * instance's flush brings back). A new generation, or the clock moved past the window, empties
 * the window.
 */
export function stepModel(state: ModelState, plan: StepPlan, at: number): ModelState {
  const before = state.machine;
  const { generation } = before.context;
  const wasClosed = topLevelState(before.value) === 'closed';
  let [machine] = transition(breakerMachine, before, eventFor(plan, before, at) as BreakerEvent);
  let window = state.window;
  if (window === null) return { machine, window };
  if (wasClosed && counted(plan) && machine.context.generation === generation) {
    window = withOutcome(window, plan);
    [machine] = transition(breakerMachine, machine, {
      type: 'WINDOW',
      generation,
      calls: window.calls,
      failures: window.failures,
      slow: window.slow,
      failingInstances: window.failing.length,
      slowInstances: window.slowing.length,
      at,
    });
  }
  if (machine.context.generation !== generation || plan.kind === 'advance') window = EMPTY_WINDOW;
  return { machine, window };
}

/**
 * The state key of the graph: state value and counters, the live probes' names, the streak's
 * instances, the open duration, the window, and whether any call can be stale yet. Timestamps,
 * lease deadlines and the generation are left out: they grow without bound and change no
 * decision the statechart makes.
 */
export function serializeState(state: ModelState): string {
  const snapshot = state.machine;
  const { failures, successes, generation, streak, openDuration } = snapshot.context;
  return JSON.stringify({
    value: snapshot.value,
    failures,
    successes,
    probes: liveProbes(snapshot),
    streak: [...(streak ?? [])].sort(),
    openDuration,
    window: state.window,
    stale: generation > 0,
  });
}

export function planKey(plan: StepPlan): string {
  return JSON.stringify([
    plan.kind,
    plan.probe ?? null,
    plan.fires ?? null,
    plan.instance ?? null,
    plan.retryAfterMs ?? null,
  ]);
}
