import { performance } from 'node:perf_hooks';
import type { Cluster, Redis } from 'ioredis';
import { systemClock } from '../clock.js';
import { afterDue } from '../grace.js';
import { CorruptRecordError } from '../snapshot.js';
import { topLevelState } from '../state.js';
import {
  bucketOf,
  type FleetTotals,
  firstLiveBucket,
  type WindowFlush,
  windowTtl,
} from '../window/buckets.js';
import { LostRecordError } from './lost-record.js';
import { isIdleRecord } from './record-lapse.js';
import { MAX_VERSION, orderOf, type RecordStamp, stampOf, supersedes } from './record-order.js';
import { RedisClock } from './redis-clock.js';
import {
  bulk,
  type Decoded,
  decodeRecord,
  parseVersion,
  type RecordField,
  type RecordProblem,
  splitChange,
  wrongFields,
} from './redis-codec.js';
import { ChangeFeed } from './redis-feed.js';
import { FENCE_MS, yieldToFence } from './redis-fence.js';
import {
  type BreakerKeys,
  breakerChannel,
  breakerKeyPattern,
  breakerKeys,
  checkStoreName,
  fenceKey,
  nameOfKey,
  sequenceKey,
  windowFlushKey,
  windowKey,
} from './redis-keys.js';
import {
  type RedisStoreOptions,
  type ResolvedRedisStoreOptions,
  resolveRedisStoreOptions,
} from './redis-options.js';
import { isCluster, type Publication } from './redis-publication.js';
import { CasReply, defineScripts, type RedisScripts } from './redis-scripts.js';
import {
  asFollower,
  type BreakerStore,
  type CompareAndSetResult,
  type RecordEntry,
  type StoredRecord,
  type StoreFollower,
  type StoreWatcher,
} from './store.js';

export { LostRecordError } from './lost-record.js';
export { RedisClock } from './redis-clock.js';
export { type BreakerKeys, DEFAULT_PREFIX, encodeName } from './redis-keys.js';
export { REDIS_STORE_DEFAULTS, type RedisStoreOptions } from './redis-options.js';
export type { Publication } from './redis-publication.js';

/** A store call that got no answer from Redis within the store's `timeout`. */
export class RedisStoreTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`RedisStore: ${what} got no answer from Redis within ${ms} ms`);
    this.name = 'RedisStoreTimeoutError';
  }
}

const problemText = (problem: RecordProblem) => `${problem.field}: ${problem.problem}`;

// Offset samples at first sync: the shortest round trip gives the tightest bound.
const FIRST_SYNC_SAMPLES = 3;
// Breakers per read: one script call (standalone) reads this many records, or compares this
// many stamps (readStamps.lua), so an idle fleet's resync costs a few commands however many it
// follows.
const BATCH = 500;
// Keys a SCAN call is asked to look at: enough that a listing of a large keyspace takes few
// round trips, few enough that one call never holds the server for long.
const SCAN_COUNT = 1_000;
// A flush lands until its store's timeout and this much more (the server's clock may be read at a
// coarser grain than the store's, ioredis-mock's to the second), and its id key lives this much
// longer still: a resend that passes the deadline finds the key, and one after it is refused.
const FLUSH_GRACE_MS = 1_000;

/** The raw values of one breaker's record, as `readRecords.lua` returns them. */
interface RawRecord {
  readonly snapshot: string | null;
  readonly version: string | null;
  readonly wrong: RecordField[];
}

