import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';
import { CorruptRecordError } from '../snapshot.js';
import { topLevelState } from '../state.js';
import { LostRecordError } from './lost-record.js';
import { RedisClock } from './redis-clock.js';
import {
  type Decoded,
  decodeRecord,
  type RecordField,
  type RecordProblem,
  readChange,
  wrongFields,
} from './redis-codec.js';
import { type BreakerKeys, breakerKeys, checkStoreName } from './redis-keys.js';
import {
  type RedisStoreOptions,
  type ResolvedRedisStoreOptions,
  resolveRedisStoreOptions,
} from './redis-options.js';
import type { BreakerStore, CompareAndSetResult, StoredRecord } from './store.js';

export { LostRecordError } from './lost-record.js';
export { RedisClock } from './redis-clock.js';
export { type BreakerKeys, DEFAULT_PREFIX, encodeName } from './redis-keys.js';
export { REDIS_STORE_DEFAULTS, type RedisStoreOptions } from './redis-options.js';

/** A store call that got no answer from Redis within the store's `timeout`. */
export class RedisStoreTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`RedisStore: ${what} got no answer from Redis within ${ms} ms`);
    this.name = 'RedisStoreTimeoutError';
  }
}

type Listener = (record: StoredRecord) => void;
type ProblemListener = (error: Error) => void;
interface Follower {
  readonly record: Listener;
  readonly problem: ProblemListener | undefined;
}
/** `{1, wrong types}` or `{0, stored version, raw version, raw snapshot, wrong types}`. */
type CasReply = [2] | [1, string?] | [0, number, string | null, string | null, string];
type CasCommand = (...args: unknown[]) => Promise<CasReply>;
/** `{raw snapshot, raw version, wrong types}`. */
type ReadReply = [string | null, string | null, string];
type ReadCommand = (...args: unknown[]) => Promise<ReadReply>;

const problemText = (problem: RecordProblem) => `${problem.field}: ${problem.problem}`;

/** The commands `defineCommand` adds to the user's client. */
const COMMAND = 'statebreakerCompareAndSet';
const READ_COMMAND = 'statebreakerRead';
const lua = (file: string) => readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8');
const LUA = lua('compare-and-set.lua');
const READ_LUA = lua('read.lua');

// Offset samples at first sync: the shortest round trip gives the tightest bound.
const FIRST_SYNC_SAMPLES = 3;

interface Subscriber {
  readonly connection: Redis | Cluster;
  /** Settles once SUBSCRIBE is acknowledged; a failed attempt is retried by the next caller. */
  ready(): Promise<void>;
}

function isCluster(redis: Redis | Cluster): redis is Cluster {
  return (redis as { isCluster?: boolean }).isCluster === true;
}

