import { orderOf, type RecordStamp, supersedes } from '../record/order.js';

/** Where a record came from: the change feed, a read (load, resync), or a conflict's reply. */
export type RecordSource = 'feed' | 'read' | 'conflict';

/**
 * What an instance does with a record it meets:
 * - `confirm`: it is a write of this instance whose answer had not come; its events are done.
 * - `adopt`: it is newer than the local base (or a sibling the store holds): take it as the base
 *   and apply the unconfirmed local events again on top.
 * - `recreate`: the store holds less than the local base (flushed, evicted, restored from an
 *   old dump), or refused a write on the very base it holds: write the local state back over
 *   what is stored.
 * - `ignore`: nothing to learn (the base itself, or an older record that arrived late).
 */
export type Reconciliation = 'ignore' | 'confirm' | 'adopt' | 'recreate';

/** What an instance knows when a record arrives. */
export interface ReplicaKnowledge {
  /** The stamp of the record the local state builds on; `null` before any. */
  readonly base: RecordStamp | null;
  /** Whether `writeId` names a write of this instance whose answer has not come. */
  isOwnWrite(writeId: string | undefined): boolean;
}

function sameStamp(a: RecordStamp | null, b: RecordStamp | null): boolean {
  return a === null ? b === null : b !== null && orderOf(a, b) === 'same';
}

/**
 * The one rule by which an instance follows the stored record, whatever the interleaving of
 * its own writes, feed messages, reads and conflicts. It never drops a record newer than the
 * local base: a newer record is adopted the moment it arrives, even while a write is in flight
 * (that write was made on an older base, so it will meet a conflict, not land over the newer
 * record).
 *
 * A feed message or a read that is older than the base arrived late and is ignored. Only the
 * reply of a failed compare-and-set says what the store holds at that instant; when it holds
 * less than the base the write was made on, and the base has not moved since, the store lost
 * data and the local state is written back. When it holds that very base and still refused the
 * write, the record's write key no longer matches its snapshot: written over as well.
 *
 * @param stored the record met (`null`: none stored, or unreadable)
 * @param sentBase for a conflict: the base the refused write was made on
 */
export function reconcile(
  known: ReplicaKnowledge,
  stored: RecordStamp | null,
  source: RecordSource,
  sentBase: RecordStamp | null = null,
): Reconciliation {
  if (stored !== null && stored.writeId !== undefined && known.isOwnWrite(stored.writeId)) {
    return 'confirm';
  }
  if (stored !== null && supersedes(stored, known.base)) return 'adopt';
  if (source !== 'conflict' || !sameStamp(known.base, sentBase)) return 'ignore';
  // A refused write whose base has not moved: the store holds less than that base (data lost),
  // or the very same record yet refused the expectation (its write key lost or altered), which
  // retrying unchanged would meet for ever. Either way the local state is written over it.
  return 'recreate';
}
