import { MAX_VERSION } from '../../record/order.js';
import type { StoredRecord } from '../../record/shape.js';
import { decodeSnapshot, parseVersion } from '../../record/validation.js';

/** A change-feed message: the record a compare-and-set wrote, and whose it is. */
export interface ChangeMessage {
  readonly name: string;
  readonly record: StoredRecord;
}

/** Which of a breaker's keys holds what a problem is about. */
export type RecordField = 'snapshot' | 'version';

/** Why stored values are not a record this statechart can restore, and which key is to blame. */
export interface RecordProblem {
  readonly field: RecordField;
  readonly problem: string;
  /** The key is missing while its sibling exists: evicted or expired, not garbled. */
  readonly missing?: true;
}

/** What the stored values of one breaker decode to: a record, none, or a problem. */
export type Decoded =
  | { readonly record: StoredRecord | null; readonly problem?: undefined }
  | { readonly record: null; readonly problem: RecordProblem };

/**
 * A string a script returned, or `null` for a missing value: Redis turns Lua's `false` (nil)
 * into `null`, ioredis-mock keeps it `false`, and a nil inside a table may come as `undefined`.
 * Every one of them reads as missing.
 */
export function bulk(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/**
 * Decodes a breaker's stored strings. Both missing: no record. Anything a restore would choke
 * on (a missing half, a non-numeric version, bad JSON, another schema, a state or counter the
 * statechart does not know, a key of another type) is a problem naming the key to blame.
 * @param wrongType the fields whose keys held another type than a string
 */
export function decodeRecord(
  version: string | null | undefined,
  snapshot: string | null | undefined,
  wrongType: readonly RecordField[] = [],
): Decoded {
  const wrong = wrongType[0];
  if (wrong !== undefined) {
    return { record: null, problem: { field: wrong, problem: 'the key holds another type' } };
  }
  if (version == null && snapshot == null) return { record: null };
  if (version == null) {
    return {
      record: null,
      problem: { field: 'version', problem: 'missing beside a snapshot', missing: true },
    };
  }
  const parsedVersion = parseVersion(version);
  if (parsedVersion === null) {
    return {
      record: null,
      problem: {
        field: 'version',
        problem: `${JSON.stringify(version)} is not a version (a whole number from 1 to below ${MAX_VERSION})`,
      },
    };
  }
  if (snapshot == null) {
    return {
      record: null,
      problem: {
        field: 'snapshot',
        problem: `missing beside version ${parsedVersion}`,
        missing: true,
      },
    };
  }
  const parsed = decodeSnapshot(snapshot);
  if ('problem' in parsed) {
    return { record: null, problem: { field: 'snapshot', problem: parsed.problem } };
  }
  return { record: { version: parsedVersion, snapshot: parsed.snapshot } };
}

/** The fields a script's space-separated list names. */
export function wrongFields(list: unknown): RecordField[] {
  if (typeof list !== 'string') return [];
  return list.split(' ').filter((f): f is RecordField => f === 'snapshot' || f === 'version');
}

/** A change-feed message split into its parts, its record not yet decoded. */
export interface SplitChange {
  readonly name: string;
  /** The store's change counter after this change; `null` where changes are not numbered. */
  readonly seq: number | null;
  readonly version: string;
  readonly snapshot: string;
}

/** A change-feed message with its record decoded. */
export interface RawChange {
  readonly name: string;
  readonly decoded: Decoded;
  readonly seq: number | null;
}

/**
 * Splits `version\nsnapshotJSON\nseq\nname`, as the compare-and-set script publishes it, without
 * decoding the record (a store decodes only the records of names it follows). JSON holds no raw
 * newline, so the first three newlines split the message even when the name has some. Returns
 * `null` for a message that is not shaped like one.
 */
export function splitChange(message: string): SplitChange | null {
  const first = message.indexOf('\n');
  const second = first < 0 ? -1 : message.indexOf('\n', first + 1);
  const third = second < 0 ? -1 : message.indexOf('\n', second + 1);
  if (third < 0) return null;
  const seqText = message.slice(second + 1, third);
  const seq = /^[0-9]+$/.test(seqText) ? Number(seqText) : null;
  if (seq === null && seqText !== '') return null;
  return {
    name: message.slice(third + 1),
    seq,
    version: message.slice(0, first),
    snapshot: message.slice(first + 1, second),
  };
}

/** Splits a change-feed message and decodes its record; `null` for one not shaped like one. */
export function readChange(message: string): RawChange | null {
  const split = splitChange(message);
  if (split === null) return null;
  return {
    name: split.name,
    seq: split.seq,
    decoded: decodeRecord(split.version, split.snapshot),
  };
}

/** Decodes a change-feed message; `null` for one that does not hold a usable record. */
export function decodeChange(message: string): ChangeMessage | null {
  const change = readChange(message);
  const record = change?.decoded.record;
  return change == null || record == null ? null : { name: change.name, record };
}
