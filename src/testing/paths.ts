// Paths: a path to every vertex, then each of the vertex's edges taken at its end.
import type { AdjacencyValue } from '@xstate/graph';
import type { ActorLogic, Snapshot } from 'xstate';
import type { BreakerConfig } from '../machine.js';
import { type BreakerOptions, configOptions, resolveOptions } from '../options.js';
import { TestModel } from './graph.js';
import {
  type GraphEvent,
  initialModel,
  type ModelOptions,
  type ModelState,
  planKey,
  plansFor,
  type StepPlan,
  serializeState,
  stepModel,
} from './model.js';
import { simulate } from './simulate.js';
import { type BreakerPath, type BreakerPaths, type BreakerStep, PATH_CONFIG } from './steps.js';

type GraphState = ModelState & Snapshot<undefined>;

/**
 * The configuration {@link getBreakerPaths} generates for: the statechart's thresholds, and the
 * breaker's `timeout`, which the statechart sees only through the probe lease it sets.
 */
export type PathConfig = Partial<BreakerConfig> & Pick<BreakerOptions, 'timeout' | 'backoff'>;

const STREAM_ONLY =
  "is how the breaker under test times a stream, not what its statechart decides: give it to that breaker; the paths' steps are already outcomes";
// Options of a breaker that decide nothing in the statechart: refused, each with the reason,
// rather than accepted and silently ignored.
const RUNNER_ONLY =
  'is how the breaker under test runs, not what its statechart decides: give it to that breaker';
const NOT_MODELLED: Readonly<Record<string, string>> = {
  classify:
    "the paths' steps are already classified outcomes (fail, ignore, succeed); give your classify to the breaker under test and test it on its own",
  retryAfter:
    'a failure carrying a retry-after is a step: ask for them with getBreakerPaths(config, { retryAfterMs })',
  windowFlush: `${RUNNER_ONLY} (the runner's settle flushes every window after each step)`,
  store: `${RUNNER_ONLY} (createPathBreaker takes a store)`,
  clock: `${RUNNER_ONLY} (createPathBreaker takes the simulated clock)`,
  inspect: RUNNER_ONLY,
  // Unlike `timeout`, they set no probe lease: a stream that stalls is only a failure to the
  // statechart.
  firstChunkTimeout: `${STREAM_ONLY} (a stream that sends nothing in time is a \`fail\` step)`,
  chunkTimeout: `${STREAM_ONLY} (a stream that stalls between chunks is a \`fail\` step)`,
};

function checkModelled(config: object): void {
  for (const key of Object.keys(config)) {
    const reason = NOT_MODELLED[key];
    if (reason !== undefined) {
      throw new TypeError(`getBreakerPaths does not model option ${key}: ${reason}`);
    }
  }
}

function isPrefix(short: readonly string[], long: readonly string[]): boolean {
  return short.length < long.length && short.every((key, i) => key === long[i]);
}

/**
 * Transition paths of `breakerMachine`, generated with `@xstate/graph`, with edge coverage: for
 * every vertex of the graph (state value plus counters) a shortest path to it, extended by each
 * step the vertex offers, no-ops included; paths that are prefixes of others are dropped.
 *
 * Each step says what to do in user terms (a call that succeeds, a probe held and answered
 * later, the clock moved to a deadline, an operator method) and what the breaker must show
 * after it. Run them with {@link runBreakerPath}, or drive your own code with them.
 *
 * With a rate rule (`failureRateThreshold`, `slowCallRateThreshold`) the model also keeps the
 * fleet's window: counted calls in closed (up to `minimumCalls` + 1 of them) reach the statechart
 * as the `WINDOW` event a flush brings, and `slowSucceed` / `slowFail` steps take
 * `slowCallDuration` on the clock. With `quorum` above 1, failures name the instance (the
 * breaker of the fleet) that makes them. Run such paths on breakers that flush their window
 * after every step (the runner's default settle, `breaker.settled()`, does).
 *
 * @param config thresholds to generate for. Without it, {@link PATH_CONFIG} (small, with two
 *   probe slots). A partial one is completed with the breaker's own defaults (`DEFAULTS`; the
 *   probe lease `resetTimeout`, or `timeout` + 1 s), as a breaker built with the same options
 *   would be. `timeout` is taken for that effect alone: the paths have no timed-out calls (a
 *   timed-out call is a `fail` step). Options the statechart does not decide with (`classify`,
 *   `retryAfter`, `windowFlush`, `firstChunkTimeout`, `chunkTimeout`, `store`, `clock`,
 *   `inspect`) are refused with a `TypeError`
 *   that says why. Build the breakers under test with the returned `config`.
 * @param options `retryAfterMs`: also offer failures carrying that retry-after.
 * @throws TypeError or RangeError for an invalid threshold, as the breaker's options do;
 *   Error when the graph and a replay of a path disagree (a bug in this generator).
 */
