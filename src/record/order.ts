/**
 * How records are ordered: the one rule every layer (stores, replicas, operator tools) uses to
 * tell which of two records of a breaker is newer.
 *
 * Versions grow by at least one with every compare-and-set, so a higher version is newer. Two
 * records of one version with different write ids are siblings: after a data loss two instances
 * may each re-create the record at the same version. Neither is older; the one the store holds
 * is the one to follow, which is why a sibling met in the store is treated like a newer record.
 */

/** What identifies one write of a breaker's record. */
export interface RecordStamp {
  readonly version: number;
  /** The write's unique id; `undefined` for a record written without one. */
  readonly writeId: string | undefined;
  /**
   * The write id that began the record's line: the first record written where none was stored
   * (on a store whose idle records expire; `undefined` elsewhere). Every record built on it
   * carries it on.
   */
  readonly origin?: string | undefined;
  /**
   * Whether the store lets this record expire (an idle record on a store with `recordTtl`):
   * once it has, a record of another line is what the store holds, whatever its version.
   */
  readonly lapses?: boolean | undefined;
}

/** How a record stands against a known one. */
export type RecordOrder = 'older' | 'same' | 'sibling' | 'newer';

/**
 * The version limit. Far below 2^53 so that versions stay exact in a double; a stored version
 * must be below it, so that the next write always has room, and one at or above it is a corrupt
 * record that the next write replaces.
 */
export const MAX_VERSION = 2 ** 50;

/**
 * How far apart, per millisecond of the store's clock, {@link versionAbove} puts its versions:
 * a fleet that writes fewer records than this per millisecond on average never counts its way
 * up to the next one.
 */
export const VERSIONS_PER_MS = 64;

/**
 * A version above every version a fleet holds when the stored one cannot be read (a corrupt or
 * out-of-range version key): above every version reached by counting from 1, or from an earlier
 * such version, at under {@link VERSIONS_PER_MS} writes per millisecond. A record written over an
 * unreadable one at this version is newer than whatever each instance holds, so that every
 * instance adopts it instead of ignoring it as a late message (and writing its old state back
 * over it later). Leaves the limit out of reach for centuries: `now` is epoch ms, about 2^41,
 * and the limit is 2^50.
 * @param now the store's clock, epoch ms
 */
export function versionAbove(now: number): number {
  const version = Math.floor(Math.max(0, now)) * VERSIONS_PER_MS;
  return Math.min(Math.max(version, 1), MAX_VERSION - 1);
}

/** Whether `version` is a version a stored record may hold: a whole number from 1 to below `MAX_VERSION`. */
export function isVersion(version: unknown): version is number {
  return (
    typeof version === 'number' &&
    Number.isInteger(version) &&
    version >= 1 &&
    version < MAX_VERSION
  );
}

/**
 * Why `version` cannot be the version of a record written over one at `expected` (0: none), or
 * `undefined` when it can: a version ({@link isVersion}) above `expected`. Every store checks a
 * compare-and-set with it, so that what one store writes, every reader takes.
 */
export function nextVersionProblem(expected: number, version: unknown): string | undefined {
  if (isVersion(version) && version > expected) return undefined;
  return `record version ${String(version)} must be a whole number above ${expected} and below ${MAX_VERSION}`;
}

/** How `record` stands against `known` (`null`: nothing known, so any record is newer). */
export function orderOf(record: RecordStamp, known: RecordStamp | null): RecordOrder {
  if (known === null) return 'newer';
  if (record.version !== known.version) return record.version > known.version ? 'newer' : 'older';
  return record.writeId === known.writeId ? 'same' : 'sibling';
}

/**
 * Whether a record the store holds should replace `known`: newer, or a sibling, or (when `known`
 * lapses) a record of another line. An idle record that expired left nothing behind, and the
 * record written since, where none was stored, begins its versions again: it is older only in
 * number. An older record of the same line is a late message or lost data, never a successor.
 */
export function supersedes(record: RecordStamp, known: RecordStamp | null): boolean {
  const order = orderOf(record, known);
  if (order === 'newer' || order === 'sibling') return true;
  return order === 'older' && known?.lapses === true && record.origin !== known.origin;
}

/** The stamp of a stored record (its `lapses` is the store's to say). */
export function stampOf(record: {
  readonly version: number;
  readonly snapshot: {
    readonly writeId?: string | undefined;
    readonly origin?: string | undefined;
  };
}): RecordStamp {
  const { writeId, origin } = record.snapshot;
  return origin === undefined
    ? { version: record.version, writeId }
    : { version: record.version, writeId, origin };
}
