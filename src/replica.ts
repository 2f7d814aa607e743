import { randomUUID } from 'node:crypto';
import { type Actor, createActor, type Snapshot, type StateValue } from 'xstate';
import type { Clock } from './clock.js';
import {
  type BreakerConfig,
  type BreakerContext,
  type BreakerEvent,
  breakerMachine,
  SCHEMA_VERSION,
  type TransitionReason,
} from './machine.js';
import type { InspectOption } from './options.js';
import {
  ConfigMismatchError,
  CorruptRecordError,
  configDifferences,
  snapshotProblem,
  withConfig,
} from './snapshot.js';
import { type CircuitState, topLevelState } from './state.js';
import { LostRecordError } from './stores/lost-record.js';
import type {
  BreakerStore,
  CompareAndSetResult,
  PersistedBreakerSnapshot,
  StoredRecord,
} from './stores/store.js';

/** What a replica tells its breaker. */
export interface ReplicaHooks {
  transition(
    from: CircuitState,
    to: CircuitState,
    reason: TransitionReason,
    generation: number,
  ): void;
  storeError(error: unknown): void;
  degraded(error: unknown): void;
  recovered(): void;
}

type BreakerActor = Actor<typeof breakerMachine>;
type BreakerSnapshot = ReturnType<BreakerActor['getSnapshot']>;

// Conflicts in a row before a write waits for the next event or feed message: every conflict
// means another instance made progress, so giving up here loses nothing that is not retried.
const MAX_CONFLICTS = 16;
// Backoff of writes while the store fails.
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

function persist(actor: BreakerActor): PersistedBreakerSnapshot {
  const snapshot = actor.getPersistedSnapshot() as unknown as PersistedBreakerSnapshot;
  return { ...snapshot, schema: SCHEMA_VERSION };
}

// Write ids: unique per process (random) and per write (counter), cheap to make.
const WRITER = randomUUID().slice(0, 13);
let writes = 0;
function nextWriteId(): string {
  return `${WRITER}:${++writes}`;
}

function countProbes(probes: Record<string, number>): number {
  let n = 0;
  for (const _ in probes) n++;
  return n;
}

// One settled promise for every replica that loads synchronously (embedded stores).
const LOADED: Promise<void> = Promise.resolve();

/**
 * One instance's copy of a breaker's shared statechart. Events are applied to a local actor
 * first, so callers never wait for the store; a change is then written with compare-and-set,
 * and on conflict the stored record is adopted and the unconfirmed events are applied again.
 * Records written by other instances arrive through the store's change feed.
 *
 * The actor exists only while it has work: an idle breaker keeps just its persisted snapshot
 * (or nothing, before its first change), and the hot path reads the plain fields below.
 */
export class Replica {
  /** Top-level state of the local statechart. */
  state: CircuitState = 'closed';
  failures = 0;
  generation = 0;
  openedAt: number | null = null;
  probeCount = 0;
  /** This instance's configuration; it governs local decisions even if another's differs. */
  readonly config: BreakerConfig;
  /** Whether the store failed and the breaker decides locally until it answers again. */
  degraded = false;
  /** Whether the stored record has been read once. */
  loaded = false;
  /** Settles when the stored record has been read once. */
  readonly ready: Promise<void>;

  readonly #name: string;
  readonly #store: BreakerStore;
  readonly #clock: Clock;
  readonly #inspect: InspectOption | undefined;
  readonly #hooks: ReplicaHooks;
  readonly #unsubscribe: () => void;
  #actor: BreakerActor | null = null;
  #seen: BreakerSnapshot | null = null;
  #snapshot: PersistedBreakerSnapshot | null = null;
  #version = 0;
  /** The write id of the record the local state builds on; `undefined` for none. */
  #baseId: string | undefined;
  /** A write whose answer never came, and how many pending events it held. */
  #unconfirmed: { readonly writeId: string; readonly included: number } | undefined;
  #high = 0;
  #mismatch = '';
  #retryTimer: unknown;
  #retryDelay = RETRY_MIN_MS;
  #pending: BreakerEvent[] = [];
  #dirty = false;
  #applying = false;
  #writing: Promise<void> | null = null;
  #disposed = false;

