import type { WindowCounts } from '../../machine.js';
import { isIdleRecord } from '../../record/lapse.js';
import { MAX_VERSION } from '../../record/order.js';
import { encodeSnapshot } from '../../record/validation.js';
import { topLevelState } from '../../state.js';
import {
  bucketOf,
  type FleetTotals,
  firstLiveBucket,
  type WindowFlush,
  windowTtl,
} from '../../window/buckets.js';
import type { StoredRecord } from '../store.js';
import { FENCE_MS } from './fence.js';
import type { BreakerKeys } from './keys.js';
import type { Publication } from './publication.js';

// One module builds every script's arguments (as BullMQ does), so that callers never touch
// positional arrays; the scripts' headers name the same positions.

/** What a compare-and-set writes, besides the record. */
export interface CompareAndSetCall {
  readonly keys: BreakerKeys;
  /** The change counter's key (numbered publication). */
  readonly sequenceKey: string;
  /** The breaker's operator fence key. */
  readonly fenceKey: string;
  readonly name: string;
  readonly expectedVersion: number;
  readonly expectedWriteId: string | undefined;
  readonly record: StoredRecord;
  readonly channel: string;
  readonly publication: Publication;
  /** Milliseconds an idle record lives after this write; unset: forever. */
  readonly recordTtl: number | undefined;
  /** An operator's fence id (see `BreakerStore.compareAndSet`); unset: a fleet write. */
  readonly fence: string | undefined;
}

// compareAndSet-8.lua's key count, and where its deadline (ARGV[10]) sits in the call.
const CAS_KEYS = 8;
const CAS_DEADLINE = CAS_KEYS + 10 - 1;

/** `compareAndSet-8.lua`'s keys and arguments; set the deadline with {@link setDeadline}. */
export function compareAndSetArgs(call: CompareAndSetCall): (string | number)[] {
  const { keys, record, publication } = call;
  const { snapshot, version } = record;
  const { context } = snapshot;
  return [
    keys.snapshot,
    keys.version,
    keys.state,
    keys.counter,
    keys.openedAt,
    keys.write,
    publication === 'numbered' ? call.sequenceKey : keys.write,
    call.fenceKey,
    call.expectedVersion,
    version,
    encodeSnapshot(snapshot),
    topLevelState(snapshot.value),
    context.failures,
    context.openedAt === null ? '' : Math.round(context.openedAt),
    call.channel,
    call.name,
    call.expectedWriteId ?? '',
    0,
    snapshot.writeId ?? '',
    MAX_VERSION,
    publication,
    call.recordTtl !== undefined && isIdleRecord(snapshot) ? call.recordTtl : '',
    call.fence ?? '',
    FENCE_MS,
  ];
}

/** Sets the server time (ms) after which `compareAndSet-8.lua` refuses the write as late. */
export function setDeadline(args: (string | number)[], deadline: number): void {
  args[CAS_DEADLINE] = Math.ceil(deadline);
}

/** `flushWindow-2.lua`'s keys and arguments. */
export function flushWindowArgs(
  windowKey: string,
  flushKey: string,
  flush: WindowFlush,
  deadline: number,
  idTtl: number,
): (string | number)[] {
  return [
    windowKey,
    flushKey,
    flush.generation,
    bucketOf(flush.at, flush.window),
    firstLiveBucket(flush.at, flush.window),
    flush.calls,
    flush.failures,
    flush.slow,
    flush.instance,
    windowTtl(flush.window),
    deadline,
    idTtl,
    flush.flushMs,
  ];
}

/**
 * The fleet's totals as `flushWindow-2.lua` returns them, with what the flusher learns of the
 * other instances counting in the window.
 */
export function fleetTotals(reply: readonly unknown[]): FleetTotals {
  const [otherInstances, otherFlushMs] = reply.slice(5).map(Number);
  return {
    ...windowCounts(reply),
    otherInstances: otherInstances ?? 0,
    otherFlushMs: otherFlushMs ?? 0,
  };
}

/** The fleet's totals alone (a read of the window, for operator views). */
export function windowCounts(reply: readonly unknown[]): WindowCounts {
  const [calls, failures, slow, failingInstances, slowInstances] = reply.map(Number);
  return {
    calls: calls ?? 0,
    failures: failures ?? 0,
    slow: slow ?? 0,
    failingInstances: failingInstances ?? 0,
    slowInstances: slowInstances ?? 0,
  };
}
