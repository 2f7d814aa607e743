import { type Actor, createActor, type Snapshot, type StateValue } from 'xstate';
import type { Clock } from '../clock.js';
import {
  type BreakerConfig,
  type BreakerContext,
  type BreakerEvent,
  breakerMachine,
  SCHEMA_VERSION,
} from '../machine.js';
import type { InspectOption } from '../options.js';
import type { PersistedBreakerSnapshot } from '../record/shape.js';
import { type CircuitState, topLevelState } from '../state.js';
import { InspectionSession } from './inspection.js';
import { type Due, Scheduler } from './scheduler.js';

type BreakerActor = Actor<typeof breakerMachine>;
type BreakerSnapshot = ReturnType<BreakerActor['getSnapshot']>;
type BreakerScope = Parameters<typeof breakerMachine.transition>[2];

/** An action the machine hands back from a pure transition (a delayed raise, a cancel). */
interface Executable {
  readonly type: string;
  readonly params?: unknown;
}

// One inert actor scope for every pure transition of the process: XState's `transition()`
// builds a throwaway actor per call (several times the cost of the step itself). The machine
// has no children and only `assign` actions, so the scope's own state is never touched; the
// executor collects the delayed raises and cancels the step asks for.
const collected: Executable[] = [];
let scope: BreakerScope | undefined;
function inertScope(config: BreakerConfig): BreakerScope {
  if (scope !== undefined) return scope;
  const self = createActor(breakerMachine, { input: config });
  scope = {
    self,
    defer: () => {},
    id: '',
    logger: () => {},
    sessionId: '',
    stopChild: () => {},
    system: self.system,
    emit: () => {},
    actionExecutor: (action: Executable) => {
      collected.push(action);
    },
  } as unknown as BreakerScope;
  return scope;
}

// The mirror actor of an inspected breaker is restored from the records the breaker holds; it
// runs no timer of its own.
const NO_TIMERS = {
  setTimeout: () => 0,
  clearTimeout: () => {},
};

// Shared by every persisted snapshot whose history and children are empty (all of ours: the
// machine has no history state and no child actor); nothing writes into them.
const NO_HISTORY = Object.freeze({});
const NO_CHILDREN = Object.freeze({});

// What `breakerMachine.getPersistedSnapshot` gives, without its copies: the machine has no child
// actors, no history state and no actor in its context, so the persisted snapshot is the resolved
// one's status, value and context (XState's own copy, with a rest pattern and a walk of the
// context, was a tenth of the cost of a trip). One shape for every breaker's snapshot, without
// the `output`/`error` keys XState adds.
function persist(snapshot: BreakerSnapshot): PersistedBreakerSnapshot {
  if (!isEmpty(snapshot.children) || !isEmpty(snapshot.historyValue)) return persistAny(snapshot);
  return {
    status: snapshot.status,
    value: snapshot.value,
    historyValue: NO_HISTORY,
    context: snapshot.context,
    children: NO_CHILDREN,
    schema: SCHEMA_VERSION,
  } as PersistedBreakerSnapshot;
}

// Should the machine ever hold a child or a history: XState's own persisted snapshot.
function persistAny(snapshot: BreakerSnapshot): PersistedBreakerSnapshot {
  const { status, value, historyValue, context, children } = breakerMachine.getPersistedSnapshot(
    snapshot,
  ) as unknown as PersistedBreakerSnapshot & { historyValue: object; children: object };
  return {
    status,
    value,
    historyValue: isEmpty(historyValue) ? NO_HISTORY : historyValue,
    context,
    children: isEmpty(children) ? NO_CHILDREN : children,
    schema: SCHEMA_VERSION,
  } as PersistedBreakerSnapshot;
}

// One resolved snapshot per state of the machine, restored once: a persisted snapshot of the
// same state resolves to a copy of it with its own context (what `restoreSnapshot` builds anew
// each time: the state nodes, the state value, the tags). XState never changes a snapshot's
// parts in place; it copies them first.
const resolvedStates = new Map<string, BreakerSnapshot>();

function stateKey(value: StateValue): string | undefined {
  if (typeof value === 'string') return value;
  let key: string | undefined;
  for (const parent in value) {
    const child = value[parent];
    if (key !== undefined || typeof child !== 'string') return undefined;
    key = `${parent}.${child}`;
  }
  return key;
}

function resolve(persisted: PersistedBreakerSnapshot, scope: BreakerScope): BreakerSnapshot {
  const key = persisted.status === 'active' ? stateKey(persisted.value) : undefined;
  const known = key === undefined ? undefined : resolvedStates.get(key);
  if (known !== undefined) return { ...known, context: persisted.context };
  const restored = breakerMachine.restoreSnapshot(
    persisted as unknown as Snapshot<unknown>,
    scope,
  ) as BreakerSnapshot;
  if (key !== undefined && isEmpty(restored.children) && isEmpty(restored.historyValue)) {
    // Restored from the state alone, so that it keeps none of this record's other keys.
    const { status, value, context } = persisted;
    const plain = { status, value, context, historyValue: {}, children: {} };
    resolvedStates.set(
      key,
      breakerMachine.restoreSnapshot(
        plain as unknown as Snapshot<unknown>,
        scope,
      ) as BreakerSnapshot,
    );
  }
  return restored;
}

