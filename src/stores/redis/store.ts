import type { WindowCounts } from '../../machine.js';
import { CorruptRecordError } from '../../record/errors.js';
import { nextVersionProblem } from '../../record/order.js';
import type { FleetTotals, WindowFlush } from '../../window/buckets.js';
import {
  asFollower,
  type BreakerStore,
  type CompareAndSetResult,
  type RecordEntry,
  type StoredRecord,
  type StoreFollower,
  type StoreWatcher,
  type WindowRead,
} from '../store.js';
import { portOf, type RedisClient } from './client.js';
import { RedisClock } from './clock.js';
import { ClockSync } from './clock-sync.js';
import { bulk, type Decoded, decodeRecord, wrongFields } from './codec.js';
import { type CompareAndSetDeps, sendCompareAndSet } from './compare-and-set.js';
import { dispatchChange } from './dispatch.js';
import { type Bounded, boundedBy } from './errors.js';
import { ChangeFeed } from './feed.js';
import { Followers } from './followers.js';
import {
  type BreakerKeys,
  breakerChannel,
  breakerKeys,
  checkStoreName,
  fenceKey,
  sequenceKey,
} from './keys.js';
import { Listing } from './listing.js';
import { BatchedLoads } from './loads.js';
import { StampCheck } from './node-stamps.js';
import {
  type RedisStoreOptions,
  type ResolvedRedisStoreOptions,
  resolveRedisStoreOptions,
} from './options.js';
import { Periodic } from './periodic.js';
import type { RedisPort } from './port.js';
import { checkClusterMix, type Publication } from './publication.js';
import { RecordReader } from './reader.js';
import { Resync } from './resync.js';
import { compareAndSetArgs } from './script-args.js';
import { bindScripts, CasReply, type RedisScripts } from './scripts.js';
import { RedisWindows, type WindowHost } from './window.js';

export { RedisStoreTimeoutError } from './errors.js';

/**
 * A store that shares breakers across processes through Redis (standalone or Cluster), on the
 * client the caller already has (see docs/redis-clients.md): ioredis 5/6 or iovalkey, node-redis
 * 5/6, each through a small adapter of the client port (`port.ts`).
 *
 * - Each breaker's record lives in `${prefix}{name}:snapshot|version|write|state|counter|opened_at`
 *   (see {@link encodeName} for how names map into the braces). `state` (e.g. `open`,
 *   `halfOpen`), `counter` (consecutive failures) and `opened_at` (epoch ms, server time)
 *   are plain strings for `redis-cli GET`: read-only copies, written with every record.
 * - Writes are one Lua script (`compareAndSet-8.lua`) that writes only if the stored version
 *   and write id are the expected ones, and publishes the new record atomically: on
 *   `${prefix}changes` (classic pub/sub, standalone's default) or with SPUBLISH on the
 *   breaker's own `${prefix}{name}:changes` (sharded, a Cluster's default; option `pubsub`).
 * - One subscriber per store (a second connection made from the caller's client), open while
 *   breakers follow names (and `subscriberIdleTimeout` ms after), hands every change to the
 *   breakers of its name; a resync (`resync.ts`) heals lost messages. Reads are batched.
 * - The clock is Redis server time (`TIME`, carried forward on the monotonic clock). The client
 *   stays the caller's: `close()` releases the store's subscriber and timers only.
 *
 * @example
 * const redis = new Redis(process.env.REDIS_URL);
 * redis.on('error', (error) => log.warn(error));
 * const store = new RedisStore(redis);
 * const breaker = getCircuitBreaker('openai', { store });
 */