export function getBreakerPaths(config?: PathConfig, options: ModelOptions = {}): BreakerPaths {
  if (config !== undefined && config !== null && typeof config === 'object') checkModelled(config);
  const given: PathConfig = config ?? PATH_CONFIG;
  const { timeout, backoff, ...thresholds } = given;
  // The breaker's own defaults and validation: a bad threshold gets the same TypeError or
  // RangeError, a missing one the value the breaker under test would have.
  const resolved = resolveOptions({
    ...configOptions(thresholds),
    ...(timeout === undefined ? {} : { timeout }),
    ...(backoff === undefined ? {} : { backoff }),
  }).config;
  const { slowCallDuration, window, minimumCalls } = resolved;
  // Slow calls move the clock: the model's window holds them only while they fit in it.
  if (
    slowCallDuration !== undefined &&
    (minimumCalls ?? 0) + 2 >= (window ?? 0) / slowCallDuration
  ) {
    throw new RangeError(
      `getBreakerPaths needs (minimumCalls + 2) slow calls to fit in the window, got slowCallDuration ${slowCallDuration} ms, window ${window} ms`,
    );
  }
  // The graph walks an actor logic: the model, dressed as an always-active snapshot.
  const active = (state: ModelState): GraphState => ({
    ...state,
    status: 'active',
    output: undefined,
    error: undefined,
  });
  const logic = {
    getInitialSnapshot: () => active(initialModel(resolved)),
    transition: (state: GraphState, event: GraphEvent) => active(stepModel(state, event.plan, 0)),
  } as unknown as ActorLogic<GraphState, GraphEvent, BreakerConfig>;
  const model = new TestModel(logic, {
    input: resolved,
    serializeState: (state) => serializeState(state),
    events: (state) =>
      plansFor(state, options).map((plan) => ({ type: planKey(plan), plan }) as GraphEvent),
  });
  const adjacency = model.getAdjacencyMap() as Record<
    string,
    AdjacencyValue<GraphState, GraphEvent>
  >;
  const toVertex = new Map<string, StepPlan[]>();
  for (const path of model.getShortestPaths({ allowDuplicatePaths: true })) {
    // The first step of an @xstate/graph path is `xstate.init`, which carries no plan.
    const plans = path.steps.slice(1).map((step) => step.event.plan);
    toVertex.set(serializeState(path.state), plans);
  }
  const allEdges = new Set<string>();
  const candidates: { plans: StepPlan[]; keys: string[]; to: string }[] = [];
  for (const [vertex, { transitions }] of Object.entries(adjacency)) {
    const head = toVertex.get(vertex);
    if (head === undefined) throw new Error(`no path reaches vertex ${vertex}`);
    for (const { event, state } of Object.values(transitions)) {
      allEdges.add(`${vertex}|${planKey(event.plan)}`);
      const plans = [...head, event.plan];
      candidates.push({
        plans,
        keys: plans.map(planKey),
        to: serializeState(state),
      });
    }
  }
  candidates.sort((a, b) => b.plans.length - a.plans.length);
  const kept: typeof candidates = [];
  for (const candidate of candidates) {
    if (!kept.some((other) => isPrefix(candidate.keys, other.keys))) kept.push(candidate);
  }
  const coveredEdges = new Set<string>();
  const coveredVertices = new Set<string>();
  const paths: BreakerPath[] = [];
  for (const candidate of kept.reverse()) {
    const run = simulate(resolved, candidate.plans);
    const endKey = serializeState(run.end);
    if (endKey !== candidate.to) {
      throw new Error(`replayed path ends in ${endKey}, the graph says ${candidate.to}`);
    }
    for (const edge of run.edges) coveredEdges.add(edge);
    for (const vertex of run.vertices) coveredVertices.add(vertex);
    const [last] = run.steps.slice(-1);
    const before = run.steps.length > 1 ? (run.steps.at(-2) as BreakerStep) : undefined;
    const from = before === undefined ? 'closed' : describeStep(before);
    const to = last === undefined ? 'closed' : describeStep(last);
    paths.push({
      description: `${from} --${last?.label ?? 'nothing'}--> ${to}: ${run.steps.map((s) => s.label).join(', ')}`,
      steps: run.steps,
    });
  }
  for (const edge of coveredEdges) {
    if (!allEdges.has(edge)) throw new Error(`a path takes an edge the graph lacks: ${edge}`);
  }
  return {
    config: resolved,
    instances: resolved.quorum ?? 1,
    paths,
    vertices: Object.keys(adjacency).length,
    edges: allEdges.size,
    coveredVertices: coveredVertices.size,
    coveredEdges: [...allEdges].filter((edge) => coveredEdges.has(edge)).length,
  };
}

function describeStep(step: BreakerStep): string {
  const { failures, successes, probes } = step.counters;
  const parts: string[] = [];
  if (failures > 0) parts.push(`failures ${failures}`);
  if (successes > 0) parts.push(`successes ${successes}`);
  if (probes.length > 0) parts.push(`probes ${probes.join('+')}`);
  return parts.length === 0 ? step.expect : `${step.expect} (${parts.join(', ')})`;
}