  constructor(
    name: string,
    config: BreakerConfig,
    store: BreakerStore,
    clock: Clock,
    inspect: InspectOption | undefined,
    hooks: ReplicaHooks,
  ) {
    this.#name = name;
    this.config = config;
    this.#store = store;
    this.#clock = clock;
    this.#inspect = inspect;
    this.#hooks = hooks;
    this.#unsubscribe = store.subscribe(
      name,
      (record) => this.#onFeed(record),
      (error) => this.#onStoreProblem(error),
    );
    const known = store.peek?.(name);
    if (known !== undefined) {
      if (known !== null) this.#adopt(known);
      this.loaded = true;
      this.ready = LOADED;
    } else {
      this.ready = store.load(name).then(
        (record) => {
          if (record !== null && record.version > this.#version && !this.#writing) {
            this.#adopt(record);
          }
          this.loaded = true;
        },
        (error: unknown) => {
          this.loaded = true;
          this.#storeFailed(error);
        },
      );
    }
    if (this.#inspect !== undefined) this.#ensureActor();
  }

  /** The local statechart's context. */
  get context(): BreakerContext {
    return this.#actor?.getSnapshot().context ?? this.#persisted().context;
  }

  /**
   * Applies an event to the local statechart; returns whether it changed anything. A change
   * is written to the store in the background.
   */
  send(event: BreakerEvent): boolean {
    const actor = this.#ensureActor();
    const before = actor.getSnapshot();
    this.#applying = true;
    try {
      actor.send(event);
    } finally {
      this.#applying = false;
    }
    const after = actor.getSnapshot();
    if (after === before) {
      this.#sleepIfIdle();
      return false;
    }
    this.#pending.push(event);
    this.#changed(after);
    this.#sleepIfIdle();
    return true;
  }

