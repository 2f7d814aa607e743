import type { Clock } from '../clock.js';
import { afterDue } from '../grace.js';
import type { BreakerConfig, BreakerEvent, TransitionReason } from '../machine.js';
import type { InspectOption } from '../options.js';
import { configDifferences, withConfig } from '../record/config.js';
import { ConfigMismatchError, CorruptRecordError, LostRecordError } from '../record/errors.js';
import { isIdleRecord } from '../record/lapse.js';
import { landedIn } from '../record/lineage.js';
import { nextRecord } from '../record/next.js';
import { orderOf, type RecordStamp, stampOf, versionAbove } from '../record/order.js';
import type { StoredRecord } from '../record/shape.js';
import { recordProblem } from '../record/validation.js';
import type { CircuitState } from '../state.js';
import type { BreakerStore, CompareAndSetResult, StoreFollower } from '../stores/store.js';
import { type Admission, checkWaiters, fateOf, settleWaiters, type Waiter } from './admission.js';
import { RecordBase } from './base.js';
import type { ReplicaHooks } from './hooks.js';
import { LocalStatechart } from './local-statechart.js';
import { PendingEvents } from './pending.js';
import { type RecordSource, reconcile } from './reconcile.js';
import { writeGateOf } from './write-gate.js';
import {
  type OpenWrite,
  type WriteRequest,
  Writer,
  type WriterHost,
  writeIdPrefix,
} from './writer.js';

export type { Admission } from './admission.js';
export type { ReplicaHooks } from './hooks.js';

// Backoff of writes while the store fails.
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

// One settled promise for every replica that loads synchronously (embedded stores).
const LOADED: Promise<void> = Promise.resolve();

/**
 * One instance's copy of a breaker's shared statechart. Events are applied to the local
 * statechart first, so callers never wait for the store; a change is then written with
 * compare-and-set in the background. Every record met (a feed message, a read, a refused
 * write's reply) goes through one rule, {@link reconcile}: confirm an own write, adopt a newer
 * record and apply the unconfirmed events again on top, write the local state back over a
 * store that lost it, or ignore it.
 */
export class Replica extends LocalStatechart implements StoreFollower, WriterHost {
  /** Whether the store failed and the breaker decides locally until it answers again. */
  degraded = false;
  /** Whether the stored record has been read once. */
  loaded = false;
  /** Settles when the stored record has been read once. */
  readonly ready: Promise<void>;
  readonly store: BreakerStore;
  readonly #hooks: ReplicaHooks;
  /** The function that unsubscribes, kept only for a store that cannot unsubscribe by name. */
  readonly #unsubscribe: (() => void) | null;
  /** The record the local state builds on. */
  readonly #base = new RecordBase();
  /** The local statechart differs from the base record. */
  #dirty = false;
  /** The state listeners last heard of. */
  #shown: CircuitState = 'closed';
  #pending: PendingEvents | null = null;
  #writer: Writer | null = null;
  /** A released writer's serial and write count (0: none yet), for the next one. */
  #writerSerial = 0;
  #writerWrites = 0;
  #waiters: Waiter[] | null = null;
  #mismatch = '';
  #retryTimer: unknown;
  #retryDelay = RETRY_MIN_MS;
  #disposed = false;
  /** The store reported the stored record as one it cannot restore (see `problem`). */
  #unusable = false;
  /** A reset replaces that record: its write goes above every version an instance may hold. */
  #replacing = false;

  constructor(
    name: string,
    config: BreakerConfig,
    store: BreakerStore,
    clock: Clock,
    inspect: InspectOption | undefined,
    hooks: ReplicaHooks,
  ) {
    super(name, config, clock, inspect);
    // The inspector's actor starts from the initial state; a stored record met below restores it.
    if (inspect !== undefined) this.restore(null);
    this.store = store;
    this.#hooks = hooks;
    const unsubscribe = store.subscribe(name, this);
    this.#unsubscribe = store.unsubscribe === undefined ? unsubscribe : null;
    const known = store.peek?.(name);
    if (known !== undefined) {
      if (known !== null) this.#meet(known, 'read', null, true);
      this.loaded = true;
      this.ready = LOADED;
    } else {
      // Paced with the store's writes: thousands of breakers created at once all read.
      const gate = writeGateOf(store);
      const loading = gate === undefined ? store.load(name) : gate.run(() => store.load(name));
      this.ready = loading.then(
        (record) => {
          this.loaded = true;
          // The record first read is the state this instance starts in, not a change (local
          // events made before it came back are replayed and heard once written).
          if (record !== null) this.#meet(record, 'read', null, true);
        },
        (error: unknown) => {
          this.loaded = true;
          this.#storeFailed(error);
        },
      );
    }
  }

