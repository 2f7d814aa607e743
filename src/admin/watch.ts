import type { TransitionReason } from '../machine.js';
import { checkName } from '../name.js';
import { CorruptRecordError } from '../record/errors.js';
import { isIdleRecord } from '../record/lapse.js';
import { orderOf, type RecordStamp, stampOf, supersedes } from '../record/order.js';
import type { CircuitState } from '../state.js';
import type { BreakerStore, RecordEntry, StoredRecord } from '../stores/store.js';
import { checkedEntry, checkStore, listingOf, readEntry } from './read.js';
import type { BreakerInfo, BreakerListing } from './view.js';

/** A change of a breaker's top-level state, as the store's change feed carried it. */
export interface BreakerTransition {
  readonly name: string;
  /**
   * The state before. A breaker the watch had not seen with a readable record comes from
   * `closed`, the state of a breaker without one.
   */
  readonly from: CircuitState;
  readonly to: CircuitState;
  readonly reason: TransitionReason;
  readonly generation: number;
  /** The version of the record that made the change. */
  readonly version: number;
  /** When the watch heard it, epoch ms on the store's clock. */
  readonly at: number;
  /** The breaker as the new record shows it. */
  readonly breaker: BreakerInfo;
}

/** Options of {@link watchBreakers}. */
export interface WatchOptions {
  /**
   * Only these breakers (followed one by one, through the store's own resync). Default: every
   * breaker on the store, which needs a store that can watch them all (`watchAll`).
   */
  names?: readonly string[];
  /**
   * Every new record of a watched breaker, whether it changes the top-level state or not (a
   * failure counted), and a corrupt record as it is met.
   */
  onChange?: (breaker: BreakerListing) => void;
  /**
   * A watched breaker's record is gone from the store: lost with the store's data, deleted, or
   * an idle record that expired (`recordTtl`). It lists no more, as in `listBreakers`.
   */
  onRemove?: (name: string) => void;
  /** A store problem the watch met (a re-read after missed changes failed); it goes on. */
  onError?: (error: Error) => void;
}

/** A running watch. */
export interface BreakerWatch {
  /**
   * The watched breakers as they stand, sorted by name, once the watch follows the change feed
   * and has read them (no change after this is missed). Rejects when the store does not answer;
   * the watch stays subscribed until closed.
   */
  readonly ready: Promise<BreakerListing[]>;
  /** Stops watching. */
  close(): void;
}

function byName(a: BreakerListing, b: BreakerListing): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

// A listener of ours that throws must not stop the feed that other listeners depend on.
function safely<T>(listener: ((value: T) => void) | undefined, value: T): void {
  if (listener === undefined) return;
  try {
    listener(value);
  } catch (error) {
    process.emitWarning(error as Error);
  }
}

