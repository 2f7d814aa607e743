// Replaying a path's plans through the pure statechart, to learn what each step must show.
import { initialTransition, transition } from 'xstate';
import { type BreakerConfig, type BreakerEvent, breakerMachine } from '../machine.js';
import { topLevelState } from '../state.js';
import {
  AFTER_PREFIX,
  type BreakerSnapshot,
  eventFor,
  IDLE_TICK,
  liveProbes,
  planKey,
  type StepPlan,
  serializeState,
} from './model.js';
import type { BreakerStep } from './steps.js';

function delayMs(fires: string | undefined, snapshot: BreakerSnapshot, now: number): number {
  const { config } = snapshot.context;
  if (fires === undefined) return Math.max(config.resetTimeout, config.probeLease);
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
  return `${plan.kind}${probe}${plan.rejects ? ' (rejected)' : ''}`;
}

export interface Simulation {
  readonly steps: BreakerStep[];
  /** `vertexKey|planKey` of every edge taken. */
  readonly edges: string[];
  readonly vertices: string[];
  readonly end: BreakerSnapshot;
}

/** Runs plans through the pure statechart with timestamps, to fill in what each step expects. */
export function simulate(config: BreakerConfig, plans: readonly StepPlan[]): Simulation {
  let [snapshot] = initialTransition(breakerMachine, config);
  let now = 0;
  const steps: BreakerStep[] = [];
  const edges: string[] = [];
  const vertices = [serializeState(snapshot)];
  for (const plan of plans) {
    edges.push(`${serializeState(snapshot)}|${planKey(plan)}`);
    let ms: number | undefined;
    if (plan.kind === 'advance') {
      ms = delayMs(plan.fires, snapshot, now);
      now += ms;
    }
    const event = eventFor(plan, snapshot, now) as BreakerEvent;
    [snapshot] = transition(breakerMachine, snapshot, event);
    vertices.push(serializeState(snapshot));
    const { failures, successes } = snapshot.context;
    steps.push({
      kind: plan.kind,
      ...(plan.probe === undefined ? {} : { probe: plan.probe }),
      ...(ms === undefined ? {} : { ms }),
      ...(plan.rejects === undefined ? {} : { rejects: plan.rejects }),
      expect: topLevelState(snapshot.value),
      counters: { failures, successes, probes: liveProbes(snapshot) },
      label: labelOf(plan, ms),
    });
  }
  return { steps, edges, vertices, end: snapshot };
}
