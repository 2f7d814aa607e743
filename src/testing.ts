/**
 * Model-based testing for code that uses a breaker: every transition of `breakerMachine`,
 * generated with `@xstate/graph`, as plain steps a person can drive their own code with, and a
 * runner that drives real breakers through them on a simulated clock.
 *
 * @example
 * import { createPathBreaker, createSimulatedClock, getBreakerPaths, runBreakerPath }
 *   from 'statebreaker/testing';
 * for (const path of getBreakerPaths().paths) {
 *   const clock = createSimulatedClock();
 *   await runBreakerPath(path, { breakers: [createPathBreaker('llm', { clock })], clock });
 * }
 *
 * @packageDocumentation
 */
import { type AdjacencyValue, TestModel } from '@xstate/graph';
import {
  __unsafe_getAllOwnEventDescriptors,
  type ActorLogic,
  initialTransition,
  SimulatedClock,
  type SnapshotFrom,
  transition,
} from 'xstate';
import { CircuitBreaker } from './breaker.js';
import type { Clock } from './clock.js';
import { CircuitBreakerError } from './errors.js';
import { type BreakerConfig, type BreakerEvent, breakerMachine } from './machine.js';
import { type Outcome, resolveOptions } from './options.js';
import { type CircuitState, topLevelState } from './state.js';
import { MemoryStore } from './stores/memory.js';
import type { BreakerStore } from './stores/store.js';

/**
 * XState's simulated clock, a breaker `Clock` whose time moves only with `increment(ms)` or
 * `set(ms)`; give the same one to the breakers and to the runner.
 */
export { SimulatedClock };

/**
 * A simulated clock, XState's `SimulatedClock`, set to `startMs`. It is a breaker `Clock`
 * (`now`, `setTimeout`, `clearTimeout`) that moves only when told: `increment(ms)` runs every
 * timer that falls due, `set(ms)` jumps to a time.
 */
export function createSimulatedClock(startMs = 0): SimulatedClock {
  const clock = new SimulatedClock();
  clock.set(startMs);
  return clock;
}

// ---------------------------------------------------------------------------------------------
// Steps and paths: the plain data users drive their code with.

/**
 * What a step of a path does, in the terms of code that uses a breaker:
 * - `succeed`, `fail`, `ignore`: a call that resolves, rejects with a counted failure, or
 *   rejects with an error the breaker's `classify` ignores;
 * - `startProbe`: start a call and hold it unanswered (in half-open: a probe);
 * - `succeedProbe`, `failProbe`, `ignoreProbe`: answer the held call named by `probe`;
 * - `staleSucceed`, `staleFail`, `staleIgnore`: answer a call admitted before the circuit last
 *   changed state (its result must change nothing);
 * - `advance`: move the clock `ms` forward;
 * - `forceOpen`, `disable`, `reset`: the operator methods of the same names.
 */
export type BreakerStepKind =
  | 'succeed'
  | 'fail'
  | 'ignore'
  | 'startProbe'
  | 'succeedProbe'
  | 'failProbe'
  | 'ignoreProbe'
  | 'staleSucceed'
  | 'staleFail'
  | 'staleIgnore'
  | 'advance'
  | 'forceOpen'
  | 'disable'
  | 'reset';

/** The statechart's counters after a step, as a breaker's `context` shows them. */
export interface BreakerCounters {
  /** Consecutive counted failures while closed. */
  readonly failures: number;
  /** Probe successes in the current half-open round. */
  readonly successes: number;
  /** The held calls that are live probes, by the names the path's steps gave them. */
  readonly probes: readonly string[];
}

/** One step of a path and what the breaker must show after it. */
export interface BreakerStep {
  readonly kind: BreakerStepKind;
  /** The held call this step starts or answers (`startProbe`, `*Probe`). */
  readonly probe?: string;
  /** Milliseconds to move the clock (`advance`). */
  readonly ms?: number;
  /**
   * For `succeed`, `fail`, `ignore` and `startProbe`: whether the breaker rejects the call with
   * `CircuitBreakerError` without running it.
   */
  readonly rejects?: boolean;
  /** The breaker's state after the step. */
  readonly expect: CircuitState;
  /** The statechart's counters after the step. */
  readonly counters: BreakerCounters;
  /** A short label, e.g. `fail`, `startProbe p1`, `advance 30000 ms`. */
  readonly label: string;
}

/** A sequence of steps from a fresh closed breaker that ends by taking one transition. */
export interface BreakerPath {
  /** The transition the path exists for, and the steps that reach and take it. */
  readonly description: string;
  readonly steps: readonly BreakerStep[];
}

