import type { TransitionReason } from '../machine.js';
import { configDifferences, withConfig } from '../record/config.js';
import { ConfigMismatchError, CorruptRecordError } from '../record/errors.js';
import { isIdleRecord } from '../record/lapse.js';
import { landedIn } from '../record/lineage.js';
import { orderOf, type RecordStamp, stampOf } from '../record/order.js';
import type { StoredRecord } from '../record/shape.js';
import { recordProblem } from '../record/validation.js';
import type { CircuitState } from '../state.js';
import { type RecordSource, type ReplicaKnowledge, reconcile } from './reconcile.js';
import { ReplicaCore } from './replica-core.js';

/**
 * How a replica applies a record met in the store (a feed message, a read, a refused write's
 * reply) by the one rule, {@link reconcile}, and what listeners hear of it. Its own file because
 * it is the replica's one way in for other instances' decisions: adopting a record (checked
 * first, restored under this instance's configuration), replaying unconfirmed events on it, and
 * announcing only the net change.
 */
export abstract class RecordMeeting extends ReplicaCore implements ReplicaKnowledge {
  #mismatch = '';

  // --- ReplicaKnowledge ---

  get base(): RecordStamp | null {
    return this.stamp();
  }

  isOwnWrite(writeId: string | undefined): boolean {
    return this.writer?.open(writeId) !== undefined;
  }

  // --- the rule, applied ---

  protected meet(
    stored: StoredRecord,
    source: RecordSource,
    sentBase: RecordStamp | null = null,
    quiet = false,
  ): void {
    if (this.disposed) return;
    const stamp = stampOf(stored);
    switch (reconcile(this, stamp, source, sentBase)) {
      case 'confirm': {
        const open = this.writer?.open(stamp.writeId);
        if (open !== undefined) this.written(stamp, open);
        // Events after it that no write in flight carries yet still need a write.
        if ((this.pending?.lastSeq ?? 0) > (this.writer?.inFlightUpTo ?? 0) && this.pending?.size) {
          this.dirty = true;
          this.write(0);
        }
        return;
      }
      case 'adopt':
        this.#adopt(stored, quiet);
        return;
      case 'recreate':
        // Over the very base (its write key lost): expect the version alone.
        this.recordBase.overwrite(
          stored.version,
          orderOf(stamp, this.stamp()) === 'same' ? undefined : stamp.writeId,
        );
        this.recordBase.met(stored.version);
        this.dirty = true;
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
      this.hooks.storeError(new CorruptRecordError(this.name, problem));
      this.recordBase.overwrite(record.version, record.snapshot.writeId);
      this.recordBase.met(record.version);
      this.dirty = true;
      this.write(0);
      return undefined;
    }
    const differences = configDifferences(this.config, record.snapshot.context.config);
    if (differences.length === 0) return record;
    const fingerprint = differences.join();
    if (fingerprint !== this.#mismatch) {
      this.#mismatch = fingerprint;
      this.hooks.storeError(new ConfigMismatchError(this.name, differences));
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
    for (const write of landedIn(record.snapshot.lineage, this.writer?.openWrites ?? [])) {
      this.writer?.settle(write.writeId);
      this.pending?.confirmUpTo(write.upToSeq);
    }
    this.recordBase.take(
      record,
      this.store.recordTtl !== undefined && isIdleRecord(record.snapshot),
    );
    this.restore(record.snapshot);
    this.unusable = false;
    this.replacing = false;
    this.recordBase.state = this.state;
    if (quiet) {
      // The state this instance starts in (the record it first read) is no change to hear.
      this.shown = this.state;
    } else {
      const { reason, generation } = this.context;
      this.announce(this.state, reason, generation, false);
    }
    const pending = this.pending;
    let changed = false;
    if (pending !== null && pending.size > 0) {
      pending.replay((event) => {
        const applied = this.apply(event);
        changed ||= applied;
        return applied;
      });
    }
    this.dirty = changed;
    // Replayed local events are heard once their write lands; alone, they are heard now.
    if (changed && this.degraded) this.announceLocal();
    if (changed) this.write(0);
    this.sleepIfIdle();
    this.checkWaiters();
  }

  /** The local state, decided by this instance alone: `speculative`. */
  protected announceLocal(): void {
    const { reason, generation } = this.context;
    this.announce(this.state, reason, generation, true);
  }

  protected announce(
    to: CircuitState,
    reason: TransitionReason,
    generation: number,
    speculative: boolean,
  ): void {
    const from = this.shown;
    if (from === to) return;
    this.shown = to;
    if (this.disposed) return;
    this.hooks.transition(from, to, reason, generation, speculative);
  }
}
