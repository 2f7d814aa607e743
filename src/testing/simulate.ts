// Replaying a path's plans through the pure statechart, to learn what each step must show.
import type { BreakerConfig } from '../machine.js';
import { breakerMachine } from '../machine.js';
import { topLevelState } from '../state.js';
import {
  AFTER_PREFIX,
  type BreakerSnapshot,
  IDLE_TICK,
  initialModel,
  liveProbes,
  type ModelState,
  planKey,
  type StepPlan,
  serializeState,
  stepModel,
} from './model.js';
import type { BreakerStep } from './steps.js';

/**
 * How long an `advance` without a delayed event moves the clock: past every timer a state
 * could hold and past the whole window, so that the window empties.
 */
export function idleTick(config: BreakerConfig): number {
  const window = config.window === undefined ? 0 : config.window * 1.1 + 1;
  return Math.ceil(Math.max(config.resetTimeout, config.probeLease, window));
}

function delayMs(fires: string | undefined, snapshot: BreakerSnapshot, now: number): number {
  const { config } = snapshot.context;
  if (fires === undefined) return idleTick(config);
  // `xstate.after.<delay>.<machine>.<state>`: ask the machine's own delay how long is left.
  const name = fires.slice(AFTER_PREFIX.length).split('.')[0] as string;
  const delays = breakerMachine.implementations.delays as Record<
    string,
    (args: { context: unknown; event: unknown }) => number
  >;
  const delay = delays[name];
  if (delay === undefined) throw new Error(`no delay named ${name} in breakerMachine`);
  return delay({ context: snapshot.context, event: { type: IDLE_TICK, at: now } });
}

function labelOf(plan: StepPlan, ms: number | undefined): string {
  if (plan.kind === 'advance') return `advance ${ms} ms`;
  const probe = plan.probe === undefined ? '' : ` ${plan.probe}`;
  const instance = plan.instance === undefined ? '' : `@${plan.instance}`;
  const slow = plan.kind === 'slowSucceed' || plan.kind === 'slowFail' ? ` ${ms} ms` : '';
  const retry = plan.retryAfterMs === undefined ? '' : ` (retry-after ${plan.retryAfterMs} ms)`;
  return `${plan.kind}${instance}${probe}${slow}${retry}${plan.rejects ? ' (rejected)' : ''}`;
}

export interface Simulation {
  readonly steps: BreakerStep[];
  /** `vertexKey|planKey` of every edge taken. */
  readonly edges: string[];
  readonly vertices: string[];
  readonly end: ModelState;
}

/** Runs plans through the model with timestamps, to fill in what each step expects. */
export function simulate(config: BreakerConfig, plans: readonly StepPlan[]): Simulation {
  let state = initialModel(config);
  let now = 0;
  const steps: BreakerStep[] = [];
  const edges: string[] = [];
  const vertices = [serializeState(state)];
  for (const plan of plans) {
    edges.push(`${serializeState(state)}|${planKey(plan)}`);
    let ms: number | undefined;
    if (plan.kind === 'advance') ms = delayMs(plan.fires, state.machine, now);
    // A slow call takes exactly slowCallDuration: the edge case the rule counts as slow.
    if (plan.kind === 'slowSucceed' || plan.kind === 'slowFail') ms = config.slowCallDuration;
    now += ms ?? 0;
    state = stepModel(state, plan, now);
    vertices.push(serializeState(state));
    const snapshot = state.machine;
    const { failures, successes } = snapshot.context;
    steps.push({
      kind: plan.kind,
      ...(plan.probe === undefined ? {} : { probe: plan.probe }),
      ...(ms === undefined ? {} : { ms }),
      ...(plan.rejects === undefined ? {} : { rejects: plan.rejects }),
      ...(plan.instance === undefined ? {} : { instance: plan.instance }),
      ...(plan.retryAfterMs === undefined ? {} : { retryAfterMs: plan.retryAfterMs }),
      expect: topLevelState(snapshot.value),
      counters: { failures, successes, probes: liveProbes(snapshot) },
      label: labelOf(plan, ms),
    });
  }
  return { steps, edges, vertices, end: state };
}