export class RedisStore implements BreakerStore {
  /** Redis server time. */
  readonly clock: RedisClock;
  /** The options in force. */
  readonly options: ResolvedRedisStoreOptions;
  /** The longest any store call waits for Redis, in ms (the `timeout` option). */
  readonly timeout: number;
  /** Milliseconds another instance's timed transition is awaited before writing it (see the option). */
  readonly timedWriteSpread: number;
  /** Milliseconds after its last write that an idle record expires (see the option); unset: never. */
  readonly recordTtl: number | undefined;
  readonly #port: RedisPort;
  readonly #scripts: RedisScripts;
  readonly #reader: RecordReader;
  readonly #channel: string;
  readonly #feed: ChangeFeed;
  readonly #resync: Resync;
  readonly #listing: Listing;
  readonly #bounded: Bounded;
  readonly #followers: Followers;
  readonly #windows: RedisWindows;
  readonly #periodic: Periodic;
  // What the compare-and-set and the window scripts are sent with.
  readonly #io: CompareAndSetDeps & WindowHost;
  readonly #loads: BatchedLoads;
  readonly #clockSync: ClockSync;
  #closed = false;

  /**
   * @param client The caller's client, connected (see docs/redis-clients.md): an ioredis 5/6 or
   * iovalkey `Redis` or `Cluster`, or a node-redis 5/6 client or cluster. It stays the
   * caller's: the store opens a subscriber connection of its own and closes only that.
   * @throws TypeError or RangeError when an option is invalid, naming it; TypeError when the
   * client is none of these, or an ioredis client with a `keyPrefix`.
   */
  constructor(client: RedisClient, options?: RedisStoreOptions) {
    this.options = resolveRedisStoreOptions(options);
    const port = portOf(client);
    checkClusterMix(port, this.options.pubsub);
    this.#port = port;
    this.#channel = `${this.options.prefix}changes`;
    this.clock = new RedisClock(this.options.hostNow);
    this.timeout = this.options.timeout;
    this.timedWriteSpread = this.options.timedWriteSpread;
    this.recordTtl = this.options.recordTtl;
    this.#bounded = boundedBy(port, this.timeout);
    this.#clockSync = new ClockSync(this.clock, () => this.#bounded(port.time(), 'TIME'));
    this.#scripts = bindScripts(port);
    const { prefix } = this.options;
    const { clock, timeout } = this;
    const io = { prefix, timeout, clock, scripts: this.#scripts, bounded: this.#bounded, port };
    this.#io = { ...io, clockSync: this.#clockSync };
    this.#reader = new RecordReader(this.#scripts, prefix, port.cluster);
    this.#followers = new Followers((name) => this.keys(name), this.#channel);
    const feedOptions = {
      channel: this.#channel,
      channelOf: (name: string) => breakerChannel(prefix, name),
      pubsub: this.options.pubsub,
      lingerMs: this.options.subscriberIdleTimeout,
      bounded: this.#bounded,
    };
    this.#feed = new ChangeFeed(port, feedOptions, {
      message: (message) =>
        dispatchChange(message, {
          followers: this.#followers,
          listing: this.#listing,
          resync: this.#resync,
        }),
      reconnected: () => {
        // Messages published while the subscriber was away are lost.
        this.#resync.reconnected();
        this.#listing.tell((watcher) => watcher.missed?.());
      },
    });
    const host = {
      followers: this.#followers.byName,
      problems: this.#followers.problems,
      feed: this.#feed,
      port,
      reader: this.#reader,
      stamps: new StampCheck(port, this.#scripts, this.#reader, prefix),
      bounded: this.#bounded,
      options: this.options,
      usable: (name: string, decoded: Decoded) => this.#followers.usable(name, decoded),
      followed: (name: string) => this.#followers.has(name),
      closed: () => this.#closed,
    };
    this.#resync = new Resync(host);
    // Subscribed before reading: any write after the read arrives through the feed. One bound
    // for the whole batch: a breaker's first call waits at most `timeout`.
    this.#loads = new BatchedLoads(
      (names) =>
        this.#bounded(
          Promise.all([this.#clockSync.whenSynced(), this.#feed.ready()]).then(() =>
            this.#resync.counted(() => this.#reader.readMany(names)),
          ),
          'load',
        ),
      (name, decoded) => this.#followers.usable(name, decoded),
    );
    this.#listing = new Listing(host, this.#channel);
    this.#periodic = new Periodic(
      [
        [this.options.clockSyncInterval, () => this.#clockSync.sync(1)],
        [
          this.options.resyncInterval,
          () => {
            if (this.#followers.size === 0) this.#periodic.stop();
            return this.#resync.check();
          },
        ],
      ],
      () => this.#resync.stop(),
    );
    this.#windows = new RedisWindows(this.#io);
    this.#clockSync.start();
  }

