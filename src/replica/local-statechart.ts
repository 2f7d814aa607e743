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

type BreakerActor = Actor<typeof breakerMachine>;
type BreakerSnapshot = ReturnType<BreakerActor['getSnapshot']>;

function persist(actor: BreakerActor): PersistedBreakerSnapshot {
  const snapshot = actor.getPersistedSnapshot() as unknown as PersistedBreakerSnapshot;
  return { ...snapshot, schema: SCHEMA_VERSION };
}

function countProbes(probes: Record<string, number>): number {
  let n = 0;
  for (const _ in probes) n++;
  return n;
}

/**
 * One instance's running copy of the breaker statechart, and the plain fields the hot path
 * reads. The XState actor exists only while it has work: only `open` and `halfOpen.probing`
 * run timers, so an idle breaker keeps just its persisted snapshot (or nothing, before its
 * first change) and the actor is rebuilt from it on the next event.
 */
export abstract class LocalStatechart {
  /** Top-level state of the local statechart. */
  state: CircuitState = 'closed';
  failures = 0;
  /** Instances in the failure streak under a quorum (a success must end it). */
  streak = 0;
  generation = 0;
  openedAt: number | null = null;
  probeCount = 0;
  /** This instance's configuration; it governs local decisions even if another's differs. */
  readonly config: BreakerConfig;
  /** The breaker's name. */
  readonly name: string;
  protected readonly clock: Clock;
  readonly #inspection: InspectionSession | undefined;
  #actor: BreakerActor | null = null;
  #seen: BreakerSnapshot | null = null;
  #snapshot: PersistedBreakerSnapshot | null = null;
  #applying = false;

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

  /** The statechart's own delayed transition (a timer fired); the view is already updated. */
  protected abstract timedChange(): void;

  /** An error thrown inside the actor. */
  protected abstract actorError(error: unknown): void;

  /** The local statechart's context. */
  get context(): BreakerContext {
    return this.#actor?.getSnapshot().context ?? this.persisted().context;
  }

  /** Whether the local statechart holds a probe lease with this id. */
  holdsProbe(probeId: string): boolean {
    return probeId in this.context.probes;
  }

  /** The local statechart as a persisted snapshot. */
  protected persisted(): PersistedBreakerSnapshot {
    if (this.#actor !== null) return persist(this.#actor);
    if (this.#snapshot === null) {
      // Before its first change a breaker holds no snapshot; build the initial one on demand.
      this.#snapshot = persist(createActor(breakerMachine, { input: this.config }));
    }
    return this.#snapshot;
  }

  /** Applies an event; returns whether it changed the statechart. */
  protected apply(event: BreakerEvent): boolean {
    const actor = this.#ensureActor();
    const before = actor.getSnapshot();
    this.#applying = true;
    try {
      actor.send(event);
    } finally {
      this.#applying = false;
    }
    const after = actor.getSnapshot();
    if (after === before) return false;
    this.#seen = after;
    this.#view(after.context, after.value);
    return true;
  }

  /** Replaces the local statechart with `snapshot` (`null`: the initial state). */
  protected restore(snapshot: PersistedBreakerSnapshot | null): void {
    this.#stopActor();
    this.#snapshot = snapshot;
    const persisted = this.persisted();
    this.#view(persisted.context, persisted.value);
    if (this.#needsActor()) this.#ensureActor();
  }

  /** Stops the actor once nothing needs it; the snapshot stays. */
  protected sleepIfIdle(): void {
    if (this.#actor !== null && !this.#needsActor()) this.#stopActor();
  }

  protected stopStatechart(): void {
    this.#inspection?.end();
    this.#stopActor();
  }

  #view(context: BreakerContext, value: StateValue): void {
    this.state = topLevelState(value);
    this.failures = context.failures;
    this.streak = context.streak?.length ?? 0;
    this.generation = context.generation;
    this.openedAt = context.openedAt;
    this.probeCount = countProbes(context.probes);
  }

  // Only open and probing run timers; other states need no actor between events, unless an
  // inspector watches it.
  #needsActor(): boolean {
    return (
      this.#inspection !== undefined ||
      this.state === 'open' ||
      (this.state === 'halfOpen' && this.probeCount > 0) ||
      // A breaker counting failures is likely to see more events soon: keep its actor until
      // a success resets the count, rather than rebuild it for every failure.
      (this.state === 'closed' && (this.failures > 0 || this.streak > 0))
    );
  }

  #ensureActor(): BreakerActor {
    if (this.#actor !== null) return this.#actor;
    // The actor's id names the breaker in the inspector.
    const base = {
      id: this.name,
      input: this.config,
      clock: this.clock,
      inspect: this.#inspection?.observer,
    };
    const actor =
      this.#snapshot === null
        ? createActor(breakerMachine, base)
        : createActor(breakerMachine, {
            ...base,
            snapshot: this.#snapshot as unknown as Snapshot<unknown>,
          });
    this.#actor = actor;
    this.#applying = true;
    try {
      actor.start();
      // A restored snapshot re-arms no timer (xstate#5331); RESUME re-enters timed states.
      if (this.#snapshot !== null) actor.send({ type: 'RESUME', at: this.clock.now() });
    } finally {
      this.#applying = false;
    }
    this.#seen = actor.getSnapshot();
    actor.subscribe({
      next: (snapshot) => {
        // Changes outside apply() are the machine's own delayed transitions.
        if (this.#applying || snapshot === this.#seen || this.#actor !== actor) return;
        const from = this.state;
        this.#seen = snapshot;
        this.#view(snapshot.context, snapshot.value);
        // A lease timer can fire late (busy loop, suspended process, jumping clock), and the
        // delay the new open state arms counts from the lease deadline it records as openedAt
        // only when on time: RESUME re-arms it from now, as a rehydrating instance would.
        // Sent from inside the actor's update, it is queued and handled right after.
        if (from !== 'open' && this.state === 'open') {
          actor.send({ type: 'RESUME', at: this.clock.now() });
        }
        this.timedChange();
      },
      error: (error) => this.actorError(error),
    });
    return actor;
  }

  #stopActor(): void {
    const actor = this.#actor;
    if (actor === null) return;
    this.#snapshot = persist(actor);
    this.#actor = null;
    this.#seen = null;
    actor.stop();
  }
}
