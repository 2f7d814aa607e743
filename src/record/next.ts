import { lineageAfter } from './lineage.js';
import type { PersistedBreakerSnapshot, StoredRecord } from './shape.js';

/** What a new record carries over from the record it is built on. */
export interface Descent {
  /** The new record's lineage (see `lineageAfter`); `undefined` or `''`: none. */
  readonly lineage: string | undefined;
  /** The line of the base (see `RecordStamp.origin`); `undefined`: none, a new one begins. */
  readonly origin: string | undefined;
}

/** A record built on nothing: none stored, or one that could not be read. */
export const NO_DESCENT: Descent = { lineage: undefined, origin: undefined };

/** What a record written on `base` carries over from it. */
export function descentOf(base: PersistedBreakerSnapshot | null): Descent {
  if (base === null) return NO_DESCENT;
  return { lineage: lineageAfter(base.lineage, base.writeId), origin: base.origin };
}

// The keys of a snapshot as the statechart persists it (every instance's own writes), in order.
const PLAIN_KEYS: ReadonlySet<string> = new Set([
  'status',
  'value',
  'historyValue',
  'context',
  'children',
  'schema',
]);

// Whether `snapshot` holds the plain keys, all of them, and the write's keys at most.
function isPlain(snapshot: PersistedBreakerSnapshot): boolean {
  let keys = 0;
  for (const key in snapshot) {
    if (key === 'writeId' || key === 'lineage' || key === 'origin') continue;
    if (!PLAIN_KEYS.has(key)) return false;
    keys++;
  }
  return keys === PLAIN_KEYS.size;
}

// Written as literals, one per combination of the optional keys: V8 then keeps every key in the
// object itself, where an object grown key by key keeps those past its fourth in a second array
// (tens of bytes more on every record a process keeps, an open breaker's among them).
function plainRecordSnapshot(
  s: PersistedBreakerSnapshot,
  writeId: string,
  lineage: string | undefined,
  origin: string | undefined,
): object {
  const { status, value, historyValue, context, children, schema } = s;
  if (lineage === undefined) {
    return origin === undefined
      ? { status, value, historyValue, context, children, schema, writeId }
      : { status, value, historyValue, context, children, schema, writeId, origin };
  }
  return origin === undefined
    ? { status, value, historyValue, context, children, schema, writeId, lineage }
    : { status, value, historyValue, context, children, schema, writeId, lineage, origin };
}

// Any other snapshot (an operator's, one read with keys of another version) is copied key by key.
function keyByKey(
  snapshot: PersistedBreakerSnapshot,
  writeId: string,
  lineage: string | undefined,
  origin: string | undefined,
): object {
  const next: Record<string, unknown> = {};
  for (const key in snapshot) {
    if (key !== 'writeId' && key !== 'lineage' && key !== 'origin') {
      next[key] = snapshot[key as keyof PersistedBreakerSnapshot];
    }
  }
  next.writeId = writeId;
  if (lineage !== undefined) next.lineage = lineage;
  if (origin !== undefined) next.origin = origin;
  return next;
}

/**
 * The record that writes the statechart's `snapshot` at `version` with a fresh `writeId`, built
 * on a base as `descent` says: every writer (an instance, an operator) builds its records here,
 * so that every instance orders them and learns from their lineage alike.
 * @param namesLine whether the record names its line (`origin`): where records may expire, a
 * record written where none was stored begins a line, and every record built on it carries it on
 */
export function nextRecord(
  snapshot: PersistedBreakerSnapshot,
  version: number,
  writeId: string,
  descent: Descent,
  namesLine: boolean,
): StoredRecord {
  const lineage =
    descent.lineage !== undefined && descent.lineage !== '' ? descent.lineage : undefined;
  const origin = namesLine ? (descent.origin ?? writeId) : undefined;
  const next = isPlain(snapshot)
    ? plainRecordSnapshot(snapshot, writeId, lineage, origin)
    : keyByKey(snapshot, writeId, lineage, origin);
  return { version, snapshot: next as unknown as PersistedBreakerSnapshot };
}
