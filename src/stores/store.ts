import type { Clock } from '../clock.js';
import type { WindowCounts } from '../machine.js';
import type { RecordStamp } from '../record/order.js';
import type { StoredRecord } from '../record/shape.js';
import type { FleetTotals, WindowFlush } from '../window/buckets.js';

// The protocol speaks in records; their shape is the record module's.
export type { PersistedBreakerSnapshot, StoredRecord } from '../record/shape.js';

/**
 * The answer of a compare-and-set: the record written, or what the store holds instead.
 * `currentVersion` is the stored version even when the stored snapshot is missing or could
 * not be decoded (`current` is then `null`), so that a writer can replace it.
 */
export type CompareAndSetResult =
  | { readonly ok: true; readonly record: StoredRecord }
  | { readonly ok: false; readonly current: StoredRecord | null; readonly currentVersion: number };

/**
 * One follower of a breaker's record on a store: a breaker instance. The store hands it every
 * record it meets for the name, in the order it meets them; the follower decides by record
 * order (`orderOf`) whether one is news, so that no bookkeeping in the store can withhold a
 * newer record from it.
 */
export interface StoreFollower {
  /** A record the store published or read for the name. */
  record(record: StoredRecord): void;
  /**
   * A stored record the store cannot restore (with the key, e.g. a `CorruptRecordError`), read
   * as absent so that the next write replaces it, or a `LostRecordError` when the store holds
   * less than the follower's {@link StoreFollower.stamp} says it had.
   */
  problem?(error: Error): void;
  /**
   * The stamp of the record the follower's state builds on (`null` before any). A store that
   * resyncs compares it with what it holds and hands over only what the follower lacks.
   */
  stamp?(): RecordStamp | null;
  /**
   * The record the follower held (`stamp`, one that lapses) expired with its keys and nothing is
   * stored: no data was lost, and an idle record is worth no more than none.
   */
  lapsed?(stamp: RecordStamp): void;
}

/**
 * One breaker's stored record as operator tools read it: a record this statechart can restore,
 * or a corrupt one with the reason and the key to blame (a store's breakers read that as absent,
 * and their next write replaces it).
 */
export type RecordEntry =
  | { readonly name: string; readonly record: StoredRecord; readonly problem?: undefined }
  | {
      readonly name: string;
      readonly record: null;
      /** What is wrong, e.g. `not JSON (...)`. */
      readonly problem: string;
      /** Where the record lives (a Redis key), when the store knows. */
      readonly key: string | undefined;
      /**
       * The version a compare-and-set compares with for this record: the stored version, or 0
       * when the version itself cannot be read.
       */
      readonly version: number;
      /** The stored snapshot, parsed when it is JSON (else `undefined`), to recover what can be. */
      readonly snapshot: unknown;
    };

/**
 * A follower of every breaker on a store (operator tools: a live listing, a change log). It gets
 * every record written under the store's prefix, in the order the store meets them.
 */
