import { lineageAfter } from '../record/lineage.js';
import { descentOf } from '../record/next.js';
import type { RecordStamp } from '../record/order.js';
import type { StoredRecord } from '../record/shape.js';
import type { CircuitState } from '../state.js';
import type { OpenWrite } from './writer.js';

/**
 * The record a replica's local state builds on: its version and write id (what the next
 * compare-and-set expects), the line it belongs to, and the highest version met in the store.
 */
export class RecordBase {
  /** The version of the record the local state builds on (0: none). */
  version = 0;
  /** That record's write id. */
  writeId: string | undefined;
  /** The highest version met in the store; new versions go above it. */
  high = 0;
  /** The top-level state of the record the local state builds on. */
  state: CircuitState = 'closed';
  /** The lineage a record written on the base carries (the base's, then the base's id). */
  lineage: string | undefined;
  /** The line of the base (see `RecordStamp.origin`); `undefined` before any, or after it lapsed. */
  origin: string | undefined;
  /** Whether the store lets the base expire: an idle record on a store with `recordTtl`. */
  lapses = false;

  stamp(): RecordStamp | null {
    if (this.version === 0) return null;
    return this.lapses
      ? { version: this.version, writeId: this.writeId, origin: this.origin, lapses: true }
      : { version: this.version, writeId: this.writeId, origin: this.origin };
  }

  /** A version met in the store: new versions go above it. */
  met(version: number): void {
    this.high = Math.max(this.high, version);
  }

  /** A stored record becomes the base. */
  take(record: StoredRecord, lapses: boolean): void {
    this.version = record.version;
    this.writeId = record.snapshot.writeId;
    ({ lineage: this.lineage, origin: this.origin } = descentOf(record.snapshot));
    this.lapses = lapses;
    this.met(record.version);
  }

  /** An own write landed and becomes the base. */
  landed(stamp: RecordStamp, write: OpenWrite): void {
    this.version = stamp.version;
    this.writeId = stamp.writeId;
    this.state = write.state;
    this.lineage = lineageAfter(write.lineage, stamp.writeId);
    this.origin = write.origin;
    this.lapses = write.lapses;
  }

  /** The next write goes over the record `version`/`writeId` (lost or unreadable), whatever it holds. */
  overwrite(version: number, writeId: string | undefined): void {
    this.version = version;
    this.writeId = writeId;
    this.lapses = false;
  }

  /** No record is stored: the next write begins a line of its own. */
  forget(): void {
    this.version = 0;
    this.writeId = undefined;
    this.lineage = undefined;
    this.origin = undefined;
    this.lapses = false;
  }
}
