import { isIdleRecord } from '../record/lapse.js';
import { nextRecord } from '../record/next.js';
import { orderOf, type RecordStamp, versionAbove } from '../record/order.js';
import type { CompareAndSetResult } from '../stores/store.js';
import { DegradedMode } from './degraded-mode.js';
import { reconcile } from './reconcile.js';
import type { OpenWrite, WriteRequest } from './writer.js';

/**
 * What a replica's writer (writer.ts) asks and is told: the next record to write (built on the
 * base, above every version met), and how each write ended (landed, refused, failed). Its own
 * file because it is the replica's one way out to the store; the writer owns the pacing and the
 * retries, this side owns what is written and what an answer means for the local state.
 */
export abstract class WriterHosting extends DegradedMode {
  wantsWrite(): boolean {
    return this.dirty && !this.disposed;
  }

  awaited(): boolean {
    return this.waiters !== null;
  }

  // A breaker that waits out its open period, or sits closed, keeps no writer and no event list:
  // thousands of them otherwise hold both for nothing. The next change builds them again.
  writerQuiet(): void {
    const writer = this.writer;
    // A breaker counting failures (or half-open) keeps them: it is expected to write again soon.
    if (
      writer === null ||
      this.live ||
      !writer.quiet ||
      this.dirty ||
      this.degraded ||
      this.waiters !== null ||
      this.retryTimer !== undefined ||
      (this.pending?.size ?? 0) > 0
    ) {
      return;
    }
    this.writerSerial = writer.serial;
    this.writerWrites = writer.writes;
    this.writer = null;
    this.pending = null;
  }

  nextWrite(writeId: string): WriteRequest | null {
    if (!this.dirty || this.disposed) return null;
    this.dirty = false;
    const counted = Math.max(this.recordBase.version, this.recordBase.high) + 1;
    const version = this.replacing
      ? Math.max(counted, versionAbove(this.store.clock.now()))
      : counted;
    // Where records may expire, each names its line: a record written where none was stored
    // begins one, and a data loss's re-creation stays in the line of the state it writes back.
    const lapsing = this.store.recordTtl !== undefined;
    const record = nextRecord(
      this.persisted(),
      version,
      writeId,
      { lineage: this.recordBase.lineage, origin: this.recordBase.origin },
      lapsing,
    );
    this.share(record.snapshot);
    return {
      expectedVersion: this.recordBase.version,
      expectedWriteId: this.recordBase.writeId,
      record,
      upToSeq: this.lastSeq,
      base: this.stamp(),
      state: this.state,
      lapses: lapsing && isIdleRecord(record.snapshot),
      operator: this.pending?.holdsOperatorEvent === true,
    };
  }

  written(stamp: RecordStamp, write: OpenWrite): void {
    if (stamp.writeId !== undefined) this.writer?.settle(stamp.writeId);
    if (this.disposed) return;
    this.recordBase.met(stamp.version);
    this.pending?.confirmUpTo(write.upToSeq);
    // Met already (its feed message came first) and possibly superseded since: keep the newer.
    if (orderOf(stamp, this.stamp()) === 'newer') {
      this.recordBase.landed(stamp, write);
      this.mirror(write.snapshot);
      // The record holding this instance's change is confirmed: now listeners hear it.
      this.announce(write.state, write.reason, write.generation, false);
    }
    this.unusable = false;
    this.replacing = false;
    this.checkWaiters();
  }

  refused(result: Extract<CompareAndSetResult, { ok: false }>, sentBase: RecordStamp | null): void {
    if (this.disposed) return;
    const { current, currentVersion } = result;
    this.recordBase.met(currentVersion);
    // The refused write's events are still pending. What the local state must become (and
    // whether it still differs from its base) is the rule's to say: a record the feed brought
    // meanwhile may already hold the winner, with the events replayed on it.
    if (current !== null) {
      this.meet(current, 'conflict', sentBase);
      // Events still pending differ from whatever base the rule left: they need a write (an
      // adopted record replays them and keeps only those that still change something).
      if ((this.pending?.size ?? 0) > 0) this.dirty = true;
    } else if (reconcile(this, null, 'conflict', sentBase) === 'recreate') {
      // Missing or unreadable: write over whatever is there.
      this.recordBase.overwrite(currentVersion, undefined);
      this.dirty = true;
    }
  }

  urgent(): boolean {
    return this.state !== this.recordBase.state;
  }

  failed(error: unknown): void {
    this.dirty = true;
    this.storeFailed(error);
  }
}