function parsedJson(text: string | null): unknown {
  if (text === null) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

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
 * - Writes are one Lua script (`compareAndSet-8.lua`, loaded with `defineCommand` under a name
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
  readonly #redis: Redis | Cluster;
  readonly #scripts: RedisScripts;
  readonly #channel: string;
  readonly #feed: ChangeFeed;
  readonly #followers = new Map<string, StoreFollower[]>();
  readonly #watchers = new Set<StoreWatcher>();
  /** Flush ids: unique to this store, numbered. */
  readonly #flushPrefix = `${Math.random().toString(36).slice(2, 10)}.`;
  #flushes = 0;
  /** Breakers the feed follows for watchers of every breaker (sharded pub/sub). */
  readonly #watchedNames = new Set<string>();
  #releaseHold: (() => void) | null = null;
  /** The watchers' listing in progress: a listing waits for it, so its names are subscribed. */
  #watchScan: Promise<void> | null = null;
  #watchTimer: ReturnType<typeof setTimeout> | undefined;
  // The last problem resync reported per name, so that a record nobody rewrites (an idle
  // breaker's) is reported once, not every resyncInterval.
  readonly #resyncProblems = new Map<string, string>();
  #timers: ReturnType<typeof setInterval>[] = [];
  /** The change counter of the last message seen; `null` until known. */
  #seq: number | null = null;
  /** Change messages seen, to tell whether any arrived while a resync ran. */
  #messages = 0;
  /** Signs of a missed message so far (gaps, reconnects, audits): a resync is owed for each. */
  #gaps = 0;
  /** `#gaps` as of the start of the last resync that read everything it meant to. */
  #healed = 0;
  #sweep: Promise<void> | null = null;
  /** `#gaps` as of the start of the running resync. */
  #sweepFrom = 0;
  #lastSweep = 0;
  #resyncRetry: ReturnType<typeof setTimeout> | undefined;
  #resyncRetryMs = 0;
  #loads: PendingLoad[] = [];
  #syncing: Promise<void> | null = null;
  #clockSuspect = false;
  #closed = false;

  /**
   * @param redis The caller's ioredis client; it stays the caller's to close.
   * @throws TypeError or RangeError when an option is invalid, naming it.
   */
  constructor(redis: Redis | Cluster, options?: RedisStoreOptions) {
    if (
      redis === null ||
      typeof redis !== 'object' ||
      typeof (redis as { defineCommand?: unknown }).defineCommand !== 'function' ||
      typeof (redis as { duplicate?: unknown }).duplicate !== 'function'
    ) {
      throw new TypeError('RedisStore needs an ioredis Redis or Cluster client');
    }
    this.options = resolveRedisStoreOptions(options);
    this.#redis = redis;
    this.#channel = `${this.options.prefix}changes`;
    this.clock = new RedisClock(this.options.hostNow);
    this.timeout = this.options.timeout;
    this.timedWriteSpread = this.options.timedWriteSpread;
    this.recordTtl = this.options.recordTtl;
    this.#scripts = defineScripts(redis);
    const { prefix } = this.options;
    const feedOptions = {
      channel: this.#channel,
      channelOf: (name: string) => breakerChannel(prefix, name),
      pubsub: this.options.pubsub,
      lingerMs: this.options.subscriberIdleTimeout,
      bounded: <T>(promise: Promise<T>, what: string) => this.#bounded(promise, what),
    };
    this.#feed = new ChangeFeed(redis, feedOptions, {
      message: (message) => this.#onMessage(message),
      reconnected: () => {
        // Messages published while the subscriber was away are lost.
        this.#gaps++;
        this.resync().catch(() => {});
        this.#tellWatchers((watcher) => watcher.missed?.());
      },
    });
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
    fence?: string,
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
      fenceKey(this.options.prefix, name),
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
      fence ?? '',
      FENCE_MS,
    ];
    let reply: Awaited<ReturnType<RedisScripts['compareAndSet']>>;
    try {
      for (let attempt = 0; ; attempt++) {
        const sent = performance.now();
        args[17] = Math.ceil(this.clock.now() + this.timeout);
        reply = await this.#bounded(this.#scripts.compareAndSet(...args), 'compareAndSet');
        if (reply[0] === CasReply.FENCED) {
          // An operator's action is being written: yield until it lands (its fence is lifted
          // by that write, or expires), then compare against what it wrote.
          attempt--;
          await yieldToFence(Number(reply[1]));
          continue;
        }
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

  /** Ms until the record of `name` expires (`PTTL` of its version key), `null` for never. */
  async recordExpiry(name: string): Promise<number | null> {
    this.#checkOpen();
    const key = this.keys(name).version;
    const ms = Number(await this.#bounded(this.#redis.pttl(key), 'recordExpiry'));
    return ms >= 0 ? ms : null;
  }

  /** Lifts the fence `fence` of `name` if it is still there (`liftFence-1.lua`). */
  async liftFence(name: string, fence: string): Promise<void> {
    this.#checkOpen();
    await this.#bounded(
      this.#scripts.liftFence(fenceKey(this.options.prefix, name), fence),
      'liftFence',
    );
  }

  /**
   * Adds an instance's window counts to `${prefix}{name}:window` and returns the fleet's totals,
   * in one script call (`flushWindow-2.lua`), bounded by the store's `timeout`.
   */
  async flushWindow(name: string, flush: WindowFlush): Promise<FleetTotals> {
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
        flush.flushMs,
      ),
      'flushWindow',
    );
    const [calls, failures, slow, failingInstances, slowInstances, others, othersFlush] =
      reply.map(Number);
    return {
      calls: calls ?? 0,
      failures: failures ?? 0,
      slow: slow ?? 0,
      failingInstances: failingInstances ?? 0,
      slowInstances: slowInstances ?? 0,
      otherInstances: others ?? 0,
      otherFlushMs: othersFlush ?? 0,
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
      if (!this.#watchedNames.has(name)) this.#feed.unfollow(name);
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
    const own: StoreWatcher = {
      record: (name, record) => watcher.record(name, record),
      problem: (name, error) => watcher.problem?.(name, error),
      missed: () => watcher.missed?.(),
    };
    this.#watchers.add(own);
    this.#releaseHold ??= this.#feed.hold();
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
    const scan = this.#feed
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
      if (announce) this.#feed.refreshRoutes();
      for await (const entry of this.#scan()) {
        if (this.#watchers.size === 0) return;
        const { name, record } = entry;
        if (!this.#watchedNames.has(name)) {
          this.#watchedNames.add(name);
          this.#feed.follow(name);
        }
        if (announce && record !== null) this.#tellWatchers((w) => w.record(name, record));
      }
    } finally {
      if (this.#watchers.size > 0 && !this.#closed) {
        clearTimeout(this.#watchTimer);
        this.#watchTimer = setTimeout(() => {
          this.#followListed(true).catch(() => {});
        }, this.options.resyncInterval);
        this.#watchTimer.unref();
      }
    }
  }

  #stopWatching(): void {
    clearTimeout(this.#watchTimer);
    this.#watchTimer = undefined;
    for (const name of this.#watchedNames) {
      if (!this.#followers.has(name)) this.#feed.unfollow(name);
    }
    this.#watchedNames.clear();
    this.#releaseHold?.();
    this.#releaseHold = null;
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
      Promise.all([this.#whenSynced(), this.#feed.ready()]).then(() => this.#readEntries([name])),
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
    if (this.#watchScan !== null) await this.#watchScan;
    await this.#bounded(Promise.all([this.#whenSynced(), this.#feed.ready()]), 'listRecords');
    yield* this.#scan();
  }

  async *#scan(): AsyncIterable<RecordEntry> {
    const pattern = breakerKeyPattern(this.options.prefix);
    const seen = new Set<string>();
    const nodes = isCluster(this.#redis) ? this.#redis.nodes('master') : [this.#redis];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await this.#bounded(
          node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT),
          'listRecords',
        );
        cursor = next;
        // SCAN may return a key more than once, and a breaker has several keys.
        const names: string[] = [];
        for (const key of keys) {
          const name = nameOfKey(this.options.prefix, key);
          if (name === null || seen.has(name)) continue;
          seen.add(name);
          names.push(name);
        }
        for (let i = 0; i < names.length; i += BATCH) {
          const batch = names.slice(i, i + BATCH);
          const entries = await this.#bounded(this.#readEntries(batch), 'listRecords');
          for (const entry of entries) if (entry !== null) yield entry;
        }
      } while (cursor !== '0');
    }
  }

  /**
   * Compares every followed record with what its breakers hold and hands each breaker what it
   * lacks: a newer record, or a `LostRecordError` when Redis holds less than it had (flushed,
   * evicted, restored from an old dump). One script call per 500 breakers reads versions and
   * write ids; only records that differ are read whole. Runs on a gap in the numbered change
   * messages, on reconnect and every `auditInterval` ms; exposed for tests and operators. Never
   * rejects: what it cannot read, the next resync or write heals.
   */
  async resync(): Promise<void> {
    if (this.#closed || this.#followers.size === 0) return;
    const wanted = this.#gaps;
    // A resync that started after every sign asked for serves; one that started before is
    // awaited, and another started after it.
    while (this.#sweep !== null) {
      const from = this.#sweepFrom;
      await this.#sweep;
      if (from >= wanted) return;
    }
    if (this.#closed || this.#followers.size === 0) return;
    this.#sweepFrom = this.#gaps;
    this.#sweep = this.#sweepAll().finally(() => {
      this.#sweep = null;
    });
    await this.#sweep;
  }

  /** Releases the store's subscriber connection and timers (not the caller's client). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopTimers();
    this.#followers.clear();
    this.#watchers.clear();
    clearTimeout(this.#watchTimer);
    this.#watchedNames.clear();
    this.#feed.close();
    for (const load of this.#loads) load.reject(new Error('RedisStore is closed'));
    this.#loads = [];
  }

  // Whether change messages are numbered: one counter cannot share a slot with every breaker
  // on a Cluster, and a store hears only the breakers it follows under sharded pub/sub.
  get #numbered(): boolean {
    return this.#feed.known === 'numbered';
  }

  async #sweepAll(): Promise<void> {
    const from = this.#sweepFrom;
    const messages = this.#messages;
    this.#lastSweep = performance.now();
    let complete = true;
    const fail = () => {
      complete = false;
    };
    // Subscribed before reading: any change after the read arrives through the feed. A feed that
    // is not back in time does not stop the read (it heals what it can), but the gap stays owed.
    await this.#bounded(this.#feed.ready(), 'resync').catch(fail);
    const names = [...this.#followers.keys()];
    // The counter is read first on the same connection: every change after that value reaches
    // this store as a numbered message.
    const counter = this.#numbered
      ? this.#bounded(this.#redis.get(sequenceKey(this.options.prefix)), 'resync')
      : Promise.resolve(null);
    counter.catch(fail);
    const rounds: Promise<void>[] = [];
    for (let i = 0; i < names.length; i += BATCH) {
      rounds.push(this.#resyncBatch(names.slice(i, i + BATCH)).catch(fail));
    }
    await Promise.all(rounds);
    const raw = await counter.catch(() => null);
    // What cannot be read now stays owed: tried again after a pause that starts at the store's
    // timeout and doubles up to resyncInterval, so a brief slowdown costs a moment, not a whole
    // interval, and a long outage queues no stream of reads for ioredis to send on reconnect.
    if (!complete) {
      this.#retryResync();
      return;
    }
    this.#resyncRetryMs = 0;
    this.#healed = Math.max(this.#healed, from);
    // Count from the counter read, unless messages came meanwhile (the gap check has judged
    // them). After lost data the counter went back, and counting goes on from there.
    if (this.#numbered && this.#messages === messages) this.#seq = raw === null ? 0 : Number(raw);
  }

  /**
   * Runs a read of records and, when the store does not know the change counter yet, reads it
   * just before on the same connection: every change after that value reaches this store as a
   * numbered message, so counting can start from it without missing one.
   */
  async #counted<T>(read: () => Promise<T>): Promise<T> {
    if (!this.#numbered || this.#seq !== null) return read();
    const counter = this.#redis.get(sequenceKey(this.options.prefix));
    const [raw, result] = await Promise.all([counter, read()]);
    this.#seq ??= raw === null ? 0 : Number(raw);
    return result;
  }

  // The periodic check: one GET of the change counter tells whether any message was missed.
  async #check(): Promise<void> {
    if (this.#closed || this.#followers.size === 0) return;
    const audit = performance.now() - this.#lastSweep >= this.options.auditInterval;
    if (!this.#numbered || audit) this.#gaps++;
    this.#feed.refreshRoutes();
    if (this.#gaps > this.#healed) return this.resync();
    const raw = await this.#bounded(this.#redis.get(sequenceKey(this.options.prefix)), 'resync');
    const stored = raw === null ? 0 : Number(raw);
    if (this.#seq === null) {
      // Nothing counted yet: what was loaded is current; count from here.
      this.#seq = stored;
      return;
    }
    // Moved without a message reaching us (or went back with lost data). A message still on its
    // way is not lost: while messages keep arriving (a burst the subscriber is working through),
    // wait for them, at most the store's timeout; a resync only when they stop short.
    if (stored === this.#seq) return;
    const caughtUp = () => this.#seq !== null && this.#seq >= stored;
    if (stored > this.#seq) {
      const deadline = performance.now() + this.timeout;
      for (let seen = this.#messages; ; seen = this.#messages) {
        await new Promise((resolve) => setTimeout(resolve, 20).unref());
        if (caughtUp()) return;
        if (this.#messages === seen || performance.now() > deadline) break;
      }
    }
    this.#gaps++;
    await this.resync();
  }

  #resyncSoon(): void {
    setImmediate(() => this.resync().catch(() => {}));
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
          this.#counted(() => this.#readMany(names)),
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

  async #readMany(names: readonly string[]): Promise<Decoded[]> {
    const raws = await this.#readRaw(names);
    return raws.map((raw) => decodeRecord(raw.version, raw.snapshot, raw.wrong));
  }

  // Entries for operator tools: a corrupt record keeps the version compare-and-set compares
  // with (0 when unreadable, as the script reads it) and its snapshot, parsed if it is JSON.
  async #readEntries(names: readonly string[]): Promise<(RecordEntry | null)[]> {
    const raws = await this.#readRaw(names);
    return names.map((name, i) => {
      const raw = raws[i] as RawRecord;
      const decoded = decodeRecord(raw.version, raw.snapshot, raw.wrong);
      if (decoded.problem === undefined) {
        return decoded.record === null ? null : { name, record: decoded.record };
      }
      const version = raw.wrong.includes('version') ? 0 : (parseVersion(raw.version ?? '') ?? 0);
      return {
        name,
        record: null,
        problem: decoded.problem.problem,
        key: this.keys(name)[decoded.problem.field],
        version,
        snapshot: raw.wrong.includes('snapshot') ? undefined : parsedJson(raw.snapshot),
      };
    });
  }

  async #readRaw(names: readonly string[]): Promise<RawRecord[]> {
    const calls: Promise<unknown[]>[] = [];
    const keysOf = (name: string) => {
      const keys = this.keys(name);
      return [keys.snapshot, keys.version];
    };
    // A Cluster runs a script on one slot: one breaker per call there.
    const per = isCluster(this.#redis) ? 1 : BATCH;
    for (let i = 0; i < names.length; i += per) {
      calls.push(this.#scripts.readRecords(...names.slice(i, i + per).flatMap(keysOf)));
    }
    const replies = (await Promise.all(calls)).flat();
    return names.map((_, i) => ({
      snapshot: bulk(replies[3 * i]),
      version: bulk(replies[3 * i + 1]),
      wrong: wrongFields(replies[3 * i + 2]),
    }));
  }

  async #resyncBatch(names: readonly string[]): Promise<void> {
    // What each follower held when the read was sent: a stored record older than that means
    // Redis lost data; one that a follower got from the feed after the read is no sign of it.
    const held = names.map((name) =>
      (this.#followers.get(name) ?? []).map((follower) => follower.stamp?.() ?? null),
    );
    const stamps = await this.#bounded(this.#readStamps(names), 'resync');
    const differing: number[] = [];
    names.forEach((_, i) => {
      const stored = stamps[i] ?? null;
      const same = (held[i] ?? []).every((stamp) =>
        stored === null ? stamp === null : stamp !== null && orderOf(stored, stamp) === 'same',
      );
      if (!same || this.#resyncProblems.has(names[i] as string)) differing.push(i);
    });
    if (differing.length === 0) return;
    const decoded = await this.#bounded(
      this.#readMany(differing.map((i) => names[i] as string)),
      'resync',
    );
    differing.forEach((i, k) => {
      this.#resynced(names[i] as string, decoded[k] ?? { record: null }, held[i] ?? []);
    });
  }

  /**
   * Version and write id of each record, one script call per batch (per breaker on a Cluster).
   * `null`: no record; version 0: half a record or an unreadable one, which differs from every
   * stamp, so the whole record is read and judged.
   */
  async #readStamps(names: readonly string[]): Promise<(RecordStamp | null)[]> {
    const keysOf = (name: string) => {
      const keys = this.keys(name);
      return [keys.version, keys.write, keys.snapshot];
    };
    const per = isCluster(this.#redis) ? 1 : BATCH;
    const calls: Promise<unknown[]>[] = [];
    for (let i = 0; i < names.length; i += per) {
      calls.push(this.#scripts.readStamps(...names.slice(i, i + per).flatMap(keysOf)));
    }
    const values = (await Promise.all(calls)).flat();
    return names.map((_, i) => {
      const raw = bulk(values[3 * i]);
      const writeId = bulk(values[3 * i + 1]);
      const length = typeof values[3 * i + 2] === 'number' ? (values[3 * i + 2] as number) : 0;
      if (raw === null && length === 0) return null;
      const version = raw !== null && length > 0 ? (parseVersion(raw) ?? 0) : 0;
      return {
        version,
        writeId: writeId !== null && writeId !== '' ? writeId : undefined,
      };
    });
  }

  // Hands each follower what it lacks, judged against what it held when the read was sent.
  #resynced(name: string, decoded: Decoded, held: readonly (RecordStamp | null)[]): void {
    const followers = this.#followers.get(name);
    if (followers === undefined) return;
    const { problem } = decoded;
    const seen = Math.max(0, ...held.map((stamp) => stamp?.version ?? 0));
    // Half a record (one key evicted or expired) is lost data, not garbage: the breakers holding
    // it write it back at once.
    if (problem?.missing && seen > 0) {
      this.#resyncProblems.delete(name);
      this.#lost(name, problem.field, 0, held);
      return;
    }
    if (problem !== undefined && this.#resyncProblems.get(name) === problemText(problem)) return;
    const record = this.#usable(name, decoded);
    if (problem !== undefined) return;
    if (record === null) {
      this.#lost(name, 'version', 0, held);
      return;
    }
    const stored = stampOf(record);
    followers.forEach((follower, i) => {
      const stamp = held[i] ?? null;
      if (supersedes(stored, stamp)) follower.record(record);
      else if (stamp !== null && orderOf(stored, stamp) === 'older') {
        follower.problem?.(
          new LostRecordError(name, this.keys(name).version, stored.version, stamp.version),
        );
      }
    });
  }

  #lost(
    name: string,
    field: RecordField,
    storedVersion: number,
    held: readonly (RecordStamp | null)[],
  ): void {
    const key = this.keys(name)[field];
    (this.#followers.get(name) ?? []).forEach((follower, i) => {
      const stamp = held[i] ?? null;
      const seen = stamp?.version ?? 0;
      if (seen <= storedVersion) return;
      // An idle record that expired was not lost: nothing is owed back.
      if (storedVersion === 0 && stamp?.lapses === true) follower.lapsed?.(stamp);
      else follower.problem?.(new LostRecordError(name, key, storedVersion, seen));
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
      this.#messages++;
      // Every change is numbered: a number that does not follow the last one means a message
      // was lost (or the counter went back with lost data). Resync, whoever it was for.
      if (this.#seq !== null && seq !== this.#seq + 1) {
        this.#gaps++;
        this.#resyncSoon();
        this.#tellWatchers((watcher) => watcher.missed?.());
      }
      this.#seq = seq;
    }
    const followers = this.#followers.get(name);
    if (followers === undefined && this.#watchers.size === 0) return;
    // Decoded only for followed names (or when watched): every store hears every change under
    // its prefix.
    const decoded = decodeRecord(change.version, change.snapshot);
    if (this.#watchers.size > 0) this.#toWatchers(name, decoded);
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
    this.#resyncBatch([name]).catch(() => {});
  }

  #toWatchers(name: string, decoded: Decoded): void {
    const { record, problem } = decoded;
    if (record !== null) {
      this.#tellWatchers((watcher) => watcher.record(name, record));
    } else if (problem !== undefined) {
      const error = new CorruptRecordError(
        name,
        `change message: ${problem.field} ${problem.problem}`,
        this.#channel,
      );
      this.#tellWatchers((watcher) => watcher.problem?.(name, error));
    }
  }

  // A watcher that throws must not stop the feed for the breakers of this process.
  #tellWatchers(tell: (watcher: StoreWatcher) => void): void {
    for (const watcher of this.#watchers) {
      try {
        tell(watcher);
      } catch (error) {
        process.emitWarning(error as Error);
      }
    }
  }

  #whenSynced(): Promise<void> {
    if (this.clock.synced) return Promise.resolve();
    return this.#syncing ?? this.#syncClock(FIRST_SYNC_SAMPLES);
  }

  #syncClock(samples: number): Promise<void> {
    if (this.#syncing !== null) return this.#syncing;
    const time = () => this.#bounded(this.#redis.time(), 'TIME');
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
      return this.#check();
    });
  }

  #retryResync(): void {
    if (this.#resyncRetry !== undefined || this.#closed) return;
    this.#resyncRetryMs = Math.min(
      Math.max(this.timeout, this.#resyncRetryMs * 2),
      this.options.resyncInterval,
    );
    this.#resyncRetry = setTimeout(() => {
      this.#resyncRetry = undefined;
      if (this.#gaps > this.#healed) this.resync().catch(() => {});
    }, this.#resyncRetryMs);
    this.#resyncRetry.unref();
  }

  #stopTimers(): void {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    clearTimeout(this.#resyncRetry);
    this.#resyncRetry = undefined;
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error('RedisStore is closed');
  }

  #bounded<T>(promise: Promise<T>, what: string): Promise<T> {
    const ms = this.options.timeout;
    let cancel: (() => void) | undefined;
    const expired = new Promise<never>((_, reject) => {
      cancel = afterDue(systemClock, ms, () => reject(new RedisStoreTimeoutError(what, ms)));
    });
    return Promise.race([promise, expired]).finally(() => cancel?.());
  }
}