function isEmpty(object: object): boolean {
  for (const _ in object) return false;
  return true;
}

function countProbes(probes: Record<string, number>): number {
  let n = 0;
  for (const _ in probes) n++;
  return n;
}

/**
 * One instance's copy of the breaker statechart, and the plain fields the hot path reads.
 * Steps are XState's pure transitions of `breakerMachine` (no actor): a breaker keeps the
 * machine's resolved snapshot only while it is likely to take more steps soon (counting
 * failures, half-open), and its persisted snapshot otherwise (or nothing, before its first
 * change). The machine's delayed transitions (`after`) are handed to the process's one
 * {@link Scheduler} with the delay the machine computed; when due, the scheduler delivers the
 * machine's own `xstate.after.*` event. An inspected breaker also runs one mirror actor, restored
 * from every record the breaker holds (its own once confirmed, another instance's once adopted),
 * which the inspector shows as the breaker: unconfirmed local steps do not show.
 */
export abstract class LocalStatechart implements Due {
  /** Top-level state of the local statechart. */
  state: CircuitState = 'closed';
  failures = 0;
  /** Instances in the failure streak under a quorum (a success must end it). */
  streak = 0;
  generation = 0;
  openedAt: number | null = null;
  probeCount = 0;
  /** @internal The scheduler's: when the pending delayed transition falls due. */
  dueAt = 0;
  /** @internal The scheduler's: this breaker's slot in its heap (-1: none). */
  dueSlot = -1;
  /** This instance's configuration; it governs local decisions even if another's differs. */
  readonly config: BreakerConfig;
  /** The breaker's name. */
  readonly name: string;
  protected readonly clock: Clock;
  readonly #inspection: InspectionSession | undefined;
  #mirror: BreakerActor | null = null;
  /** The resolved snapshot, while the breaker keeps it (see the class comment). */
  #live: BreakerSnapshot | null = null;
  /** The persisted snapshot, when not live (`null`: the initial state, not built yet). */
  #snapshot: PersistedBreakerSnapshot | null = null;
  /** The delayed event the scheduler holds for this breaker. */
  #dueEvent: string | null = null;

  constructor(
    name: string,
    config: BreakerConfig,
    clock: Clock,
    inspect: InspectOption | undefined,
  ) {
    this.name = name;
    this.config = config;
    this.clock = clock;
    this.#inspection = inspect === undefined ? undefined : new InspectionSession(inspect);
  }

  /** The statechart's own delayed transition (it fell due); the view is already updated. */
  protected abstract timedChange(): void;

  /** An error thrown by the statechart. */
  protected abstract actorError(error: unknown): void;

  /** The local statechart's context. */
  get context(): BreakerContext {
    return this.#live?.context ?? this.persisted().context;
  }

  /** Whether the local statechart holds a probe lease with this id. */
  holdsProbe(probeId: string): boolean {
    return probeId in this.context.probes;
  }

  /** The local statechart as a persisted snapshot. */
  protected persisted(): PersistedBreakerSnapshot {
    if (this.#live !== null) return persist(this.#live);
    if (this.#snapshot === null) {
      // Before its first change a breaker holds no snapshot; build the initial one on demand.
      this.#snapshot = persist(
        breakerMachine.getInitialSnapshot(inertScope(this.config), this.config),
      );
    }
    return this.#snapshot;
  }

  /** Applies an event; returns whether it changed the statechart. */
  protected apply(event: BreakerEvent): boolean {
    // As an actor would: the machine's delay (computed from the event's own time) counts from
    // the step. A replayed event may be old; its delay still counts from now.
    return this.#step(event, this.clock.now());
  }