export interface StoreWatcher {
  /** A record written for breaker `name`. */
  record(name: string, record: StoredRecord): void;
  /** A change the store heard for `name` but cannot restore (a `CorruptRecordError`). */
  problem?(name: string, error: Error): void;
  /**
   * Changes may have been missed (the change feed reconnected, or a numbered change message is
   * missing): read again what matters.
   */
  missed?(): void;
}

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
  /**
   * Milliseconds an instance waits (up to twice that) before writing a transition its own timer
   * made (open to half-open, an expired probe lease) when another instance wrote the record it
   * leaves: every instance's timer fires at once, and that instance's write then arrives first
   * and is adopted. 0 or unset: written at once (an embedded store, where a conflict costs
   * nothing).
   */
  readonly timedWriteSpread?: number;
  /**
   * Milliseconds after its last write that the store lets an idle record (closed, no failure
   * counted) expire; unset: records are kept for ever.
   */
  readonly recordTtl?: number | undefined;
  /** The stored record of a breaker, or `null` when there is none. */
  load(name: string): Promise<StoredRecord | null>;
  /**
   * Writes `record` only if the stored version is `expectedVersion` (0: no record, or one
   * that cannot be read) and, when `expectedWriteId` is given, the stored snapshot's `writeId`
   * is that one; otherwise returns what is stored. `record.version` must be greater than
   * `expectedVersion`: versions only grow, even across a store that lost its data.
   *
   * `fence` marks an operator's write (an id the writer keeps across its retries): a store that
   * supports it answers a conflict of such a write by holding every other writer back until the
   * writer's next write with the same fence lands (or a short while passes), so that an
   * operator's action lands whatever the fleet's write rate. Other writers' compare-and-sets
   * wait meanwhile; they never fail for it.
   */
  compareAndSet(
    name: string,
    expectedVersion: number,
    record: StoredRecord,
    expectedWriteId?: string,
    fence?: string,
  ): Promise<CompareAndSetResult>;
  /**
   * Lets the other writers go on: the writer of `fence` met a conflict and then had nothing to
   * write (or gave up). Only that writer's fence is lifted (optional: stores with fences).
   */
  liftFence?(name: string, fence: string): Promise<void>;
  /**
   * Milliseconds until the stored record of `name` expires (an idle record on a store whose
   * fleet writes with `recordTtl`), or `null` when it does not expire or is not there
   * (optional: stores whose records may expire). Operator views use it to drop an expired
   * record when the store drops it, since an expiry publishes no change.
   */
  recordExpiry?(name: string): Promise<number | null>;
  /**
   * Follows `name`: the follower gets every record written for it (a plain function gets the
   * records only, and `onProblem` the problems). Returns the unsubscribe function.
   */
  subscribe(
    name: string,
    follower: StoreFollower | ((record: StoredRecord) => void),
    onProblem?: (error: Error) => void,
  ): () => void;
  /**
   * Stops `follower` (the object given to {@link subscribe}) following `name`, as the function
   * `subscribe` returned would (optional). A breaker on a store that has it drops that function
   * instead of keeping one per breaker.
   */
  unsubscribe?(name: string, follower: StoreFollower): void;
  /**
   * The stored record when the store can tell without waiting (`undefined` when it cannot),
   * so that an embedded store needs no asynchronous first load.
   */
  peek?(name: string): StoredRecord | null | undefined;
  /**
   * Every breaker with a record, corrupt ones included (operator tools; optional). Each breaker
   * comes once, in no particular order. Reading never reports to followers nor repairs.
   */
  listRecords?(): AsyncIterable<RecordEntry>;
  /** One breaker's record as {@link listRecords} gives it, or `null` when it has none (optional). */
  readRecord?(name: string): Promise<RecordEntry | null>;
  /**
   * Follows every breaker on the store (operator tools; optional). Returns the unsubscribe
   * function. A watcher subscribed before a {@link listRecords} misses no change after it.
   */
  watchAll?(watcher: StoreWatcher): () => void;
  /**
   * Adds one instance's window counts to the fleet's window of `name` and returns the fleet's
   * totals over the window for the flush's generation, in one step. Buckets that left the window
   * go by themselves. A store without it leaves each instance deciding on its own window.
   */
  flushWindow?(name: string, flush: WindowFlush): Promise<FleetTotals>;
  /**
   * The fleet's totals over the window of `name` for a generation, as {@link flushWindow}
   * returns them, adding nothing (operator views; optional).
   */
  readWindow?(name: string, read: WindowRead): Promise<WindowCounts>;
}

/** Which window {@link BreakerStore.readWindow} reads: a generation's, over the window ending at `at`. */
export type WindowRead = Pick<WindowFlush, 'generation' | 'at' | 'window'>;

/**
 * A follower given as a function (and a problem listener) as a {@link StoreFollower} whose
 * stamp is the newest record it was handed, so that a resync hands it only what it lacks.
 */
export function asFollower(
  follower: StoreFollower | ((record: StoredRecord) => void),
  onProblem?: (error: Error) => void,
): StoreFollower {
  if (typeof follower !== 'function') return follower;
  let last: RecordStamp | null = null;
  return {
    record(record) {
      const stamp = { version: record.version, writeId: record.snapshot.writeId };
      if (last === null || stamp.version >= last.version) last = stamp;
      follower(record);
    },
    problem: onProblem,
    stamp: () => last,
  };
}