  /**
   * Applies an event to the local statechart; returns whether it changed anything. A change
   * is written to the store in the background.
   */
  send(event: BreakerEvent): boolean {
    const changed = this.apply(event);
    // What is stored cannot be restored (garbled, or a version out of range): a reset is the
    // user's way to replace it, even where locally nothing changed, and every instance must
    // adopt the replacement whatever version it holds.
    const replaces = event.type === 'RESET' && this.#unusable && !this.#disposed;
    if (replaces) this.#replacing = true;
    if (changed) {
      this.#pending ??= new PendingEvents();
      this.#pending.push(event);
      this.#changed(0);
    } else if (replaces) {
      this.#dirty = true;
      this.#write(0);
    }
    this.sleepIfIdle();
    return changed;
  }

  /** The state listeners last heard: the record's, or this instance's own while degraded. */
  get shownState(): CircuitState {
    return this.#shown;
  }

  /** The sequence number of the last event `send` kept. */
  get lastSeq(): number {
    return this.#pending?.lastSeq ?? 0;
  }

  /**
   * How the event `seq` fared: `confirmed` once a write holding it landed, `refused` when a
   * record adopted meanwhile made it a no-op, `unanswered` when the store failed first or
   * `ms` passed with a write still unanswered. Past `ms` with every write answered (only
   * conflicts, the store is busy with other writers), it is `refused`: the store did answer.
   */
  admission(seq: number, ms: number | undefined): Promise<Admission> {
    const now = this.#fate(seq);
    if (now !== undefined) return Promise.resolve(now);
    return new Promise((resolve) => {
      let cancel: (() => void) | undefined;
      const done = (admission: Admission) => {
        cancel?.();
        resolve(admission);
      };
      this.#waiters ??= [];
      this.#waiters.push({ seq, resolve: done });
      // Its write goes before other breakers' writes queued for the store.
      this.#writer?.hurry();
      if (ms !== undefined) {
        cancel = afterDue(this.clock, ms, () => {
          const waiters = this.#waiters;
          if (waiters === null) return;
          const at = waiters.findIndex((waiter) => waiter.resolve === done);
          if (at < 0) return;
          waiters.splice(at, 1);
          const fate = this.#fate(seq);
          if (fate !== undefined) return done(fate);
          if (this.#writer?.awaitingReply || this.degraded) {
            // The store did not answer in time: from here this instance decides alone, and what
            // it decides is speculative, even before the write's own timeout says so.
            this.#silent(new Error(`no answer from the store within ${ms} ms`));
            return done('unanswered');
          }
          done('refused');
        });
      }
    });
  }