/** The paths of {@link getBreakerPaths} and how much of the statechart's graph they cover. */
export interface BreakerPaths {
  /** The configuration the graph was generated for; build the breakers under test with it. */
  readonly config: BreakerConfig;
  readonly paths: readonly BreakerPath[];
  /** Vertices of the graph: state value plus counters, probe names, and "any call stale yet". */
  readonly vertices: number;
  /** Edges of the graph: every step offered in every vertex, no-ops included. */
  readonly edges: number;
  /** Vertices some path passes through. */
  readonly coveredVertices: number;
  /** Edges some path takes. Equal to `edges`: each edge has a path of its own. */
  readonly coveredEdges: number;
}

/**
 * The configuration {@link getBreakerPaths} uses by default: small enough for a fast suite, with
 * two probe slots so that paths run probes side by side, and a lease apart from `resetTimeout`.
 */
export const PATH_CONFIG: BreakerConfig = Object.freeze({
  failMax: 3,
  resetTimeout: 30_000,
  successThreshold: 2,
  halfOpenMaxCalls: 2,
  probeLease: 10_000,
});

// ---------------------------------------------------------------------------------------------
// The model: which steps each statechart state offers, and the event each one sends.

type BreakerSnapshot = SnapshotFrom<typeof breakerMachine>;

/** A step before the model has run it: what to do, not yet what to expect. */
interface StepPlan {
  readonly kind: BreakerStepKind;
  readonly probe?: string;
  readonly rejects?: boolean;
  /** For `advance`: the statechart's delayed event it fires, if any. */
  readonly fires?: string;
}

/** The events of the graph: a breaker event (or a delayed or idle tick) tagged with its step. */
type GraphEvent = { readonly type: string; readonly plan: StepPlan } & Record<string, unknown>;

const IDLE_TICK = 'clock.advance';
const AFTER_PREFIX = 'xstate.after.';

