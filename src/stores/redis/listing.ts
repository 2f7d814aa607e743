import { CorruptRecordError } from '../../record/errors.js';
import type { RecordEntry, StoreWatcher } from '../store.js';
import type { Decoded } from './codec.js';
import type { Bounded } from './errors.js';
import type { ChangeFeed } from './feed.js';
import { breakerKeyPattern, nameOfKey } from './keys.js';
import type { ResolvedRedisStoreOptions } from './options.js';
import type { RedisPort } from './port.js';
import { BATCH, type RecordReader } from './reader.js';

// Keys a SCAN call is asked to look at: enough that a listing of a large keyspace takes few
// round trips, few enough that one call never holds the server for long.
const SCAN_COUNT = 1_000;

/** What listing and watching need of their store. */
export interface ListingHost {
  readonly feed: ChangeFeed;
  readonly port: RedisPort;
  readonly reader: RecordReader;
  readonly bounded: Bounded;
  readonly options: ResolvedRedisStoreOptions;
  /** Whether a breaker of this process follows `name`. */
  followed(name: string): boolean;
  closed(): boolean;
}

/**
 * Listing (SCAN on every master) and watchers of every breaker, the operator tools' audience:
 * a dashboard or a metrics exporter hears every breaker's changes under the store's prefix.
 */
export class Listing {
  readonly #host: ListingHost;
  readonly #channel: string;
  readonly #watchers = new Set<StoreWatcher>();
  /** Breakers the feed follows for watchers of every breaker (sharded pub/sub). */
  readonly #watchedNames = new Set<string>();
  #releaseHold: (() => void) | null = null;
  /** The watchers' listing in progress: a listing waits for it, so its names are subscribed. */
  #watchScan: Promise<void> | null = null;
  #watchTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(host: ListingHost, channel: string) {
    this.#host = host;
    this.#channel = channel;
  }

  /** Whether any watcher listens. */
  get watched(): boolean {
    return this.#watchers.size > 0;
  }

  /** Whether the feed follows `name` for the watchers. */
  watches(name: string): boolean {
    return this.#watchedNames.has(name);
  }

  /** Settles once the watchers' listing in progress is done. */
  async settled(): Promise<void> {
    if (this.#watchScan !== null) await this.#watchScan;
  }

  close(): void {
    this.#watchers.clear();
    clearTimeout(this.#watchTimer);
    this.#watchedNames.clear();
  }

  /**
   * Follows every breaker under the store's prefix on the change feed (the one channel carries
   * every breaker's changes): the watcher gets each record written, a `CorruptRecordError` for a
   * change message it cannot restore, and `missed()` when the subscriber reconnected or a
   * numbered message is missing. Returns the unsubscribe function.
   */
  watchAll(watcher: StoreWatcher): () => void {
    const own: StoreWatcher = {
      record: (name, record) => watcher.record(name, record),
      problem: (name, error) => watcher.problem?.(name, error),
      missed: () => watcher.missed?.(),
    };
    this.#watchers.add(own);
    this.#releaseHold ??= this.#host.feed.hold();
    if (this.#watchers.size === 1) this.#watchEveryBreaker();
    return () => {
      if (!this.#watchers.delete(own) || this.#watchers.size > 0) return;
      this.#stopWatching();
    };
  }

  // Under sharded pub/sub a store hears only the breakers it follows. To hear every breaker it
  // follows each one its listing finds, and lists again every resyncInterval while a watcher is
  // there: a breaker first written meanwhile is heard from then on, and its record handed over.
  #watchEveryBreaker(): void {
    const scan = this.#host.feed
      .publication()
      .then(async (publication) => {
        if (publication === 'sharded') await this.#followListed(false);
      })
      .catch(() => {})
      .finally(() => {
        if (this.#watchScan === scan) this.#watchScan = null;
      });
    this.#watchScan = scan;
  }

  // A relisting also hands every record over again (the watchers keep what is news): a change
  // published while a shard's subscriber moved is healed by it, as a resync heals followers.
  async #followListed(announce: boolean): Promise<void> {
    try {
      // A store that only watches runs no periodic check, which reads the slot map again.
      if (announce) this.#host.feed.refreshRoutes();
      for await (const entry of this.scan()) {
        if (this.#watchers.size === 0) return;
        const { name, record } = entry;
        if (!this.#watchedNames.has(name)) {
          this.#watchedNames.add(name);
          this.#host.feed.follow(name);
        }
        if (announce && record !== null) this.tell((w) => w.record(name, record));
      }
    } finally {
      if (this.#watchers.size > 0 && !this.#host.closed()) {
        clearTimeout(this.#watchTimer);
        this.#watchTimer = setTimeout(() => {
          this.#followListed(true).catch(() => {});
        }, this.#host.options.resyncInterval);
        this.#watchTimer.unref();
      }
    }
  }

  #stopWatching(): void {
    clearTimeout(this.#watchTimer);
    this.#watchTimer = undefined;
    for (const name of this.#watchedNames) {
      if (!this.#host.followed(name)) this.#host.feed.unfollow(name);
    }
    this.#watchedNames.clear();
    this.#releaseHold?.();
    this.#releaseHold = null;
  }

  async *scan(): AsyncIterable<RecordEntry> {
    const pattern = breakerKeyPattern(this.#host.options.prefix);
    const seen = new Set<string>();
    const nodes = await this.#host.bounded(this.#host.port.masters(), 'listRecords');
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await this.#host.bounded(
          node.scan(cursor, pattern, SCAN_COUNT),
          'listRecords',
        );
        cursor = next;
        // SCAN may return a key more than once, and a breaker has several keys.
        const names: string[] = [];
        for (const key of keys) {
          const name = nameOfKey(this.#host.options.prefix, key);
          if (name === null || seen.has(name)) continue;
          seen.add(name);
          names.push(name);
        }
        for (let i = 0; i < names.length; i += BATCH) {
          const batch = names.slice(i, i + BATCH);
          const entries = await this.#host.bounded(
            this.#host.reader.readEntries(batch),
            'listRecords',
          );
          for (const entry of entries) if (entry !== null) yield entry;
        }
      } while (cursor !== '0');
    }
  }

  toWatchers(name: string, decoded: Decoded): void {
    const { record, problem } = decoded;
    if (record !== null) {
      this.tell((watcher) => watcher.record(name, record));
    } else if (problem !== undefined) {
      const error = new CorruptRecordError(
        name,
        `change message: ${problem.field} ${problem.problem}`,
        this.#channel,
      );
      this.tell((watcher) => watcher.problem?.(name, error));
    }
  }

  // A watcher that throws must not stop the feed for the breakers of this process.
  tell(tell: (watcher: StoreWatcher) => void): void {
    for (const watcher of this.#watchers) {
      try {
        tell(watcher);
      } catch (error) {
        process.emitWarning(error as Error);
      }
    }
  }
}