class Watch {
  readonly #store: BreakerStore;
  readonly #listener: (transition: BreakerTransition) => void;
  readonly #options: WatchOptions;
  readonly #names: ReadonlySet<string> | null;
  /** The newest readable record met per breaker, and how it lists. */
  readonly #known = new Map<string, { readonly stamp: RecordStamp; readonly info: BreakerInfo }>();
  /** Breakers whose last record met was corrupt. */
  readonly #corrupt = new Map<string, BreakerListing>();
  /** Records met before the first read completed, handled after it in arrival order. */
  #queued: [string, StoredRecord][] | null = [];
  #unsubscribe: (() => void)[] = [];
  #closed = false;
  #rereading = false;
  /** Breakers whose record the feed brought while a re-read ran: newer than what it read. */
  #metDuringReread: Set<string> | null = null;
  /** Breakers being read again after an older record came, and the reads' fresh names. */
  readonly #verifying = new Set<string>();
  readonly #verifyReads = new Set<{ readonly fresh: Set<string> }>();
  /** Idle records that expire, by when (store clock): checked then, dropped when gone. */
  readonly #expiring = new Map<string, number>();
  #expiryTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    store: BreakerStore,
    listener: (transition: BreakerTransition) => void,
    options: WatchOptions,
  ) {
    this.#store = store;
    this.#listener = listener;
    this.#options = options;
    this.#names = options.names === undefined ? null : new Set(options.names);
  }

  /** Subscribes first, then reads: a change between the two is met by both and counted once. */
  start(): Promise<BreakerListing[]> {
    const store = this.#store;
    if (this.#names === null) {
      const watchAll = store.watchAll;
      if (watchAll === undefined) {
        throw new TypeError(
          'watchBreakers: this store cannot follow every breaker (no watchAll); name the breakers with the names option',
        );
      }
      this.#unsubscribe.push(
        watchAll.call(store, {
          record: (name, record) => this.#met(name, record),
          problem: (name, error) => this.#problem(name, error),
          missed: () => this.#reread(),
        }),
      );
    } else {
      for (const name of this.#names) {
        this.#unsubscribe.push(
          store.subscribe(name, {
            record: (record) => this.#met(name, record),
            problem: (error) => this.#problem(name, error),
            stamp: () => this.#known.get(name)?.stamp ?? null,
          }),
        );
      }
    }
    return this.#read().then((entries) => {
      const now = store.clock.now();
      for (const entry of entries) {
        const listing = listingOf(entry, now);
        if (listing.corrupt) this.#corrupt.set(entry.name, listing);
        else {
          this.#known.set(entry.name, { stamp: knownStamp(listing.record), info: listing });
          this.#followExpiry(entry.name, listing.record);
        }
      }
      const queued = this.#queued ?? [];
      this.#queued = null;
      // Heard while reading: each counts once, as news only when newer than what was read.
      for (const [name, record] of queued) this.#met(name, record);
      const listings: BreakerListing[] = [...this.#corrupt.values()];
      for (const { info } of this.#known.values()) listings.push(info);
      return listings.sort(byName);
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    this.#unsubscribe = [];
    clearTimeout(this.#expiryTimer);
    this.#expiring.clear();
  }

  async #read(): Promise<RecordEntry[]> {
    const store = this.#store;
    const entries: RecordEntry[] = [];
    if (this.#names === null) {
      for await (const entry of store.listRecords?.() ?? []) entries.push(checkedEntry(entry));
      return entries;
    }
    const read = await Promise.all([...this.#names].map((name) => readEntry(store, name)));
    for (const entry of read) if (entry !== null) entries.push(entry);
    return entries;
  }

  /** `held`: the record is what the store holds now (a re-read), whatever its order. */
  #met(name: string, record: StoredRecord, held = false): void {
    if (this.#closed) return;
    if (this.#names !== null && !this.#names.has(name)) return;
    if (this.#queued !== null) {
      this.#queued.push([name, record]);
      return;
    }
    const known = this.#known.get(name);
    const stamp = stampOf(record);
    if (known !== undefined) {
      const order = orderOf(stamp, known.stamp);
      if (order === 'same') return;
      if (!held && !supersedes(stamp, known.stamp)) {
        // A late message, or the store lost the record and the breaker started again lower
        // (its counter gone, no gap shows): what the store holds tells which.
        if (order === 'older') this.#verify(name);
        return;
      }
    }
    if (!held) {
      this.#metDuringReread?.add(name);
      for (const reading of this.#verifyReads) reading.fresh.add(name);
    }
    this.#followExpiry(name, record);
    const entry = checkedEntry({ name, record });
    const at = this.#store.clock.now();
    const listing = listingOf(entry, at);
    if (listing.corrupt) {
      this.#corrupt.set(name, listing);
      safely(this.#options.onChange, listing);
      return;
    }
    this.#corrupt.delete(name);
    this.#known.set(name, { stamp: knownStamp(record), info: listing });
    safely(this.#options.onChange, listing);
    const from = known?.info.state ?? 'closed';
    if (from === listing.state) return;
    safely(this.#listener, {
      name,
      from,
      to: listing.state,
      reason: listing.reason,
      generation: listing.generation,
      version: listing.version,
      at,
      breaker: listing,
    });
  }

  #problem(name: string, error: Error): void {
    if (this.#closed) return;
    if (this.#names !== null && !this.#names.has(name)) return;
    if (error instanceof CorruptRecordError) {
      const listing: BreakerListing = {
        name,
        corrupt: true,
        problem: error.problem,
        key: error.key,
        version: 0,
      };
      this.#corrupt.set(name, listing);
      safely(this.#options.onChange, listing);
    } else {
      safely(this.#options.onError, error);
    }
  }

  // Changes may have been lost with the feed: what the store holds now is what the watch shows,
  // even a record lower than the one known (the store lost its data and the breaker started
  // again) or none at all, unless the feed brought a newer record of it while reading.
  #reread(): void {
    if (this.#closed || this.#queued !== null || this.#rereading) return;
    this.#rereading = true;
    const fresh = new Set<string>();
    this.#metDuringReread = fresh;
    this.#read()
      .then((entries) => {
        const listed = new Set<string>();
        for (const entry of entries) {
          listed.add(entry.name);
          if (entry.record !== null && !fresh.has(entry.name)) {
            this.#met(entry.name, entry.record, true);
          }
        }
        for (const name of [...this.#known.keys(), ...this.#corrupt.keys()]) {
          if (!listed.has(name) && !fresh.has(name)) this.#removed(name);
        }
      })
      .catch((error: unknown) => safely(this.#options.onError, error as Error))
      .finally(() => {
        this.#rereading = false;
        this.#metDuringReread = null;
      });
  }

  #verify(name: string): void {
    if (this.#verifying.has(name)) return;
    this.#verifying.add(name);
    this.#metDuringReread?.add(name);
    const fresh = new Set<string>();
    const reading = { fresh };
    this.#verifyReads.add(reading);
    readEntry(this.#store, name)
      .then((entry) => {
        if (this.#closed || fresh.has(name)) return;
        if (entry === null) this.#removed(name);
        else if (entry.record !== null) this.#met(name, entry.record, true);
      })
      .catch((error: unknown) => safely(this.#options.onError, error as Error))
      .finally(() => {
        this.#verifying.delete(name);
        this.#verifyReads.delete(reading);
      });
  }

  #removed(name: string): void {
    const had = this.#known.delete(name) || this.#corrupt.delete(name);
    this.#expiring.delete(name);
    if (had) safely(this.#options.onRemove, name);
  }

  // An idle record may expire without a change message: ask the store when, and look then.
  #followExpiry(name: string, record: StoredRecord): void {
    this.#expiring.delete(name);
    const expiry = this.#store.recordExpiry;
    if (expiry === undefined || !isIdleRecord(record.snapshot)) return;
    const stamp = stampOf(record);
    expiry.call(this.#store, name).then(
      (ms) => {
        const known = this.#known.get(name);
        if (ms === null || this.#closed || known === undefined) return;
        if (orderOf(stamp, known.stamp) !== 'same') return;
        this.#expiring.set(name, Date.now() + ms + EXPIRY_MARGIN_MS);
        this.#armExpiry();
      },
      (error: unknown) => safely(this.#options.onError, error as Error),
    );
  }

  #armExpiry(): void {
    clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
    if (this.#closed || this.#expiring.size === 0) return;
    const next = Math.min(...this.#expiring.values());
    this.#expiryTimer = setTimeout(() => this.#checkExpired(), Math.max(0, next - Date.now()));
    this.#expiryTimer.unref();
  }

  #checkExpired(): void {
    this.#expiryTimer = undefined;
    const now = Date.now();
    for (const [name, due] of this.#expiring) {
      if (due > now) continue;
      this.#expiring.delete(name);
      readEntry(this.#store, name).then(
        (entry) => {
          if (this.#closed) return;
          if (entry === null) this.#removed(name);
          else if (entry.record !== null) this.#met(name, entry.record, true);
        },
        (error: unknown) => safely(this.#options.onError, error as Error),
      );
    }
    this.#armExpiry();
  }
}

// Past the key's own expiry, so that the check finds it gone.
const EXPIRY_MARGIN_MS = 50;

/**
 * Follows the breakers on `store` live: `listener` hears every change of a breaker's top-level
 * state (one call per transition, from the store's change feed, written by any instance or
 * operator), and `options.onChange` every new record. On Redis, every breaker under the store's
 * prefix is followed through its one change channel; changes missed while the feed was away are
 * read again when it returns.
 *
 * @example
 * const watch = watchBreakers(store, ({ name, from, to, reason }) => log(name, from, to, reason));
 * console.table(await watch.ready);
 * // ...later: watch.close();
 */
export function watchBreakers(
  store: BreakerStore,
  listener: (transition: BreakerTransition) => void,
  options: WatchOptions = {},
): BreakerWatch {
  checkStore(store, 'watchBreakers');
  if (typeof listener !== 'function') {
    throw new TypeError('watchBreakers: listener must be a function');
  }
  if (options.names !== undefined) {
    if (!Array.isArray(options.names)) {
      throw new TypeError('watchBreakers: option names must be an array of breaker names');
    }
    for (const name of options.names) checkName(name, 'watchBreakers: breaker name');
  }
  const watch = new Watch(store, listener, options);
  const ready = watch.start();
  // The caller learns of a failed read by awaiting `ready`; one who does not is not crashed by it.
  ready.catch(() => {});
  return { ready, close: () => watch.close() };
}

// An idle record may expire (a store's recordTtl) and a record of a new line, lower in number,
// follow it: the stamp of a known idle record says so, as a breaker's own does.
function knownStamp(record: StoredRecord): RecordStamp {
  const stamp = stampOf(record);
  return isIdleRecord(record.snapshot) ? { ...stamp, lapses: true } : stamp;
}