/**
 * A store that shares breakers across processes through Redis (standalone or Cluster).
 *
 * - Each breaker's record lives in `${prefix}{name}:snapshot|version|state|counter|opened_at`
 *   (see {@link encodeName} for how names map into the braces). `state` (e.g. `open`,
 *   `halfOpen`), `counter` (consecutive failures) and `opened_at` (epoch ms, server time)
 *   are plain strings for `redis-cli GET`.
 * - Writes are one Lua script (`compare-and-set.lua`, loaded with `defineCommand`) that
 *   writes only if the stored version is the expected one and publishes the new record on
 *   `${prefix}changes`, atomically.
 * - One subscriber connection (`redis.duplicate()`) per store, open while any breaker
 *   follows a name, dispatches changes by name; every `resyncInterval` ms, and whenever the
 *   subscriber reconnects, the store reloads every followed record to heal lost messages.
 * - The clock is Redis server time: this host's clock plus an offset measured with `TIME`.
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
  readonly #redis: Redis | Cluster;
  readonly #cas: CasCommand;
  readonly #readRecord: ReadCommand;
  readonly #channel: string;
  readonly #listeners = new Map<string, Set<Follower>>();
  readonly #dispatched = new Map<string, number>();
  readonly #dispatchedWrite = new Map<string, string | undefined>();
  // The last problem resync reported per name, so that a record nobody rewrites (an idle
  // breaker's) is reported once, not every resyncInterval.
  readonly #resyncProblems = new Map<string, string>();
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  #subscriber: Subscriber | null = null;
  #syncing: Promise<void> | null = null;
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
    redis.defineCommand(COMMAND, { numberOfKeys: 5, lua: LUA });
    redis.defineCommand(READ_COMMAND, { numberOfKeys: 2, lua: READ_LUA });
    const commands = redis as unknown as Record<string, CasCommand & ReadCommand>;
    this.#cas = commands[COMMAND] as CasCommand;
    this.#readRecord = commands[READ_COMMAND] as ReadCommand;
    this.#syncClock(FIRST_SYNC_SAMPLES).catch(() => {});
    this.#every(this.options.clockSyncInterval, () => this.#syncClock(1));
    this.#every(this.options.resyncInterval, () => this.resync());
  }

  /** The keys of breaker `name`. */
  keys(name: string): BreakerKeys {
    return breakerKeys(this.options.prefix, name);
  }

  /**
   * The stored record of `name`, or `null` when there is none. A record that cannot be
   * restored (see {@link CorruptRecordError}) is reported to the name's followers and read as
   * `null`, so that their next write replaces it.
   */
  async load(name: string): Promise<StoredRecord | null> {
    const keys = this.keys(name);
    this.#checkOpen();
    const subscriber = this.#subscriber;
    const read = async () => {
      // Subscribed before reading: any write after the read arrives through the feed.
      await Promise.all([this.#whenSynced(), subscriber?.ready()]);
      return this.#fetch(keys);
    };
    // One bound for the whole load: a breaker's first call waits at most `timeout`.
    const record = this.#usable(name, await this.#bounded(read(), 'load'));
    // Followers now hold this version: a later read of an older one means Redis lost data.
    if (record !== null && this.#listeners.has(name)) {
      this.#dispatched.set(name, Math.max(record.version, this.#dispatched.get(name) ?? 0));
    }
    return record;
  }

  async compareAndSet(
    name: string,
    expectedVersion: number,
    record: StoredRecord,
    expectedWriteId?: string,
  ): Promise<CompareAndSetResult> {
    const keys = this.keys(name);
    this.#checkOpen();
    if (!(Number.isSafeInteger(record.version) && record.version > expectedVersion)) {
      throw new RangeError(`record version ${record.version} must exceed ${expectedVersion}`);
    }
    const { snapshot, version } = record;
    const { context } = snapshot;
    const reply = await this.#bounded(
      this.#cas.call(
        this.#redis,
        keys.snapshot,
        keys.version,
        keys.state,
        keys.counter,
        keys.openedAt,
        expectedVersion,
        version,
        JSON.stringify(snapshot),
        topLevelState(snapshot.value),
        context.failures,
        context.openedAt === null ? '' : Math.round(context.openedAt),
        this.#channel,
        name,
        expectedWriteId ?? '',
        Math.ceil(this.clock.now() + this.timeout),
      ),
      'compareAndSet',
    );
    if (reply[0] === 2) throw new RedisStoreTimeoutError('compareAndSet', this.timeout);
    if (reply[0] === 1) {
      // A key of another type was in the way and has just been replaced: say so.
      for (const field of wrongFields(reply[1])) {
        this.#report(name, field, 'the key held another type; replaced');
      }
      return { ok: true, record };
    }
    const [, currentVersion, rawVersion, rawSnapshot, wrong] = reply;
    // Unreadable: reported, and `currentVersion` (0 for an unreadable version) lets the writer
    // replace it.
    const current = this.#usable(name, decodeRecord(rawVersion, rawSnapshot, wrongFields(wrong)));
    return { ok: false, current, currentVersion };
  }

  /**
   * Calls `listener` with every record written for `name`, and `onProblem` with a
   * {@link CorruptRecordError} (whose `key` names the Redis key) for every unreadable record
   * or change message the store meets for `name`. Returns the unsubscribe function.
   */
  subscribe(name: string, listener: Listener, onProblem?: ProblemListener): () => void {
    checkStoreName(name);
    this.#checkOpen();
    let listeners = this.#listeners.get(name);
    if (listeners === undefined) {
      listeners = new Set();
      this.#listeners.set(name, listeners);
    }
    const follower: Follower = { record: listener, problem: onProblem };
    listeners.add(follower);
    this.#subscriber ??= this.#openSubscriber();
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      listeners.delete(follower);
      if (listeners.size > 0) return;
      this.#listeners.delete(name);
      this.#dispatched.delete(name);
      this.#dispatchedWrite.delete(name);
      this.#resyncProblems.delete(name);
      // No breaker follows anything: release the connection so the process may exit.
      if (this.#listeners.size === 0) this.#closeSubscriber();
    };
  }

  /**
   * Reloads every followed record and hands listeners those newer than the last one they got.
   * Runs every `resyncInterval` ms and on reconnect; exposed for tests and operators.
   */
  async resync(): Promise<void> {
    if (this.#closed) return;
    await Promise.all([...this.#listeners.keys()].map((name) => this.#resyncOne(name)));
  }

  /** Releases the store's subscriber connection and timers (not the caller's client). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.#listeners.clear();
    this.#closeSubscriber();
  }

  async #resyncOne(name: string): Promise<void> {
    // Versions only grow, so a record older than one handed out before this read was even
    // sent means Redis lost data; a newer one dispatched meanwhile by the feed is no sign.
    const seen = this.#dispatched.get(name) ?? 0;
    let decoded: Decoded;
    try {
      decoded = await this.#bounded(this.#fetch(this.keys(name)), 'resync');
    } catch {
      return; // The next resync or write heals it.
    }
    const { problem } = decoded;
    // Half a record (one key evicted or expired) is lost data, not garbage: the breakers holding
    // it write it back at once.
    if (problem?.missing && seen > 0) {
      this.#resyncProblems.delete(name);
      this.#lost(name, problem.field, 0, seen);
      return;
    }
    if (problem !== undefined && this.#resyncProblems.get(name) === problemText(problem)) return;
    const record = this.#usable(name, decoded);
    if (record !== null && this.#isNews(name, record)) {
      this.#dispatch(name, record);
    } else if (problem === undefined && (record?.version ?? 0) < seen) {
      this.#lost(name, 'version', record?.version ?? 0, seen);
    }
  }

  #lost(name: string, field: RecordField, storedVersion: number, seen: number): void {
    const error = new LostRecordError(name, this.keys(name)[field], storedVersion, seen);
    for (const { problem: onProblem } of this.#listeners.get(name) ?? []) onProblem?.(error);
  }

  async #fetch(keys: BreakerKeys): Promise<Decoded> {
    const [snapshot, version, wrong] = await this.#readRecord.call(
      this.#redis,
      keys.snapshot,
      keys.version,
    );
    return decodeRecord(version, snapshot, wrongFields(wrong));
  }

  /** The decoded record, or `null` after reporting why there is none to use. */
  #usable(name: string, decoded: Decoded): StoredRecord | null {
    const { problem } = decoded;
    if (problem === undefined) {
      this.#resyncProblems.delete(name);
    } else {
      this.#resyncProblems.set(name, problemText(problem));
      this.#report(name, problem.field, problem.problem);
    }
    return decoded.record;
  }

  #report(name: string, field: RecordField | 'channel', problem: string): void {
    const listeners = this.#listeners.get(name);
    if (listeners === undefined) return;
    const key = field === 'channel' ? this.#channel : this.keys(name)[field];
    const error = new CorruptRecordError(name, problem, key);
    for (const { problem: onProblem } of listeners) onProblem?.(error);
  }

  // Newer, or the same version holding another write (two instances re-created a lost record).
  #isNews(name: string, record: StoredRecord): boolean {
    const dispatched = this.#dispatched.get(name) ?? 0;
    return (
      record.version > dispatched ||
      (record.version === dispatched && record.snapshot.writeId !== this.#dispatchedWrite.get(name))
    );
  }

  #dispatch(name: string, record: StoredRecord): void {
    const listeners = this.#listeners.get(name);
    if (listeners === undefined) return;
    if (record.version >= (this.#dispatched.get(name) ?? 0)) {
      this.#dispatched.set(name, record.version);
      this.#dispatchedWrite.set(name, record.snapshot.writeId);
    }
    for (const { record: listener } of listeners) listener(record);
  }

  #onMessage(message: string): void {
    const change = readChange(message);
    if (change === null || !this.#listeners.has(change.name)) return;
    const { name, decoded } = change;
    if (decoded.problem === undefined) {
      if (decoded.record !== null) this.#dispatch(name, decoded.record);
      return;
    }
    // A writer published what this statebreaker cannot restore (another schema, say): report
    // it, and read the stored record, which is what followers go by.
    this.#report(
      name,
      'channel',
      `change message: ${decoded.problem.field} ${decoded.problem.problem}`,
    );
    this.#resyncOne(name).catch(() => {});
  }

  #openSubscriber(): Subscriber {
    // ioredis's own resubscription after a reconnect rejects unhandled ("Connection is closed")
    // when the store closes the subscriber meanwhile, which would crash a process that treats
    // unhandled rejections as fatal: the store resubscribes itself, with a handler.
    const own = !isCluster(this.#redis);
    const connection = own
      ? (this.#redis as Redis).duplicate({ autoResubscribe: false })
      : this.#redis.duplicate();
    // Errors surface as timeouts of the calls that needed Redis; ioredis reconnects itself.
    connection.on('error', () => {});
    connection.on('message', (channel: string, message: string) => {
      if (channel === this.#channel) this.#onMessage(message);
    });
    const subscribe = () => connection.subscribe(this.#channel).then(() => undefined);
    let subscribed = subscribe();
    subscribed.catch(() => {});
    let connected = false;
    connection.on('ready', () => {
      if (!connected) {
        connected = true;
        return;
      }
      if (own) {
        subscribed = subscribe();
        subscribed.catch(() => {});
      }
      // Messages published while the subscriber was away are lost: reload what it follows.
      this.resync().catch(() => {});
    });
    const ready = () => {
      // A SUBSCRIBE that failed (e.g. retries exhausted while Redis was down) is not retried by
      // ioredis, which resubscribes only acknowledged channels: retry it here.
      subscribed = subscribed.catch(subscribe);
      return subscribed;
    };
    return { connection, ready };
  }

  #closeSubscriber(): void {
    const subscriber = this.#subscriber;
    this.#subscriber = null;
    subscriber?.connection.disconnect();
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

  #every(ms: number, task: () => Promise<void>): void {
    const timer = setInterval(() => {
      task().catch(() => {});
    }, ms);
    timer.unref();
    this.#timers.push(timer);
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error('RedisStore is closed');
  }

  #bounded<T>(promise: Promise<T>, what: string): Promise<T> {
    const ms = this.options.timeout;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RedisStoreTimeoutError(what, ms)), ms);
    });
    return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
  }
}