function liveProbes(snapshot: BreakerSnapshot): string[] {
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
function plansFor(snapshot: BreakerSnapshot): StepPlan[] {
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
function eventFor(
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
function serializeState(snapshot: BreakerSnapshot): string {
  const { failures, successes, generation } = snapshot.context;
  return JSON.stringify({
    value: snapshot.value,
    failures,
    successes,
    probes: liveProbes(snapshot),
    stale: generation > 0,
  });
}

function planKey(plan: StepPlan): string {
  return JSON.stringify([plan.kind, plan.probe ?? null, plan.fires ?? null]);
}

// ---------------------------------------------------------------------------------------------
// Paths: a path to every vertex, then each of the vertex's edges taken at its end.

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

interface Simulation {
  readonly steps: BreakerStep[];
  /** `vertexKey|planKey` of every edge taken. */
  readonly edges: string[];
  readonly vertices: string[];
  readonly end: BreakerSnapshot;
}

/** Runs plans through the pure statechart with timestamps, to fill in what each step expects. */
function simulate(config: BreakerConfig, plans: readonly StepPlan[]): Simulation {
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
 * @param config thresholds to generate for; {@link PATH_CONFIG} fills in the rest. Build the
 *   breakers under test with the returned `config`.
 * @throws TypeError or RangeError for an invalid threshold, as the breaker's options do;
 *   Error when the graph and a replay of a path disagree (a bug in this generator).
 */
export function getBreakerPaths(config: Partial<BreakerConfig> = {}): BreakerPaths {
  // The breaker's own validation: a bad threshold gets the same TypeError or RangeError.
  const resolved = resolveOptions({ ...PATH_CONFIG, ...config }).config;
  const logic = breakerMachine as unknown as ActorLogic<BreakerSnapshot, GraphEvent, BreakerConfig>;
  const model = new TestModel(logic, {
    input: resolved,
    serializeState: (snapshot) => serializeState(snapshot),
    events: (snapshot) =>
      plansFor(snapshot).map((plan) => ({ ...eventFor(plan, snapshot, 0), plan }) as GraphEvent),
  });
  const adjacency = model.getAdjacencyMap() as Record<
    string,
    AdjacencyValue<BreakerSnapshot, GraphEvent>
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

// ---------------------------------------------------------------------------------------------
// Breakers for paths, and the runner.

/** The error a `fail` step's call rejects with: a counted failure. */
export class PathFailureError extends Error {
  override readonly name = 'PathFailureError';
}

/** The error an `ignore` step's call rejects with; {@link classifyPathError} ignores it. */
export class PathIgnoredError extends Error {
  override readonly name = 'PathIgnoredError';
}

/**
 * A `classify` option for breakers driven by paths: {@link PathIgnoredError} is ignored, every
 * other error is a failure. Breakers given to {@link runBreakerPath} need it (or a classify
 * that agrees on these two errors).
 */
export function classifyPathError(error: unknown): Outcome {
  return error instanceof PathIgnoredError ? 'ignored' : 'failure';
}

/** Where and how {@link createPathBreaker} builds a breaker. */
export interface PathBreakerOptions {
  /** The simulated clock the path's `advance` steps move. */
  readonly clock: Clock;
  /** The store; a new `MemoryStore` on `clock` by default. Share one to build a fleet. */
  readonly store?: BreakerStore;
  /** The thresholds; use the `config` of the paths being run. Default {@link PATH_CONFIG}. */
  readonly config?: BreakerConfig;
}

/**
 * A breaker ready for {@link runBreakerPath}: the paths' config, the simulated clock, and
 * {@link classifyPathError}. Several built on one store and name form a fleet.
 */
export function createPathBreaker(name: string, options: PathBreakerOptions): CircuitBreaker {
  const { clock, config = PATH_CONFIG } = options;
  return new CircuitBreaker(name, {
    ...config,
    clock,
    store: options.store ?? new MemoryStore({ clock }),
    classify: classifyPathError,
  });
}

/** What {@link runBreakerPath} needs of a breaker; `CircuitBreaker` has it all. */
export type PathBreaker = Pick<
  CircuitBreaker,
  'call' | 'state' | 'context' | 'settled' | 'forceOpen' | 'disable' | 'reset'
>;

/** How a call of the code under test settled. */
export type CallOutcome<T = unknown> =
  | { readonly status: 'fulfilled'; readonly value: T }
  | { readonly status: 'rejected'; readonly reason: unknown };

/**
 * Options of {@link runBreakerPath}.
 * @typeParam B the breakers' type, handed back to `call` as given.
 * @typeParam R what `call` resolves with.
 */
export interface RunPathOptions<B extends PathBreaker = PathBreaker, R = unknown> {
  /**
   * The breakers under test, sharing one statechart (one, or a fleet on one store). Steps are
   * dealt to them round-robin; every one of them must show each step's expectation.
   */
  readonly breakers: readonly B[];
  /** The simulated clock the breakers decide with. */
  readonly clock: { increment(ms: number): void };
  /**
   * Waits for the breakers to converge after a step. Default: every breaker's `settled()`,
   * then one macrotask turn. Called again, up to `maxSettleRounds` times, until every breaker
   * shows the step's expectation.
   */
  readonly settle?: () => Promise<void>;
  /** Bound on settle rounds per check. Default 50. */
  readonly maxSettleRounds?: number;
  /** Also compare the breakers' counters with the step's. Default true. */
  readonly checkCounters?: boolean;
  /**
   * Makes a call through the code under test, which must pass `upstream` to `breaker.call`
   * (directly or through `protect`). `upstream` plays the protected service: it resolves with a
   * string naming the step that answered, rejects with {@link PathFailureError} or
   * {@link PathIgnoredError}, or waits for a later step, as the path says. Default:
   * `breaker.call(upstream)`, whose outcome the runner then checks itself (the upstream's value
   * or error, or `CircuitBreakerError`).
   */
  readonly call?: (breaker: B, upstream: (signal: AbortSignal) => Promise<string>) => Promise<R>;
  /**
   * Called when a call of the code under test settles, with the step that settled it and the
   * step that made it (the same for an immediate call; a `startProbe` step for a held call).
   */
  readonly onCallSettled?: (event: {
    readonly step: BreakerStep;
    readonly startedBy: BreakerStep;
    readonly outcome: CallOutcome<R>;
  }) => void | Promise<void>;
}

interface HeldCall<R> {
  readonly startedBy: BreakerStep;
  readonly resolve: (value: string) => void;
  readonly reject: (error: unknown) => void;
  readonly outcome: Promise<CallOutcome<R>>;
  readonly upstreamCalled: () => boolean;
}

/** Thrown by {@link runBreakerPath} when a breaker disagrees with the path. */
export class BreakerPathError extends Error {
  override readonly name = 'BreakerPathError';
}

function settleOutcome<R>(promise: Promise<R>): Promise<CallOutcome<R>> {
  return promise.then(
    (value): CallOutcome<R> => ({ status: 'fulfilled', value }),
    (reason: unknown): CallOutcome<R> => ({ status: 'rejected', reason }),
  );
}

function showState(breaker: PathBreaker): string {
  const { failures, successes, probes } = breaker.context;
  return `${breaker.state} (failures ${failures}, successes ${successes}, probes ${Object.keys(probes).length})`;
}

function showExpected(step: BreakerStep): string {
  const { failures, successes, probes } = step.counters;
  return `${step.expect} (failures ${failures}, successes ${successes}, probes ${probes.length})`;
}

/**
 * Drives breakers through one path and checks, after every step, that each breaker shows the
 * state (and counters) the statechart says it must.
 *
 * Calls answer at once for `succeed`/`fail`/`ignore`; `startProbe` holds a call until a later
 * step answers it; stale steps answer a call admitted before the circuit last changed state (a
 * probe the circuit abandoned, else one of the calls the runner starts on the fresh breaker
 * before the first step); `advance` moves the clock to 1 ms before the deadline, checks that
 * nothing happened yet, then moves it the last millisecond. Breakers must be fresh (closed, no
 * history), built with the path set's `config` and {@link classifyPathError}: see
 * {@link createPathBreaker}.
 *
 * @throws BreakerPathError naming the path, the step, the breaker and what differed.
 */
export async function runBreakerPath<B extends PathBreaker, R = unknown>(
  path: BreakerPath,
  options: RunPathOptions<B, R>,
): Promise<void> {
  const { breakers, clock, maxSettleRounds = 50, checkCounters = true } = options;
  if (breakers.length === 0) throw new TypeError('runBreakerPath needs at least one breaker');
  const settle =
    options.settle ??
    (async () => {
      await Promise.all(breakers.map((breaker) => breaker.settled()));
      await new Promise((resolve) => setImmediate(resolve));
    });
  const call =
    options.call ??
    // Without a `call`, R is what breaker.call resolves with: the upstream's string.
    ((breaker: B, upstream: () => Promise<string>) => breaker.call(upstream) as Promise<R>);
  const checkOutcome = options.call === undefined;
  const fail = (index: number, message: string): never => {
    const label =
      index < 0 ? 'before the first step' : `step ${index + 1} (${path.steps[index]?.label})`;
    throw new BreakerPathError(`${path.description}\n  at ${label}: ${message}`);
  };

  const matches = (breaker: PathBreaker, step: BreakerStep): boolean => {
    if (breaker.state !== step.expect) return false;
    if (!checkCounters) return true;
    const { failures, successes, probes } = breaker.context;
    return (
      failures === step.counters.failures &&
      successes === step.counters.successes &&
      Object.keys(probes).length === step.counters.probes.length
    );
  };
  const converge = async (index: number, step: BreakerStep): Promise<void> => {
    for (let round = 0; round < maxSettleRounds; round++) {
      await settle();
      if (breakers.every((breaker) => matches(breaker, step))) return;
    }
    const which = breakers.findIndex((breaker) => !matches(breaker, step));
    const breaker = breakers[which] as PathBreaker;
    fail(
      index,
      `breaker #${which} is ${showState(breaker)}, the statechart says ${showExpected(step)}`,
    );
  };
  const until = async (condition: () => boolean): Promise<boolean> => {
    for (let round = 0; round < maxSettleRounds && !condition(); round++) await settle();
    return condition();
  };

  const start = (breaker: B, startedBy: BreakerStep): HeldCall<R> => {
    let resolve!: (value: string) => void;
    let reject!: (error: unknown) => void;
    const answer = new Promise<string>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    let called = false;
    const outcome = settleOutcome(
      call(breaker, () => {
        called = true;
        return answer;
      }),
    );
    return { startedBy, resolve, reject, outcome, upstreamCalled: () => called };
  };
  const answer = async (index: number, held: HeldCall<R>, step: BreakerStep): Promise<void> => {
    const value = `answer from ${step.label}`;
    const fails = step.kind === 'failProbe' || step.kind === 'staleFail';
    const error = fails ? new PathFailureError(step.label) : new PathIgnoredError(step.label);
    const succeeds = step.kind === 'succeedProbe' || step.kind === 'staleSucceed';
    if (succeeds) held.resolve(value);
    else held.reject(error);
    const outcome = await held.outcome;
    if (checkOutcome) {
      const passed = succeeds
        ? outcome.status === 'fulfilled' && outcome.value === value
        : outcome.status === 'rejected' && outcome.reason === error;
      if (!passed) fail(index, `the held call settled with ${describeOutcome(outcome)}`);
    }
    await options.onCallSettled?.({ step, startedBy: held.startedBy, outcome });
  };

  const initial: BreakerStep = {
    kind: 'reset',
    expect: 'closed',
    counters: { failures: 0, successes: 0, probes: [] },
    label: 'start',
  };
  await converge(-1, initial);
  // Calls admitted now, on the fresh breaker, are stale once the circuit first changes state.
  const spares: HeldCall<R>[] = [];
  const staleSteps = path.steps.filter((step) => step.kind.startsWith('stale')).length;
  for (let i = 0; i < staleSteps; i++) {
    spares.push(start(breakers[i % breakers.length] as B, initial));
  }
  if (!(await until(() => spares.every((spare) => spare.upstreamCalled())))) {
    fail(-1, 'a call started on the fresh breaker never reached its upstream');
  }
  const probes = new Map<string, HeldCall<R>>();
  const abandoned: HeldCall<R>[] = [];
  let previous = initial;

  for (const [index, step] of path.steps.entries()) {
    const breaker = breakers[index % breakers.length] as B;
    switch (step.kind) {
      case 'succeed':
      case 'fail':
      case 'ignore': {
        let called = false;
        const value = `answer from ${step.label}`;
        const error =
          step.kind === 'fail'
            ? new PathFailureError(step.label)
            : new PathIgnoredError(step.label);
        const outcome = await settleOutcome(
          call(breaker, async () => {
            called = true;
            if (step.kind === 'succeed') return value;
            throw error;
          }),
        );
        if (called === Boolean(step.rejects)) {
          fail(
            index,
            step.rejects
              ? 'the breaker ran a call it must reject'
              : 'the breaker rejected the call',
          );
        }
        if (checkOutcome) {
          const passed = step.rejects
            ? outcome.status === 'rejected' && outcome.reason instanceof CircuitBreakerError
            : step.kind === 'succeed'
              ? outcome.status === 'fulfilled' && outcome.value === value
              : outcome.status === 'rejected' && outcome.reason === error;
          if (!passed) fail(index, `the call settled with ${describeOutcome(outcome)}`);
        }
        await options.onCallSettled?.({ step, startedBy: step, outcome });
        break;
      }
      case 'startProbe': {
        const held = start(breaker, step);
        let settled = false;
        void held.outcome.then(() => {
          settled = true;
        });
        await until(() => held.upstreamCalled() || settled);
        if (step.rejects) {
          if (held.upstreamCalled()) fail(index, 'the breaker admitted a probe beyond its slots');
          const outcome = await held.outcome;
          if (
            checkOutcome &&
            !(outcome.status === 'rejected' && outcome.reason instanceof CircuitBreakerError)
          ) {
            fail(index, `the rejected probe settled with ${describeOutcome(outcome)}`);
          }
          await options.onCallSettled?.({ step, startedBy: step, outcome });
        } else {
          if (!held.upstreamCalled()) fail(index, 'the breaker did not admit the probe');
          probes.set(step.probe as string, held);
        }
        break;
      }
      case 'succeedProbe':
      case 'failProbe':
      case 'ignoreProbe': {
        const held = probes.get(step.probe as string);
        if (held === undefined) fail(index, `no held call named ${step.probe}`);
        probes.delete(step.probe as string);
        await answer(index, held as HeldCall<R>, step);
        break;
      }
      case 'staleSucceed':
      case 'staleFail':
      case 'staleIgnore': {
        const held = abandoned.pop() ?? spares.pop();
        if (held === undefined) fail(index, 'no call from an older generation is left');
        await answer(index, held as HeldCall<R>, step);
        break;
      }
      case 'advance': {
        const ms = step.ms ?? 0;
        if (ms >= 2) {
          clock.increment(ms - 1);
          // One millisecond early, the statechart's deadline has not come: nothing changes.
          await converge(index, previous);
          clock.increment(1);
        } else {
          clock.increment(ms);
        }
        break;
      }
      case 'forceOpen':
        breaker.forceOpen();
        break;
      case 'disable':
        breaker.disable();
        break;
      case 'reset':
        breaker.reset();
        break;
    }
    await converge(index, step);
    // Held calls the circuit no longer counts as probes are stale from now on.
    for (const [name, held] of probes) {
      if (!step.counters.probes.includes(name)) {
        probes.delete(name);
        abandoned.push(held);
      }
    }
    previous = step;
  }
  // Answering what is left of older generations must change nothing.
  const leftovers = [...abandoned, ...spares];
  for (const held of leftovers) held.resolve('answer from the end of the path');
  await Promise.all(leftovers.map((held) => held.outcome));
  await converge(path.steps.length - 1, previous);
}

function describeOutcome(outcome: CallOutcome): string {
  if (outcome.status === 'fulfilled') return `value ${JSON.stringify(outcome.value)}`;
  const reason = outcome.reason;
  return reason instanceof Error
    ? `${reason.name}: ${reason.message}`
    : `rejection ${String(reason)}`;
}
