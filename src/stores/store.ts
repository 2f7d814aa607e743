import type { StateValue } from 'xstate';
import type { Clock } from '../clock.js';
import type { BreakerContext } from '../machine.js';

/** A persisted snapshot of the breaker statechart (`actor.getPersistedSnapshot()`), as JSON. */
export interface PersistedBreakerSnapshot {
  /** The statechart's persisted-shape version (`SCHEMA_VERSION`) that wrote it. */
  readonly schema?: number;
  /**
   * Unique per write. After a data loss two instances may write the same version; the write id
   * tells their records apart, so a compare-and-set never lands on a record its writer never saw.
   */
  readonly writeId?: string;
  readonly status: 'active';
  readonly value: StateValue;
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

/**
 * The answer of a compare-and-set: the record written, or what the store holds instead.
 * `currentVersion` is the stored version even when the stored snapshot is missing or could
 * not be decoded (`current` is then `null`), so that a writer can replace it.
 */
export type CompareAndSetResult =
  | { readonly ok: true; readonly record: StoredRecord }
  | { readonly ok: false; readonly current: StoredRecord | null; readonly currentVersion: number };

/**
 * Where breakers keep their shared statechart snapshots. Breakers of one name on one store
 * behave as one statechart: each write is a compare-and-set on the record's version, and
 * every write reaches the other instances through the change feed.
 */
export interface BreakerStore {
  /** The clock breakers on this store decide with (Redis server time for `RedisStore`). */
  readonly clock: Clock;
  /** The longest a call waits on this store (half-open admission), in ms; unbounded if unset. */
  readonly timeout?: number;
  /** The stored record of a breaker, or `null` when there is none. */
  load(name: string): Promise<StoredRecord | null>;
  /**
   * Writes `record` only if the stored version is `expectedVersion` (0: no record, or one
   * that cannot be read) and, when `expectedWriteId` is given, the stored snapshot's `writeId`
   * is that one; otherwise returns what is stored. `record.version` must be greater than
   * `expectedVersion`: versions only grow, even across a store that lost its data.
   */
  compareAndSet(
    name: string,
    expectedVersion: number,
    record: StoredRecord,
    expectedWriteId?: string,
  ): Promise<CompareAndSetResult>;
  /**
   * Calls `listener` with every record written for `name`; returns the unsubscribe function.
   * A store that meets a stored record it cannot restore reports it to `onProblem` (with the
   * key, e.g. a `CorruptRecordError`) and reads it as absent, so that the next write replaces
   * it; an embedded store, which only holds what breakers wrote, may ignore `onProblem`.
   */
  subscribe(
    name: string,
    listener: (record: StoredRecord) => void,
    onProblem?: (error: Error) => void,
  ): () => void;
  /**
   * The stored record when the store can tell without waiting (`undefined` when it cannot),
   * so that an embedded store needs no asynchronous first load.
   */
  peek?(name: string): StoredRecord | null | undefined;
}
