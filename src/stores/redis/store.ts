import { performance } from 'node:perf_hooks';
import type { WindowCounts } from '../../machine.js';
import { CorruptRecordError } from '../../snapshot.js';
import { topLevelState } from '../../state.js';
import { bucketOf, firstLiveBucket, type WindowFlush, windowTtl } from '../../window/buckets.js';
import { isIdleRecord } from '../record-lapse.js';
import { MAX_VERSION } from '../record-order.js';
import {
  asFollower,
  type BreakerStore,
  type CompareAndSetResult,
  type RecordEntry,
  type StoredRecord,
  type StoreFollower,
  type StoreWatcher,
} from '../store.js';
import { portOf, type RedisClient } from './client.js';
import { RedisClock } from './clock.js';
import {
  bulk,
  type Decoded,
  decodeRecord,
  type RecordField,
  splitChange,
  wrongFields,
} from './codec.js';
import { type Bounded, boundedBy, RedisStoreTimeoutError } from './errors.js';
import { ChangeFeed } from './feed.js';
import {
  type BreakerKeys,
  breakerChannel,
  breakerKeys,
  checkStoreName,
  sequenceKey,
  windowFlushKey,
  windowKey,
} from './keys.js';
import { Listing } from './listing.js';
import {
  type RedisStoreOptions,
  type ResolvedRedisStoreOptions,
  resolveRedisStoreOptions,
} from './options.js';
import type { RedisPort } from './port.js';
import { checkClusterMix, type Publication } from './publication.js';
import { RecordReader } from './reader.js';
import { problemText, Resync } from './resync.js';
import { bindScripts, CasReply, type RedisScripts } from './scripts.js';

export { RedisStoreTimeoutError } from './errors.js';

// Offset samples at first sync: the shortest round trip gives the tightest bound.
const FIRST_SYNC_SAMPLES = 3;
// A flush lands until its store's timeout and this much more (the server's clock may be read at a
// coarser grain than the store's, ioredis-mock's to the second), and its id key lives this much
// longer still: a resend that passes the deadline finds the key, and one after it is refused.
const FLUSH_GRACE_MS = 1_000;