  /** Settles when every local change so far has been written, or the store failed. */
  async settled(): Promise<void> {
    for (let idle = this.#writer?.idle; idle; idle = this.#writer?.idle) await idle;
  }

  /** Stops the actor and the change feed; the replica answers from its last state after. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#retryTimer !== undefined) this.clock.clearTimeout(this.#retryTimer);
    if (this.#unsubscribe !== null) this.#unsubscribe();
    else this.store.unsubscribe?.(this.name, this);
    this.#writer?.stop();
    this.stopStatechart();
    this.#settleWaiters('unanswered');
  }

  // --- StoreFollower: what the store hands over ---

  /** A record from the feed or a resync. */
  record(record: StoredRecord): void {
    if (!this.#disposed) this.#meet(record, 'feed');
  }

  /**
   * A store that lost the record (flushed, evicted, restored from an old dump) gets this
   * instance's newer state back without waiting for its next change. An unreadable record is
   * only reported here: the next write replaces it, at the pace of real events, so that two
   * writers that cannot read each other's records do not overwrite each other in a loop.
   */
  problem(error: Error): void {
    if (this.#disposed) return;
    this.#hooks.storeError(error);
    if (error instanceof CorruptRecordError) this.#unusable = true;
    if (error instanceof LostRecordError && this.#base.version > error.storedVersion) {
      this.#dirty = true;
      this.#write(0);
    }
  }

  stamp(): RecordStamp | null {
    return this.#base.stamp();
  }

  /**
   * The idle record this instance builds on expired: it carries on as if none had been written,
   * so that the store stays empty until a real change. With changes of its own still being
   * written, the write's conflict re-creates the record instead.
   */
  lapsed(held: RecordStamp): void {
    if (this.#disposed || !this.#idleBase() || orderOf(held, this.stamp()) !== 'same') return;
    this.#forgetBase();
  }

  // --- WriterHost: what the writer asks and tells ---

  wantsWrite(): boolean {
    return this.#dirty && !this.#disposed;
  }

  awaited(): boolean {
    return this.#waiters !== null;
  }

  // A breaker that waits out its open period, or sits closed, keeps no writer and no event list:
  // thousands of them otherwise hold both for nothing. The next change builds them again.
  writerQuiet(): void {
    const writer = this.#writer;
    // A breaker counting failures (or half-open) keeps them: it is expected to write again soon.
    if (
      writer === null ||
      this.live ||
      !writer.quiet ||
      this.#dirty ||
      this.degraded ||
      this.#waiters !== null ||
      this.#retryTimer !== undefined ||
      (this.#pending?.size ?? 0) > 0
    ) {
      return;
    }
    this.#writerSerial = writer.serial;
    this.#writerWrites = writer.writes;
    this.#writer = null;
    this.#pending = null;
  }

  nextWrite(writeId: string): WriteRequest | null {
    if (!this.#dirty || this.#disposed) return null;
    this.#dirty = false;
    const counted = Math.max(this.#base.version, this.#base.high) + 1;
    const version = this.#replacing
      ? Math.max(counted, versionAbove(this.store.clock.now()))
      : counted;
    // Where records may expire, each names its line: a record written where none was stored
    // begins one, and a data loss's re-creation stays in the line of the state it writes back.
    const lapsing = this.store.recordTtl !== undefined;
    const record = nextRecord(
      this.persisted(),
      version,
      writeId,
      { lineage: this.#base.lineage, origin: this.#base.origin },
      lapsing,
    );
    this.share(record.snapshot);
    return {
      expectedVersion: this.#base.version,
      expectedWriteId: this.#base.writeId,
      record,
      upToSeq: this.lastSeq,
      base: this.stamp(),
      state: this.state,
      lapses: lapsing && isIdleRecord(record.snapshot),
      operator: this.#pending?.holdsOperatorEvent === true,
    };
  }

  written(stamp: RecordStamp, write: OpenWrite): void {
    if (stamp.writeId !== undefined) this.#writer?.settle(stamp.writeId);
    if (this.#disposed) return;
    this.#base.met(stamp.version);
    this.#pending?.confirmUpTo(write.upToSeq);
    // Met already (its feed message came first) and possibly superseded since: keep the newer.
    if (orderOf(stamp, this.stamp()) === 'newer') {
      this.#base.landed(stamp, write);
      this.mirror(write.snapshot);
      // The record holding this instance's change is confirmed: now listeners hear it.
      this.#announce(write.state, write.reason, write.generation, false);
    }
    this.#unusable = false;
    this.#replacing = false;
    this.#checkWaiters();
  }

  refused(result: Extract<CompareAndSetResult, { ok: false }>, sentBase: RecordStamp | null): void {
    if (this.#disposed) return;
    const { current, currentVersion } = result;
    this.#base.met(currentVersion);
    // The refused write's events are still pending. What the local state must become (and
    // whether it still differs from its base) is the rule's to say: a record the feed brought
    // meanwhile may already hold the winner, with the events replayed on it.
    if (current !== null) {
      this.#meet(current, 'conflict', sentBase);
      // Events still pending differ from whatever base the rule left: they need a write (an
      // adopted record replays them and keeps only those that still change something).
      if ((this.#pending?.size ?? 0) > 0) this.#dirty = true;
    } else if (reconcile(this, null, 'conflict', sentBase) === 'recreate') {
      // Missing or unreadable: write over whatever is there.
      this.#base.overwrite(currentVersion, undefined);
      this.#dirty = true;
    }
  }

  urgent(): boolean {
    return this.state !== this.#base.state;
  }

  failed(error: unknown): void {
    this.#dirty = true;
    this.#storeFailed(error);
  }

  answered(): void {
    if (!this.degraded) return;
    this.degraded = false;
    this.#retryDelay = RETRY_MIN_MS;
    if (this.#retryTimer !== undefined) {
      this.clock.clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
    }
    if (this.#disposed) return;
    this.#hooks.recovered();
    // The retry timer just cleared may have been the one that would write a change whose write
    // failed (while a probe read was out, say): write it now that the store answers.
    if (this.#dirty) this.#write(0);
  }

  // --- ReplicaKnowledge ---

  get base(): RecordStamp | null {
    return this.stamp();
  }

  isOwnWrite(writeId: string | undefined): boolean {
    return this.#writer?.open(writeId) !== undefined;
  }

  // --- LocalStatechart ---

  // Every instance's timer fires together. The one that wrote the record being left writes the
  // transition at once; the others wait a while and adopt its record (and write it themselves
  // only if that instance is gone).
  protected timedChange(): void {
    this.#changed(this.#wroteBase() ? 0 : (this.store.timedWriteSpread ?? 0));
    this.sleepIfIdle();
  }

  // Whether this instance wrote the record it builds on (with its writer, or a released one).
  #wroteBase(): boolean {
    if (this.#writer !== null) return this.#writer.wrote(this.#base.writeId);
    return (
      this.#writerSerial !== 0 &&
      this.#base.writeId?.startsWith(writeIdPrefix(this.#writerSerial)) === true
    );
  }

  protected actorError(error: unknown): void {
    if (!this.#disposed) this.#hooks.storeError(error);
  }

  // --- the rule, applied ---

  #meet(
    stored: StoredRecord,
    source: RecordSource,
    sentBase: RecordStamp | null = null,
    quiet = false,
  ): void {
    if (this.#disposed) return;
    const stamp = stampOf(stored);
    switch (reconcile(this, stamp, source, sentBase)) {
      case 'confirm': {
        const open = this.#writer?.open(stamp.writeId);
        if (open !== undefined) this.written(stamp, open);
        // Events after it that no write in flight carries yet still need a write.
        if (
          (this.#pending?.lastSeq ?? 0) > (this.#writer?.inFlightUpTo ?? 0) &&
          this.#pending?.size
        ) {
          this.#dirty = true;
          this.#write(0);
        }
        return;
      }
      case 'adopt':
        this.#adopt(stored, quiet);
        return;
      case 'recreate':
        // Over the very base (its write key lost): expect the version alone.
        this.#base.overwrite(
          stored.version,
          orderOf(stamp, this.stamp()) === 'same' ? undefined : stamp.writeId,
        );
        this.#base.met(stored.version);
        this.#dirty = true;
        return;
      case 'ignore':
        return;
    }
  }

  // A record this instance cannot restore is reported and replaced from the local state; a
  // record written under another configuration is reported once and restored under ours.
  #usable(record: StoredRecord): StoredRecord | undefined {
    const problem = recordProblem(record);
    if (problem !== undefined) {
      this.#hooks.storeError(new CorruptRecordError(this.name, problem));
      this.#base.overwrite(record.version, record.snapshot.writeId);
      this.#base.met(record.version);
      this.#dirty = true;
      this.#write(0);
      return undefined;
    }
    const differences = configDifferences(this.config, record.snapshot.context.config);
    if (differences.length === 0) return record;
    const fingerprint = differences.join();
    if (fingerprint !== this.#mismatch) {
      this.#mismatch = fingerprint;
      this.#hooks.storeError(new ConfigMismatchError(this.name, differences));
    }
    return { version: record.version, snapshot: withConfig(record.snapshot, this.config) };
  }

  /**
   * Takes the stored record as the base and applies the unconfirmed local events again.
   * Listeners hear only the net change: the record and the replay are one step to them.
   */
  #adopt(stored: StoredRecord, quiet = false): void {
    const record = this.#usable(stored);
    if (record === undefined) return;
    // Own writes that got no answer yet landed beneath this record: their events are in it.
    for (const write of landedIn(record.snapshot.lineage, this.#writer?.openWrites ?? [])) {
      this.#writer?.settle(write.writeId);
      this.#pending?.confirmUpTo(write.upToSeq);
    }
    this.#base.take(record, this.store.recordTtl !== undefined && isIdleRecord(record.snapshot));
    this.restore(record.snapshot);
    this.#unusable = false;
    this.#replacing = false;
    this.#base.state = this.state;
    if (quiet) {
      // The state this instance starts in (the record it first read) is no change to hear.
      this.#shown = this.state;
    } else {
      const { reason, generation } = this.context;
      this.#announce(this.state, reason, generation, false);
    }
    const pending = this.#pending;
    let changed = false;
    if (pending !== null && pending.size > 0) {
      pending.replay((event) => {
        const applied = this.apply(event);
        changed ||= applied;
        return applied;
      });
    }
    this.#dirty = changed;
    // Replayed local events are heard once their write lands; alone, they are heard now.
    if (changed && this.degraded) this.#announceLocal();
    if (changed) this.#write(0);
    this.sleepIfIdle();
    this.#checkWaiters();
  }

  // A local change is in force for calls at once; listeners hear it when the record holding it
  // is confirmed (`written`), or at once while this instance decides alone (degraded).
  #changed(spreadMs: number): void {
    this.#dirty = true;
    if (this.degraded) this.#announceLocal();
    this.#write(spreadMs);
  }

  /** The local state, decided by this instance alone: `speculative`. */
  #announceLocal(): void {
    const { reason, generation } = this.context;
    this.#announce(this.state, reason, generation, true);
  }

  #announce(
    to: CircuitState,
    reason: TransitionReason,
    generation: number,
    speculative: boolean,
  ): void {
    const from = this.#shown;
    if (from === to) return;
    this.#shown = to;
    if (this.#disposed) return;
    this.#hooks.transition(from, to, reason, generation, speculative);
  }

  #write(spreadMs: number): void {
    if (this.#disposed) return;
    this.#writer ??=
      this.#writerSerial === 0
        ? new Writer(this)
        : new Writer(this, this.#writerSerial, this.#writerWrites);
    this.#writer.schedule(spreadMs);
  }

  // Degraded without a store error to report (the write's own failure reports it).
  #silent(error: unknown): void {
    if (this.degraded || this.#disposed) return;
    this.degraded = true;
    this.#retryDelay = RETRY_MIN_MS;
    this.#hooks.degraded(error);
    this.#announceLocal();
  }

  // While the store fails, the local statechart goes on deciding; the write is retried with
  // backoff and reconciles by record order when the store answers again.
  #storeFailed(error: unknown): void {
    if (this.#disposed) return;
    this.#hooks.storeError(error);
    if (!this.degraded) {
      this.degraded = true;
      this.#retryDelay = RETRY_MIN_MS;
      this.#hooks.degraded(error);
      // A change whose write did not land stands alone from here: heard as speculative.
      this.#announceLocal();
    } else {
      this.#retryDelay = Math.min(this.#retryDelay * 2, RETRY_MAX_MS);
    }
    this.#settleWaiters('unanswered');
    if (this.#retryTimer !== undefined) return;
    this.#retryTimer = this.clock.setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#dirty) this.#write(0);
      else this.#probeStore();
    }, this.#retryDelay);
  }

  // Degraded with nothing to write: read the record to learn whether the store is back.
  #probeStore(): void {
    if (this.#disposed) return;
    this.store.load(this.name).then(
      (record) => {
        if (this.#disposed) return;
        this.answered();
        if (record !== null) this.#meet(record, 'read');
        else if (this.#base.version > 0 && this.#idleBase()) {
          // The idle record it holds expired: nothing to write back.
          this.#forgetBase();
        } else if (this.#base.version > 0) {
          // The store lost the record this instance holds: write it back.
          this.#base.overwrite(0, undefined);
          this.#dirty = true;
          this.#write(0);
        }
      },
      (error: unknown) => this.#storeFailed(error),
    );
  }

  // Whether the base may have expired and this instance owes the store nothing on top of it.
  #idleBase(): boolean {
    return (
      this.#base.lapses &&
      !this.#dirty &&
      (this.#pending?.size ?? 0) === 0 &&
      this.#writer?.awaitingReply !== true
    );
  }

  // No record is stored, and none is owed: the next write begins a line of its own, from the
  // statechart a new instance starts with. Its generation starts again too, as a new instance's
  // does: the fleet's window is kept per generation, and instances must count in the same one.
  #forgetBase(): void {
    this.#base.forget();
    this.restore(null);
  }

  #fate(seq: number): Admission | undefined {
    return fateOf(this.#pending, seq);
  }

  #checkWaiters(): void {
    const waiters = this.#waiters;
    if (waiters !== null) this.#waiters = checkWaiters(waiters, this.#pending);
  }

  #settleWaiters(admission: Admission): void {
    const waiters = this.#waiters;
    this.#waiters = null;
    settleWaiters(waiters, admission);
  }
}
