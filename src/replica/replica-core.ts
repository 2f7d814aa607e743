import type { Clock } from '../clock.js';
import type { BreakerConfig } from '../machine.js';
import type { InspectOption } from '../options.js';
import type { RecordStamp } from '../record/order.js';
import type { CircuitState } from '../state.js';
import type { BreakerStore, CompareAndSetResult } from '../stores/store.js';
import { type Admission, checkWaiters, settleWaiters, type Waiter } from './admission.js';
import { RecordBase } from './base.js';
import type { ReplicaHooks } from './hooks.js';
import { LocalStatechart } from './local-statechart.js';
import type { PendingEvents } from './pending.js';
import { type OpenWrite, type WriteRequest, Writer, type WriterHost } from './writer.js';

/**
 * The state that every part of a replica shares, and the steps they all take (start a write,
 * settle waiters, forget an expired base). The replica is one class split along its seams into
 * a chain of subclasses, one concept a file (record-meeting.ts, degraded-mode.ts,
 * writer-host.ts, replica.ts), as the local statechart was split off before it: the parts reach
 * this state as protected members, with no object between them and the call path.
 */
export abstract class ReplicaCore extends LocalStatechart implements WriterHost {
  /** Whether the store failed and the breaker decides locally until it answers again. */
  degraded = false;
  /** Whether the stored record has been read once. */
  loaded = false;
  readonly store: BreakerStore;
  protected readonly hooks: ReplicaHooks;
  /** The record the local state builds on. */
  protected readonly recordBase = new RecordBase();
  /** The local statechart differs from the base record. */
  protected dirty = false;
  /** The state listeners last heard of. */
  protected shown: CircuitState = 'closed';
  protected pending: PendingEvents | null = null;
  protected writer: Writer | null = null;
  /** A released writer's serial and write count (0: none yet), for the next one. */
  protected writerSerial = 0;
  protected writerWrites = 0;
  protected waiters: Waiter[] | null = null;
  protected disposed = false;
  /** The store reported the stored record as one it cannot restore (see `problem`). */
  protected unusable = false;
  /** A reset replaces that record: its write goes above every version an instance may hold. */
  protected replacing = false;

  constructor(
    name: string,
    config: BreakerConfig,
    store: BreakerStore,
    clock: Clock,
    inspect: InspectOption | undefined,
    hooks: ReplicaHooks,
  ) {
    super(name, config, clock, inspect);
    this.store = store;
    this.hooks = hooks;
  }

  /** The sequence number of the last event `send` kept. */
  get lastSeq(): number {
    return this.pending?.lastSeq ?? 0;
  }

  stamp(): RecordStamp | null {
    return this.recordBase.stamp();
  }

  abstract nextWrite(writeId: string): WriteRequest | null;
  abstract wantsWrite(): boolean;
  abstract written(stamp: RecordStamp, write: OpenWrite): void;
  abstract refused(
    result: Extract<CompareAndSetResult, { ok: false }>,
    sentBase: RecordStamp | null,
  ): void;
  abstract failed(error: unknown): void;
  abstract answered(): void;
  abstract urgent(): boolean;
  abstract awaited(): boolean;

  protected write(spreadMs: number): void {
    if (this.disposed) return;
    this.writer ??=
      this.writerSerial === 0
        ? new Writer(this)
        : new Writer(this, this.writerSerial, this.writerWrites);
    this.writer.schedule(spreadMs);
  }

  // Whether the base may have expired and this instance owes the store nothing on top of it.
  protected idleBase(): boolean {
    return (
      this.recordBase.lapses &&
      !this.dirty &&
      (this.pending?.size ?? 0) === 0 &&
      this.writer?.awaitingReply !== true
    );
  }

  // No record is stored, and none is owed: the next write begins a line of its own, from the
  // statechart a new instance starts with. Its generation starts again too, as a new instance's
  // does: the fleet's window is kept per generation, and instances must count in the same one.
  protected forgetBase(): void {
    this.recordBase.forget();
    this.restore(null);
  }

  protected checkWaiters(): void {
    const waiters = this.waiters;
    if (waiters !== null) this.waiters = checkWaiters(waiters, this.pending);
  }

  protected settleWaiters(admission: Admission): void {
    const waiters = this.waiters;
    this.waiters = null;
    settleWaiters(waiters, admission);
  }
}