  /**
   * How this store publishes change messages (see {@link Publication}): known at once on
   * standalone Redis, after the store's first round trip on a Cluster; `null` until then.
   */
  get publication(): Publication | null {
    return this.#feed.known;
  }

  /** The keys of breaker `name`. */
  keys(name: string): BreakerKeys {
    return breakerKeys(this.options.prefix, name);
  }

  /**
   * The stored record of `name`, or `null` when there is none. A record that cannot be
   * restored (see {@link CorruptRecordError}) is reported to the name's followers and read as
   * `null`, so that their next write replaces it. Loads asked for in one tick share one read.
   */
  load(name: string): Promise<StoredRecord | null> {
    try {
      checkStoreName(name);
      this.#checkOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#loads.load(name);
  }

  async compareAndSet(
    name: string,
    expectedVersion: number,
    record: StoredRecord,
    expectedWriteId?: string,
    fence?: string,
  ): Promise<CompareAndSetResult> {
    const keys = this.keys(name);
    this.#checkOpen();
    const problem = nextVersionProblem(expectedVersion, record.version);
    if (problem !== undefined) throw new RangeError(problem);
    // The deadline is on server time.
    await this.#clockSync.fresh();
    const publication = this.#feed.known ?? (await this.#feed.publication());
    const args = compareAndSetArgs({
      keys,
      sequenceKey: sequenceKey(this.options.prefix),
      fenceKey: fenceKey(this.options.prefix, name),
      name,
      expectedVersion,
      expectedWriteId,
      record,
      channel: this.#feed.channelFor(name, publication),
      publication,
      recordTtl: this.recordTtl,
      fence,
    });
    const reply = await sendCompareAndSet(args, this.#io);
    if (reply[0] === CasReply.WRITTEN) {
      // A key of another type was in the way and has just been replaced: say so.
      for (const field of wrongFields(reply[1])) {
        this.#followers.report(name, field, 'the key held another type; replaced');
      }
      return { ok: true, record };
    }
    const [, currentVersion, rawVersion, rawSnapshot, wrong] = reply;
    // Unreadable: reported, and `currentVersion` (0 for an unreadable version) lets the writer
    // replace it.
    const current = this.#followers.usable(
      name,
      decodeRecord(bulk(rawVersion), bulk(rawSnapshot), wrongFields(wrong)),
    );
    return { ok: false, current, currentVersion };
  }

  /** Ms until the record of `name` expires (`PTTL` of its version key), `null` for never. */
  async recordExpiry(name: string): Promise<number | null> {
    this.#checkOpen();
    const ms = await this.#bounded(this.#port.pttl(this.keys(name).version), 'recordExpiry');
    return ms >= 0 ? ms : null;
  }

  /** Lifts the fence `fence` of `name` if it is still there (`liftFence-1.lua`). */
  async liftFence(name: string, fence: string): Promise<void> {
    this.#checkOpen();
    const key = fenceKey(this.options.prefix, name);
    await this.#bounded(this.#scripts.liftFence(key, fence), 'liftFence');
  }

  /**
   * Adds an instance's window counts to `${prefix}{name}:window` and returns the fleet's totals,
   * in one script call (`flushWindow-2.lua`), bounded by the store's `timeout`.
   */
  flushWindow(name: string, flush: WindowFlush): Promise<FleetTotals> {
    this.#checkOpen();
    return this.#windows.flush(name, flush);
  }

  /** The fleet's totals in `${prefix}{name}:window` for a generation, adding nothing. */
  readWindow(name: string, read: WindowRead): Promise<WindowCounts> {
    this.#checkOpen();
    return this.#windows.read(name, read);
  }

  /**
   * Follows `name`: the follower gets every record published or read for it, and a
   * {@link CorruptRecordError} (whose `key` names the Redis key) for every unreadable record or
   * change message the store meets for it, or a {@link LostRecordError} when the store holds
   * less than the follower's stamp. Returns the unsubscribe function.
   */
  subscribe(
    name: string,
    listener: StoreFollower | ((record: StoredRecord) => void),
    onProblem?: (error: Error) => void,
  ): () => void {
    checkStoreName(name);
    this.#checkOpen();
    const follower = asFollower(listener, onProblem);
    this.#followers.add(name, follower);
    this.#periodic.start();
    this.#feed.follow(name);
    let active = true;
    return () => {
      if (active) this.unsubscribe(name, follower);
      active = false;
    };
  }

  /** Stops `follower` (as given to `subscribe`) following `name`. */
  unsubscribe(name: string, follower: StoreFollower): void {
    const last = this.#followers.remove(name, follower);
    if (last && !this.#listing.watches(name)) this.#feed.unfollow(name);
  }

  /**
   * Follows every breaker under the store's prefix on the change feed (the one channel carries
   * every breaker's changes): the watcher gets each record written, a `CorruptRecordError` for a
   * change message it cannot restore, and `missed()` when the subscriber reconnected or a
   * numbered message is missing. Returns the unsubscribe function.
   */
  watchAll(watcher: StoreWatcher): () => void {
    this.#checkOpen();
    return this.#listing.watchAll(watcher);
  }

  /**
   * One breaker's record, or a corrupt entry naming the key to blame, or `null` when it has
   * none. Unlike {@link load} it reports nothing to followers. Waits for the change feed when a
   * watcher opened it, and for the first reading of server time, so that the store's clock is
   * Redis time once it resolves.
   */
  async readRecord(name: string): Promise<RecordEntry | null> {
    checkStoreName(name);
    this.#checkOpen();
    const [entry] = await this.#bounded(
      Promise.all([this.#clockSync.whenSynced(), this.#feed.ready()]).then(() =>
        this.#reader.readEntries([name]),
      ),
      'readRecord',
    );
    return entry ?? null;
  }

  /**
   * Every breaker with a record under the store's prefix, corrupt ones included: `SCAN` (never
   * `KEYS`) with a `MATCH` on the breaker key layout, on every master of a Cluster, then one
   * script call per 500 breakers (per breaker on a Cluster) to read them. Each breaker comes
   * once. Every call is bounded by the store's `timeout`.
   */
  async *listRecords(): AsyncIterable<RecordEntry> {
    this.#checkOpen();
    // Each of its calls is bounded; the whole takes as long as the keyspace does, and never fails.
    await this.#listing.settled();
    await this.#bounded(
      Promise.all([this.#clockSync.whenSynced(), this.#feed.ready()]),
      'listRecords',
    );
    yield* this.#listing.scan();
  }

  /**
   * Compares every followed record with what its breakers hold and hands each breaker what it
   * lacks: a newer record, or a `LostRecordError` when Redis holds less than it had (flushed,
   * evicted, restored from an old dump). One script call per 500 breakers (on a Cluster, per
   * master per 500) compares versions and write ids; only records that differ are read whole.
   * Runs on a gap in the numbered change messages, on reconnect, every `auditInterval` ms, and
   * at every check on a Cluster; exposed for tests and operators. Never rejects: what it cannot
   * read, the next resync or write heals.
   */
  resync(): Promise<void> {
    return this.#resync.resync();
  }

  /** Releases the store's subscriber connection and timers (not the caller's client). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#periodic.stop();
    this.#followers.clear();
    this.#listing.close();
    this.#feed.close();
    this.#port.release();
    this.#loads.rejectAll(new Error('RedisStore is closed'));
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error('RedisStore is closed');
  }
}