interface PendingLoad {
  readonly name: string;
  readonly resolve: (record: StoredRecord | null) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * A store that shares breakers across processes through Redis (standalone or Cluster).
 *
 * - Each breaker's record lives in `${prefix}{name}:snapshot|version|write|state|counter|opened_at`
 *   (see {@link encodeName} for how names map into the braces). `state` (e.g. `open`,
 *   `halfOpen`), `counter` (consecutive failures) and `opened_at` (epoch ms, server time)
 *   are plain strings for `redis-cli GET`: read-only copies, written with every record.
 * - Writes are one Lua script (`compareAndSet-7.lua`, loaded with `defineCommand` under a name
 *   that carries the script's hash) that writes only if the stored version and write id are the
 *   expected ones and publishes the new record, atomically: on `${prefix}changes` (classic
 *   pub/sub, standalone Redis's default) or, with SPUBLISH, on the breaker's own channel
 *   `${prefix}{name}:changes` in the slot of its keys (sharded pub/sub, a Cluster's default;
 *   see the `pubsub` option).
 * - One subscriber client (`redis.duplicate()`) per store, open while breakers follow
 *   names (and `subscriberIdleTimeout` ms after the last one stops), hands every change to the
 *   breakers of its name; on a Cluster under sharded pub/sub it holds one connection per
 *   master. Classic change messages are numbered by `${prefix}seq` (standalone Redis),
 *   so a lost one shows as a gap. Every `resyncInterval` ms the store reads that counter (one
 *   GET, however many breakers it follows); on a gap, a counter that moved without a message,
 *   a reconnect, or every `auditInterval` ms, it resyncs: it compares the stored version and
 *   write id of every followed record with what each breaker holds (one script call per 500
 *   breakers) and hands over only what a breaker lacks. On a Cluster, where one counter cannot
 *   share a slot with every breaker, and under sharded pub/sub, where a store hears only the
 *   breakers it follows, messages are not numbered and every check is such a resync.
 * - Reads of breakers created together are batched: one script call per 500 records.
 * - The clock is Redis server time, read with `TIME` and carried forward on the monotonic clock.
 *
 * The client stays the caller's: `close()` releases the store's subscriber and timers only.
 *
 * @example
 * const store = new RedisStore(new Redis(process.env.REDIS_URL));
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
  readonly #followers = new Map<string, StoreFollower[]>();
  /** Flush ids: unique to this store, numbered. */
  readonly #flushPrefix = `${Math.random().toString(36).slice(2, 10)}.`;
  #flushes = 0;
  // The last problem resync reported per name, so that a record nobody rewrites (an idle
  // breaker's) is reported once, not every resyncInterval.
  readonly #resyncProblems = new Map<string, string>();
  #timers: ReturnType<typeof setInterval>[] = [];
  #loads: PendingLoad[] = [];
  #syncing: Promise<void> | null = null;
  #clockSuspect = false;
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
    this.#scripts = bindScripts(port);
    const { prefix } = this.options;
    this.#reader = new RecordReader(this.#scripts, prefix, port.cluster);
    const feedOptions = {
      channel: this.#channel,
      channelOf: (name: string) => breakerChannel(prefix, name),
      pubsub: this.options.pubsub,
      lingerMs: this.options.subscriberIdleTimeout,
      bounded: this.#bounded,
    };
    this.#feed = new ChangeFeed(port, feedOptions, {
      message: (message) => this.#onMessage(message),
      reconnected: () => {
        // Messages published while the subscriber was away are lost.
        this.#resync.reconnected();
        this.#listing.tell((watcher) => watcher.missed?.());
      },
    });
    const host = {
      followers: this.#followers,
      problems: this.#resyncProblems,
      feed: this.#feed,
      port,
      reader: this.#reader,
      bounded: this.#bounded,
      options: this.options,
      usable: (name: string, decoded: Decoded) => this.#usable(name, decoded),
      followed: (name: string) => this.#followers.has(name),
      closed: () => this.#closed,
    };
    this.#resync = new Resync(host);
    this.#listing = new Listing(host, this.#channel);
    this.#syncClock(FIRST_SYNC_SAMPLES).catch(() => {});
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
    return new Promise((resolve, reject) => {
      if (this.#loads.length === 0) queueMicrotask(() => this.#flushLoads());
      this.#loads.push({ name, resolve, reject });
    });
  }

