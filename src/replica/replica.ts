import type { Clock } from '../clock.js';
import { afterDue } from '../grace.js';
import type { BreakerConfig, BreakerEvent } from '../machine.js';
import type { InspectOption } from '../options.js';
import { CorruptRecordError, LostRecordError } from '../record/errors.js';
import { orderOf, type RecordStamp } from '../record/order.js';
import type { StoredRecord } from '../record/shape.js';
import type { CircuitState } from '../state.js';
import type { BreakerStore, StoreFollower } from '../stores/store.js';
import { type Admission, fateOf } from './admission.js';
import type { ReplicaHooks } from './hooks.js';
import { PendingEvents } from './pending.js';
import { writeGateOf } from './write-gate.js';
import { type WriterHost, writeIdPrefix } from './writer.js';
import { WriterHosting } from './writer-host.js';

export type { Admission } from './admission.js';
export type { ReplicaHooks } from './hooks.js';

// One settled promise for every replica that loads synchronously (embedded stores).
const LOADED: Promise<void> = Promise.resolve();

/**
 * One instance's copy of a breaker's shared statechart. Events are applied to the local
 * statechart first, so callers never wait for the store; a change is then written with
 * compare-and-set in the background. Every record met (a feed message, a read, a refused
 * write's reply) goes through one rule (reconcile.ts): confirm an own write, adopt a newer
 * record and apply the unconfirmed events again on top, write the local state back over a
 * store that lost it, or ignore it.
 *
 * Its parts, one a file, are the classes it extends: the shared state (replica-core.ts), the
 * records met (record-meeting.ts), the degraded mode (degraded-mode.ts) and the writer's side
 * (writer-host.ts). This file holds what the breaker and the store call.
 */
export class Replica extends WriterHosting implements StoreFollower, WriterHost {
  /** Settles when the stored record has been read once. */
  readonly ready: Promise<void>;
  /** The function that unsubscribes, kept only for a store that cannot unsubscribe by name. */
  readonly #unsubscribe: (() => void) | null;

  constructor(
    name: string,
    config: BreakerConfig,
    store: BreakerStore,
    clock: Clock,
    inspect: InspectOption | undefined,
    hooks: ReplicaHooks,
  ) {
    super(name, config, store, clock, inspect, hooks);
    // The inspector's actor starts from the initial state; a stored record met below restores it.
    if (inspect !== undefined) this.restore(null);
    const unsubscribe = store.subscribe(name, this);
    this.#unsubscribe = store.unsubscribe === undefined ? unsubscribe : null;
    const known = store.peek?.(name);
    if (known !== undefined) {
      if (known !== null) this.meet(known, 'read', null, true);
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
          if (record !== null) this.meet(record, 'read', null, true);
        },
        (error: unknown) => {
          this.loaded = true;
          this.storeFailed(error);
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
    const replaces = event.type === 'RESET' && this.unusable && !this.disposed;
    if (replaces) this.replacing = true;
    if (changed) {
      this.pending ??= new PendingEvents();
      this.pending.push(event);
      this.#changed(0);
    } else if (replaces) {
      this.dirty = true;
      this.write(0);
    }
    this.sleepIfIdle();
    return changed;
  }

  /** The state listeners last heard: the record's, or this instance's own while degraded. */
  get shownState(): CircuitState {
    return this.shown;
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
      this.waiters ??= [];
      this.waiters.push({ seq, resolve: done });
      // Its write goes before other breakers' writes queued for the store.
      this.writer?.hurry();
      if (ms !== undefined) {
        cancel = afterDue(this.clock, ms, () => {
          const waiters = this.waiters;
          if (waiters === null) return;
          const at = waiters.findIndex((waiter) => waiter.resolve === done);
          if (at < 0) return;
          waiters.splice(at, 1);
          const fate = this.#fate(seq);
          if (fate !== undefined) return done(fate);
          if (this.writer?.awaitingReply || this.degraded) {
            // The store did not answer in time: from here this instance decides alone, and what
            // it decides is speculative, even before the write's own timeout says so.
            this.silent(new Error(`no answer from the store within ${ms} ms`));
            return done('unanswered');
          }
          done('refused');
        });
      }
    });
  }

  /** Settles when every local change so far has been written, or the store failed. */
  async settled(): Promise<void> {
    for (let idle = this.writer?.idle; idle; idle = this.writer?.idle) await idle;
  }

  /** Stops the actor and the change feed; the replica answers from its last state after. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.retryTimer !== undefined) this.clock.clearTimeout(this.retryTimer);
    if (this.#unsubscribe !== null) this.#unsubscribe();
    else this.store.unsubscribe?.(this.name, this);
    this.writer?.stop();
    this.stopStatechart();
    this.settleWaiters('unanswered');
  }

  // --- StoreFollower: what the store hands over ---

  /** A record from the feed or a resync. */
  record(record: StoredRecord): void {
    if (!this.disposed) this.meet(record, 'feed');
  }

  /**
   * A store that lost the record (flushed, evicted, restored from an old dump) gets this
   * instance's newer state back without waiting for its next change. An unreadable record is
   * only reported here: the next write replaces it, at the pace of real events, so that two
   * writers that cannot read each other's records do not overwrite each other in a loop.
   */
  problem(error: Error): void {
    if (this.disposed) return;
    this.hooks.storeError(error);
    if (error instanceof CorruptRecordError) this.unusable = true;
    if (error instanceof LostRecordError && this.recordBase.version > error.storedVersion) {
      this.dirty = true;
      this.write(0);
    }
  }

  /**
   * The idle record this instance builds on expired: it carries on as if none had been written,
   * so that the store stays empty until a real change. With changes of its own still being
   * written, the write's conflict re-creates the record instead.
   */
  lapsed(held: RecordStamp): void {
    if (this.disposed || !this.idleBase() || orderOf(held, this.stamp()) !== 'same') return;
    this.forgetBase();
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
    if (this.writer !== null) return this.writer.wrote(this.recordBase.writeId);
    return (
      this.writerSerial !== 0 &&
      this.recordBase.writeId?.startsWith(writeIdPrefix(this.writerSerial)) === true
    );
  }

  protected actorError(error: unknown): void {
    if (!this.disposed) this.hooks.storeError(error);
  }

  // A local change is in force for calls at once; listeners hear it when the record holding it
  // is confirmed (`written`), or at once while this instance decides alone (degraded).
  #changed(spreadMs: number): void {
    this.dirty = true;
    if (this.degraded) this.announceLocal();
    this.write(spreadMs);
  }

  #fate(seq: number): Admission | undefined {
    return fateOf(this.pending, seq);
  }
}
