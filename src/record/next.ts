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
  // Built key by key, in one order: spreads and rest patterns of these objects end up, once
  // their copy sites see many shapes, with a hidden class of their own per record in V8
  // (several hundred bytes on every record a process keeps).
  const next: Record<string, unknown> = {};
  for (const key in snapshot) {
    if (key !== 'writeId' && key !== 'lineage' && key !== 'origin') {
      next[key] = snapshot[key as keyof PersistedBreakerSnapshot];
    }
  }
  next.writeId = writeId;
  if (descent.lineage !== undefined && descent.lineage !== '') next.lineage = descent.lineage;
  if (namesLine) next.origin = descent.origin ?? writeId;
  return { version, snapshot: next as unknown as PersistedBreakerSnapshot };
}
