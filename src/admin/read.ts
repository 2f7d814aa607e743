import { checkName } from '../name.js';
import { CorruptRecordError } from '../record/errors.js';
import { recordProblem } from '../record/validation.js';
import type { BreakerStore, RecordEntry } from '../stores/store.js';
import { describeValue } from '../validate.js';
import { BreakerNotFoundError } from './errors.js';
import { type BreakerInfo, type BreakerListing, describeRecord } from './view.js';

/** @throws TypeError when `store` is not a breaker store. */
export function checkStore(store: unknown, who: string): BreakerStore {
  const candidate = store as Partial<BreakerStore> | null;
  if (
    candidate === null ||
    typeof candidate !== 'object' ||
    typeof candidate.load !== 'function' ||
    typeof candidate.compareAndSet !== 'function' ||
    typeof candidate.subscribe !== 'function'
  ) {
    throw new TypeError(
      `${who}: store must be a breaker store (MemoryStore, RedisStore), got ${describeValue(store)}`,
    );
  }
  return store as BreakerStore;
}

/**
 * An entry checked against the statechart: a store that does not validate what it holds (an
 * embedded one, a user's own) still never hands an operator tool a record it cannot restore.
 */
export function checkedEntry(entry: RecordEntry): RecordEntry {
  if (entry.record === null) return entry;
  const problem = recordProblem(entry.record);
  if (problem === undefined) return entry;
  return {
    name: entry.name,
    record: null,
    problem,
    key: undefined,
    version: entry.record.version,
    snapshot: entry.record.snapshot,
  };
}

/** One breaker's entry, through `readRecord` when the store has it, else `load`. */
export async function readEntry(store: BreakerStore, name: string): Promise<RecordEntry | null> {
  if (store.readRecord !== undefined) {
    const entry = await store.readRecord(name);
    return entry === null ? null : checkedEntry(entry);
  }
  const record = await store.load(name);
  return record === null ? null : checkedEntry({ name, record });
}

/** The listing of an entry, seen at `now` on the store's clock. */
export function listingOf(entry: RecordEntry, now: number): BreakerListing {
  if (entry.record !== null) return describeRecord(entry.name, entry.record, now);
  return {
    name: entry.name,
    corrupt: true,
    problem: entry.problem,
    key: entry.key,
    version: entry.version,
  };
}

/**
 * The breaker `name` as the store holds it.
 * @throws BreakerNotFoundError when the store holds no record of it.
 * @throws CorruptRecordError when its record cannot be restored (naming the key).
 * @throws the store's error when it does not answer (`RedisStoreTimeoutError`).
 */
export async function readBreaker(store: BreakerStore, name: string): Promise<BreakerInfo> {
  checkStore(store, 'readBreaker');
  checkName(name, 'readBreaker: breaker name');
  const entry = await readEntry(store, name);
  if (entry === null) throw new BreakerNotFoundError(name);
  if (entry.record === null) throw new CorruptRecordError(name, entry.problem, entry.key);
  return describeRecord(name, entry.record, store.clock.now());
}

/**
 * Every breaker the store holds a record of, sorted by name; a corrupt record is listed as
 * such (with its key and problem), never thrown. On Redis: `SCAN`, never `KEYS`, and every
 * master of a Cluster.
 * @throws TypeError when the store cannot list (it has no `listRecords`).
 * @throws the store's error when it does not answer (`RedisStoreTimeoutError`).
 */
export async function listBreakers(store: BreakerStore): Promise<BreakerListing[]> {
  checkStore(store, 'listBreakers');
  if (store.listRecords === undefined) {
    throw new TypeError('listBreakers: this store cannot list its breakers (no listRecords)');
  }
  const entries: RecordEntry[] = [];
  for await (const entry of store.listRecords()) entries.push(checkedEntry(entry));
  const now = store.clock.now();
  return entries
    .map((entry) => listingOf(entry, now))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