  /** Replaces the local statechart with `snapshot` (`null`: the initial state). */
  protected restore(snapshot: PersistedBreakerSnapshot | null): void {
    this.#unschedule();
    this.#live = null;
    this.#snapshot = snapshot;
    const persisted = this.persisted();
    this.#view(persisted.context, persisted.value);
    // A restored snapshot holds no pending delayed event (xstate#5331): RESUME re-enters a
    // timed state, and the machine's delay, computed from the timestamps in context, says
    // when its transition is due. Only the delay is kept: nothing else changed.
    if (this.state === 'open' || (this.state === 'halfOpen' && this.probeCount > 0)) {
      const now = this.clock.now();
      const resumed = this.#transition(this.#resolved(), { type: 'RESUME', at: now });
      if (resumed !== undefined) this.#schedule(now);
      else collected.length = 0;
    }
    if (this.#inspection !== undefined) this.#remirror(snapshot);
  }

  /** The breaker now holds the record with `snapshot` (its own, confirmed): the inspector shows it. */
  protected mirror(snapshot: PersistedBreakerSnapshot): void {
    if (this.#inspection !== undefined) this.#remirror(snapshot);
  }

  /** Whether the breaker keeps its statechart resolved: it is expected to step again soon. */
  protected get live(): boolean {
    return this.#live !== null;
  }

  /**
   * The record about to be written holds the local state: an asleep breaker keeps that
   * snapshot instead of its own copy (an embedded store keeps the very same object).
   */
  protected share(snapshot: PersistedBreakerSnapshot): void {
    if (this.#live === null) this.#snapshot = snapshot;
  }

  /** Drops the resolved snapshot once the breaker is not expected to step again soon. */
  protected sleepIfIdle(): void {
    if (this.#live !== null && !this.#keepsLive()) {
      this.#snapshot = persist(this.#live);
      this.#live = null;
    }
  }

  protected stopStatechart(): void {
    this.#unschedule();
    this.#inspection?.end();
    this.#mirror?.stop();
    this.#mirror = null;
  }

  /** @internal Called by the scheduler: the pending delayed transition is due. */
  fireDue(): void {
    const type = this.#dueEvent;
    this.#dueEvent = null;
    if (type === null) return;
    const event = { type } as unknown as BreakerEvent;
    // A delayed event carries no time: it happens at its deadline, from which the delays of
    // the state it enters count (a late lease expiry opens at the lease's deadline).
    if (this.#step(event, this.dueAt)) this.timedChange();
  }

  #step(event: BreakerEvent, time: number): boolean {
    const before = this.#resolved();
    const after = this.#transition(before, event);
    if (after === undefined || after === before) {
      collected.length = 0;
      return false;
    }
    this.#live = after;
    this.#snapshot = null;
    this.#schedule(time);
    this.#view(after.context, after.value);
    return true;
  }

  #transition(before: BreakerSnapshot, event: BreakerEvent): BreakerSnapshot | undefined {
    collected.length = 0;
    try {
      return breakerMachine.transition(before, event, inertScope(this.config));
    } catch (error) {
      collected.length = 0;
      this.actorError(error);
      return undefined;
    }
  }

  // The delayed raises and cancels of the step just taken, in order: a cancel forgets the
  // pending delayed event, a raise schedules it at the step's time plus the machine's delay.
  #schedule(time: number): void {
    for (const action of collected) {
      const params = action.params as
        | { sendId?: string; event?: { type: string }; delay?: number }
        | undefined;
      if (action.type === 'xstate.cancel') {
        if (params?.sendId === this.#dueEvent) this.#unschedule();
      } else if (
        action.type === 'xstate.raise' &&
        params?.delay !== undefined &&
        params.event !== undefined
      ) {
        this.#dueEvent = params.event.type;
        Scheduler.of(this.clock).schedule(this, time + params.delay);
      }
    }
    collected.length = 0;
  }

  #unschedule(): void {
    this.#dueEvent = null;
    if (this.dueSlot !== -1) Scheduler.of(this.clock).cancel(this);
  }

  #resolved(): BreakerSnapshot {
    if (this.#live !== null) return this.#live;
    const snapshot = resolve(this.persisted(), inertScope(this.config));
    if (this.#keepsLive()) this.#live = snapshot;
    return snapshot;
  }

  #view(context: BreakerContext, value: StateValue): void {
    this.state = topLevelState(value);
    this.failures = context.failures;
    this.streak = context.streak?.length ?? 0;
    this.generation = context.generation;
    this.openedAt = context.openedAt;
    this.probeCount = countProbes(context.probes);
  }

  // A breaker counting failures or half-open is likely to take more steps soon: restoring its
  // snapshot for each would cost more than the step. An open breaker only waits.
  #keepsLive(): boolean {
    return (
      this.state === 'halfOpen' ||
      (this.state === 'closed' && (this.failures > 0 || this.streak > 0))
    );
  }

  // The inspector's actor: restored from every record the breaker holds, shown as one.
  #remirror(snapshot: PersistedBreakerSnapshot | null): void {
    const observer = this.#inspection?.observer;
    if (observer === undefined) return;
    this.#mirror?.stop();
    // The actor's id names the breaker in the inspector.
    const base = { id: this.name, input: this.config, clock: NO_TIMERS, inspect: observer };
    const mirror =
      snapshot === null
        ? createActor(breakerMachine, base)
        : createActor(breakerMachine, {
            ...base,
            snapshot: snapshot as unknown as Snapshot<unknown>,
          });
    this.#mirror = mirror;
    mirror.start();
  }
}