  /** Settles when every local change so far has been written, or the store failed. */
  async settled(): Promise<void> {
    while (this.#writing !== null) await this.#writing;
  }

  /** Whether the local statechart holds a probe lease with this id. */
  holdsProbe(probeId: string): boolean {
    return probeId in this.context.probes;
  }

  /** Stops the actor and the change feed; the replica answers from its last state after. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#retryTimer !== undefined) this.#clock.clearTimeout(this.#retryTimer);
    this.#unsubscribe();
    this.#stopActor();
  }

  #persisted(): PersistedBreakerSnapshot {
    if (this.#actor !== null) {
      return persist(this.#actor);
    }
    if (this.#snapshot === null) {
      // Before its first change a breaker holds no snapshot; build the initial one on demand.
      const actor = createActor(breakerMachine, { input: this.config });
      this.#snapshot = persist(actor);
    }
    return this.#snapshot;
  }

  #ensureActor(): BreakerActor {
    if (this.#actor !== null) return this.#actor;
    // The actor's id names the breaker in the inspector.
    const base = { id: this.#name, input: this.config, clock: this.#clock, inspect: this.#inspect };
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
      if (this.#snapshot !== null) actor.send({ type: 'RESUME', at: this.#clock.now() });
    } finally {
      this.#applying = false;
    }
    this.#seen = actor.getSnapshot();
    actor.subscribe({
      next: (snapshot) => {
        // Changes outside send() are the machine's own delayed transitions.
        if (this.#applying || snapshot === this.#seen || this.#actor !== actor) return;
        const from = this.state;
        this.#changed(snapshot);
        // A lease timer can fire late (busy loop, suspended process, jumping clock), and the
        // delay the new open state arms counts from the lease deadline it records as openedAt
        // only when on time: RESUME re-arms it from now, as a rehydrating instance would.
        // Sent from inside the actor's update, it is queued and handled right after.
        if (from !== 'open' && this.state === 'open') {
          actor.send({ type: 'RESUME', at: this.#clock.now() });
        }
        this.#sleepIfIdle();
      },
      error: (error) => this.#hooks.storeError(error),
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

  // Only open and probing run timers; other states need no actor between events, unless an
  // inspector watches it.
  #needsActor(): boolean {
    return (
      this.#inspect !== undefined ||
      this.state === 'open' ||
      (this.state === 'halfOpen' && this.probeCount > 0) ||
      // A breaker counting failures is likely to see more events soon: keep its actor until
      // a success resets the count, rather than rebuild it for every failure.
      (this.state === 'closed' && this.failures > 0)
    );
  }

  #sleepIfIdle(): void {
    if (this.#actor !== null && !this.#needsActor()) this.#stopActor();
  }

  #changed(snapshot: BreakerSnapshot): void {
    this.#seen = snapshot;
    this.#dirty = true;
    this.#view(snapshot.value, snapshot.context);
    this.#scheduleWrite();
  }

  #view(value: StateValue, context: BreakerContext): void {
    const from = this.state;
    const to = topLevelState(value);
    this.state = to;
    this.failures = context.failures;
    this.generation = context.generation;
    this.openedAt = context.openedAt;
    this.probeCount = countProbes(context.probes);
    if (from !== to) this.#hooks.transition(from, to, context.reason, context.generation);
  }

  #scheduleWrite(): void {
    if (this.#writing !== null || this.#disposed) return;
    this.#writing = this.#writeLoop().finally(() => {
      this.#writing = null;
    });
  }

  async #writeLoop(): Promise<void> {
    // Let the events of this tick gather into one write.
    await undefined;
    let conflicts = 0;
    while (this.#dirty && !this.#disposed) {
      const writeId = nextWriteId();
      const snapshot = { ...this.#persisted(), writeId };
      const expected = this.#version;
      const version = Math.max(expected, this.#high) + 1;
      const included = this.#pending.length;
      this.#dirty = false;
      let result: CompareAndSetResult;
      try {
        result = await this.#store.compareAndSet(
          this.#name,
          expected,
          { version, snapshot },
          this.#baseId,
        );
      } catch (error) {
        // The write may still land (a reply lost or late): remember it, so that meeting it
        // later confirms its events instead of applying them twice.
        this.#unconfirmed = { writeId, included };
        this.#dirty = true;
        this.#storeFailed(error);
        return;
      }
      this.#storeAnswered();
      if (result.ok) {
        conflicts = 0;
        this.#confirmed(version, writeId, included);
        continue;
      }
      if (result.current !== null && this.#isUnconfirmedWrite(result.current)) {
        const { version: landed, snapshot: written } = result.current;
        this.#confirmed(landed, written.writeId, this.#unconfirmed?.included ?? 0);
        this.#dirty = true;
        continue;
      }
      if (++conflicts > MAX_CONFLICTS) {
        this.#dirty = true;
        this.#storeFailed(
          new Error(`gave up writing breaker "${this.#name}" after ${MAX_CONFLICTS} conflicts`),
        );
        return;
      }
      const { current, currentVersion } = result;
      // A record at the highest version this instance has seen, but not its own base, is
      // another instance's write after a data loss: as good as newer.
      if (current !== null && current.version >= this.#high) {
        this.#adopt(current);
        continue;
      }
      // The stored record is missing, unreadable or older than what this instance has seen
      // (flushed, evicted, restored from an old dump): re-create it from the local state.
      this.#version = currentVersion;
      this.#baseId = current?.snapshot.writeId;
      this.#high = Math.max(this.#high, currentVersion);
      this.#dirty = true;
    }
  }

  // While the store fails, the local statechart goes on deciding; the write is retried with
  // backoff and reconciles by version when the store answers again.
  #storeFailed(error: unknown): void {
    this.#hooks.storeError(error);
    if (!this.degraded) {
      this.degraded = true;
      this.#retryDelay = RETRY_MIN_MS;
      this.#hooks.degraded(error);
    } else {
      this.#retryDelay = Math.min(this.#retryDelay * 2, RETRY_MAX_MS);
    }
    if (this.#retryTimer !== undefined || this.#disposed) return;
    this.#retryTimer = this.#clock.setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#dirty) this.#scheduleWrite();
      else this.#probeStore();
    }, this.#retryDelay);
  }

  #storeAnswered(): void {
    if (!this.degraded) return;
    this.degraded = false;
    if (this.#retryTimer !== undefined) {
      this.#clock.clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
    }
    this.#hooks.recovered();
  }

  // Degraded with nothing to write: read the record to learn whether the store is back.
  #probeStore(): void {
    this.#store.load(this.#name).then(
      (record) => {
        this.#storeAnswered();
        if (record !== null) this.#onFeed(record);
        else if (this.#version > 0 || this.#snapshot !== null) {
          // The store lost the record this instance holds: write it back.
          this.#version = 0;
          this.#baseId = undefined;
          this.#dirty = true;
          this.#scheduleWrite();
        }
      },
      (error: unknown) => this.#storeFailed(error),
    );
  }

  // A store that lost the record (flushed, evicted, restored from an old dump) gets this
  // instance's newer state back without waiting for its next change. An unreadable record is
  // only reported here: the next write replaces it, at the pace of real events, so that two
  // writers that cannot read each other's records do not overwrite each other in a loop.
  #onStoreProblem(error: Error): void {
    this.#hooks.storeError(error);
    if (error instanceof LostRecordError && this.#version > error.storedVersion) {
      this.#dirty = true;
      this.#scheduleWrite();
    }
  }

  #isUnconfirmedWrite(record: StoredRecord): boolean {
    return this.#unconfirmed !== undefined && record.snapshot.writeId === this.#unconfirmed.writeId;
  }

  // A write of this instance landed: the events it held are no longer to be replayed.
  #confirmed(version: number, writeId: string | undefined, included: number): void {
    this.#version = version;
    this.#high = Math.max(this.#high, version);
    this.#baseId = writeId;
    this.#pending.splice(0, included);
    this.#unconfirmed = undefined;
  }

  #onFeed(record: StoredRecord): void {
    // A write in flight will meet the newer record as a conflict and adopt it there. The same
    // version with another write id is another instance's write after a data loss.
    const known =
      record.version < this.#version ||
      (record.version === this.#version && record.snapshot.writeId === this.#baseId);
    if (known || this.#writing !== null || this.#disposed) return;
    if (this.#isUnconfirmedWrite(record)) {
      this.#confirmed(record.version, record.snapshot.writeId, this.#unconfirmed?.included ?? 0);
      if (this.#pending.length > 0) {
        this.#dirty = true;
        this.#scheduleWrite();
      }
      return;
    }
    this.#adopt(record);
  }

  // A record this instance cannot restore is reported and replaced from the local state; a
  // record written under another configuration is reported once and restored under ours.
  #usable(record: StoredRecord): StoredRecord | undefined {
    const problem = snapshotProblem(record.snapshot);
    if (problem !== undefined) {
      this.#hooks.storeError(new CorruptRecordError(this.#name, problem));
      this.#version = record.version;
      this.#baseId = undefined;
      this.#high = Math.max(this.#high, record.version);
      this.#dirty = true;
      this.#scheduleWrite();
      return undefined;
    }
    const differences = configDifferences(this.config, record.snapshot.context.config);
    if (differences.length === 0) return record;
    const fingerprint = differences.join();
    if (fingerprint !== this.#mismatch) {
      this.#mismatch = fingerprint;
      this.#hooks.storeError(new ConfigMismatchError(this.#name, differences));
    }
    return { version: record.version, snapshot: withConfig(record.snapshot, this.config) };
  }

  /** Takes the stored record as the base and applies the unconfirmed local events again. */
  #adopt(stored: StoredRecord | null): void {
    const record = stored === null ? null : this.#usable(stored);
    if (record === undefined) return;
    const replay = this.#pending;
    this.#pending = [];
    this.#dirty = false;
    this.#stopActor();
    this.#version = record?.version ?? 0;
    this.#baseId = record?.snapshot.writeId;
    this.#high = Math.max(this.#high, this.#version);
    this.#snapshot = record?.snapshot ?? null;
    const persisted = this.#persisted();
    this.#view(persisted.value, persisted.context);
    if (this.#needsActor()) this.#ensureActor();
    for (const event of replay) this.send(event);
  }
}
