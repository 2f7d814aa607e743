import type { BreakerContext } from '../machine.js';

/**
 * A state of the statechart as a persisted snapshot names it: a top-level state (`'open'`), or
 * one with its substate (`{ halfOpen: 'probing' }`).
 */
export type BreakerStateValue = string | { readonly [parent: string]: string };

/** A persisted snapshot of the breaker statechart (`actor.getPersistedSnapshot()`), as JSON. */
export interface PersistedBreakerSnapshot {
  /** The statechart's persisted-shape version (`SCHEMA_VERSION`) that wrote it. */
  readonly schema?: number;
  /**
   * Unique per write. After a data loss two instances may write the same version; the write id
   * tells their records apart, so a compare-and-set never lands on a record its writer never saw.
   * A store may also keep it beside the snapshot (Redis: the `write` key) so that it compares
   * write ids without decoding the snapshot.
   */
  readonly writeId?: string;
  /**
   * The write ids of the records this one was built on, oldest first, space-separated (the last
   * few only). An instance whose own write got no answer learns from it that a newer record
   * already holds that write's events, so that it does not apply them a second time.
   */
  readonly lineage?: string;
  /**
   * The write id that began this record's line (see `RecordStamp.origin`), written by stores
   * whose idle records expire, so that a record written after one expired is told from a late
   * message.
   */
  readonly origin?: string;
  readonly status: 'active';
  readonly value: BreakerStateValue;
  readonly context: BreakerContext;
  readonly historyValue?: Record<string, unknown>;
  readonly children?: Record<string, unknown>;
}

/** What a store keeps per breaker name: a snapshot and the version that wrote it. */
export interface StoredRecord {
  /** Starts at 1 with the first write and grows by one with each. */
  readonly version: number;
  readonly snapshot: PersistedBreakerSnapshot;
}