  async compareAndSet(
    name: string,
    expectedVersion: number,
    record: StoredRecord,
    expectedWriteId?: string,
  ): Promise<CompareAndSetResult> {
    const keys = this.keys(name);
    this.#checkOpen();
    const { snapshot, version } = record;
    if (!(Number.isInteger(version) && version > expectedVersion && version <= MAX_VERSION)) {
      throw new RangeError(
        `record version ${version} must exceed ${expectedVersion} and be at most ${MAX_VERSION}`,
      );
    }
    // The deadline is on server time: never write before the clock has been read, and read it
    // again after a failure or when the wall clock jumped (a suspended process, say).
    await this.#whenSynced();
    if (this.#clockSuspect || this.clock.stepSuspected) {
      this.#clockSuspect = false;
      await this.#syncClock(1);
    }
    const publication = this.#feed.known ?? (await this.#feed.publication());
    const numbered = publication === 'numbered';
    const { context } = snapshot;
    const args = [
      keys.snapshot,
      keys.version,
      keys.state,
      keys.counter,
      keys.openedAt,
      keys.write,
      numbered ? sequenceKey(this.options.prefix) : keys.write,
      expectedVersion,
      version,
      JSON.stringify(snapshot),
      topLevelState(snapshot.value),
      context.failures,
      context.openedAt === null ? '' : Math.round(context.openedAt),
      this.#feed.channelFor(name, publication),
      name,
      expectedWriteId ?? '',
      0,
      snapshot.writeId ?? '',
      MAX_VERSION,
      publication,
      this.recordTtl !== undefined && isIdleRecord(snapshot) ? this.recordTtl : '',
    ];
    let reply: Awaited<ReturnType<RedisScripts['compareAndSet']>>;
    try {
      for (let attempt = 0; ; attempt++) {
        const sent = performance.now();
        args[16] = Math.ceil(this.clock.now() + this.timeout);
        reply = await this.#bounded(this.#scripts.compareAndSet(...args), 'compareAndSet');
        if (reply[0] !== CasReply.LATE) break;
        // Refused as late although the answer came in time: this host's idea of server time
        // was behind. Read the server's time and try once more.
        if (attempt > 0 || performance.now() - sent >= this.timeout) {
          throw new RedisStoreTimeoutError('compareAndSet', this.timeout);
        }
        await this.#syncClock(1);
      }
    } catch (error) {
      this.#clockSuspect = true;
      throw error;
    }
    if (reply[0] === CasReply.WRITTEN) {
      // A key of another type was in the way and has just been replaced: say so.
      for (const field of wrongFields(reply[1])) {
        this.#report(name, field, 'the key held another type; replaced');
      }
      return { ok: true, record };
    }
    const [, currentVersion, rawVersion, rawSnapshot, wrong] = reply;
    // Unreadable: reported, and `currentVersion` (0 for an unreadable version) lets the writer
    // replace it.
    const current = this.#usable(
      name,
      decodeRecord(bulk(rawVersion), bulk(rawSnapshot), wrongFields(wrong)),
    );
    return { ok: false, current, currentVersion };
  }

  /**
   * Adds an instance's window counts to `${prefix}{name}:window` and returns the fleet's totals,
   * in one script call (`flushWindow-2.lua`), bounded by the store's `timeout`.
   */
  async flushWindow(name: string, flush: WindowFlush): Promise<WindowCounts> {
    this.#checkOpen();
    // On server time, as a write's deadline: a flush this store gave up on must not land later.
    await this.#whenSynced();
    const flushId = `${this.#flushPrefix}${(++this.#flushes).toString(36)}`;
    const reply = await this.#bounded(
      this.#scripts.flushWindow(
        windowKey(this.options.prefix, name),
        windowFlushKey(this.options.prefix, name, flushId),
        flush.generation,
        bucketOf(flush.at, flush.window),
        firstLiveBucket(flush.at, flush.window),
        flush.calls,
        flush.failures,
        flush.slow,
        flush.instance,
        windowTtl(flush.window),
        this.clock.now() + this.timeout + FLUSH_GRACE_MS,
        this.timeout + 2 * FLUSH_GRACE_MS,
      ),
      'flushWindow',
    );
    const [calls, failures, slow, failingInstances, slowInstances] = reply.map(Number);
    return {
      calls: calls ?? 0,
      failures: failures ?? 0,
      slow: slow ?? 0,
      failingInstances: failingInstances ?? 0,
      slowInstances: slowInstances ?? 0,
    };
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
    const existing = this.#followers.get(name);
    if (existing === undefined) this.#followers.set(name, [follower]);
    else existing.push(follower);
    this.#startTimers();
    this.#feed.follow(name);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      const followers = this.#followers.get(name);
      if (followers === undefined) return;
      const at = followers.indexOf(follower);
      if (at >= 0) followers.splice(at, 1);
      if (followers.length > 0) return;
      this.#followers.delete(name);
      this.#resyncProblems.delete(name);
      if (!this.#listing.watches(name)) this.#feed.unfollow(name);
    };
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
      Promise.all([this.#whenSynced(), this.#feed.ready()]).then(() =>
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
    await this.#bounded(Promise.all([this.#whenSynced(), this.#feed.ready()]), 'listRecords');
    yield* this.#listing.scan();
  }

  /**
   * Compares every followed record with what its breakers hold and hands each breaker what it
   * lacks: a newer record, or a `LostRecordError` when Redis holds less than it had (flushed,
   * evicted, restored from an old dump). One script call per 500 breakers reads versions and
   * write ids; only records that differ are read whole. Runs on a gap in the numbered change
   * messages, on reconnect and every `auditInterval` ms; exposed for tests and operators. Never
   * rejects: what it cannot read, the next resync or write heals.
   */
  resync(): Promise<void> {
    return this.#resync.resync();
  }

  /** Releases the store's subscriber connection and timers (not the caller's client). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopTimers();
    this.#followers.clear();
    this.#listing.close();
    this.#feed.close();
    this.#port.release();
    for (const load of this.#loads) load.reject(new Error('RedisStore is closed'));
    this.#loads = [];
  }

  async #flushLoads(): Promise<void> {
    const loads = this.#loads;
    this.#loads = [];
    if (loads.length === 0) return;
    const names = loads.map((load) => load.name);
    let decoded: Decoded[];
    try {
      // Subscribed before reading: any write after the read arrives through the feed. One
      // bound for the whole batch: a breaker's first call waits at most `timeout`.
      decoded = await this.#bounded(
        Promise.all([this.#whenSynced(), this.#feed.ready()]).then(() =>
          this.#resync.counted(() => this.#reader.readMany(names)),
        ),
        'load',
      );
    } catch (error) {
      for (const load of loads) load.reject(error);
      return;
    }
    loads.forEach((load, i) => {
      load.resolve(this.#usable(load.name, decoded[i] ?? { record: null }));
    });
  }

  /** The decoded record, or `null` after reporting why there is none to use. */
  #usable(name: string, decoded: Decoded): StoredRecord | null {
    const { problem } = decoded;
    if (problem === undefined) {
      this.#resyncProblems.delete(name);
    } else {
      if (this.#followers.has(name)) this.#resyncProblems.set(name, problemText(problem));
      this.#report(name, problem.field, problem.problem);
    }
    return decoded.record;
  }

  #report(name: string, field: RecordField | 'channel', problem: string): void {
    const followers = this.#followers.get(name);
    if (followers === undefined) return;
    const key = field === 'channel' ? this.#channel : this.keys(name)[field];
    const error = new CorruptRecordError(name, problem, key);
    for (const follower of followers) follower.problem?.(error);
  }

  #onMessage(message: string): void {
    const change = splitChange(message);
    if (change === null) return;
    const { name, seq } = change;
    if (seq !== null) {
      // Every change is numbered: a number that does not follow the last one means a message
      // was lost (or the counter went back with lost data). Resync, whoever it was for.
      if (this.#resync.numbered(seq)) this.#listing.tell((watcher) => watcher.missed?.());
    }
    const followers = this.#followers.get(name);
    if (followers === undefined && !this.#listing.watched) return;
    // Decoded only for followed names (or when watched): every store hears every change under
    // its prefix.
    const decoded = decodeRecord(change.version, change.snapshot);
    if (this.#listing.watched) this.#listing.toWatchers(name, decoded);
    if (followers === undefined) return;
    if (decoded.problem === undefined) {
      const { record } = decoded;
      // Every record goes to every follower; each decides by record order what is news.
      if (record !== null) for (const follower of followers) follower.record(record);
      return;
    }
    // A writer published what this statebreaker cannot restore (another schema, say): report
    // it, and read the stored record, which is what followers go by.
    this.#report(
      name,
      'channel',
      `change message: ${decoded.problem.field} ${decoded.problem.problem}`,
    );
    this.#resync.batch([name]).catch(() => {});
  }

  #whenSynced(): Promise<void> {
    if (this.clock.synced) return Promise.resolve();
    return this.#syncing ?? this.#syncClock(FIRST_SYNC_SAMPLES);
  }

  #syncClock(samples: number): Promise<void> {
    if (this.#syncing !== null) return this.#syncing;
    const time = () => this.#bounded(this.#port.time(), 'TIME');
    this.#syncing = this.clock.sync(time, samples).finally(() => {
      this.#syncing = null;
    });
    return this.#syncing;
  }

  // Periodic work runs only while breakers follow records: an idle store holds no timer.
  #startTimers(): void {
    if (this.#timers.length > 0) return;
    const every = (ms: number, task: () => Promise<void>) => {
      const timer = setInterval(() => {
        task().catch(() => {});
      }, ms);
      timer.unref();
      this.#timers.push(timer);
    };
    every(this.options.clockSyncInterval, () => this.#syncClock(1));
    every(this.options.resyncInterval, () => {
      if (this.#followers.size === 0) this.#stopTimers();
      return this.#resync.check();
    });
  }

  #stopTimers(): void {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    this.#resync.stop();
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error('RedisStore is closed');
  }
}
