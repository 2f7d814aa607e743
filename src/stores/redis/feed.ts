import type { Cluster, Redis } from 'ioredis';
import { ShardWatch, type WatchedShard } from './ioredis-shard-watch.js';
import {
  choosePublication,
  isCluster,
  knownPublication,
  type Publication,
  type PubsubChoice,
} from './publication.js';

/** What the feed tells its store. */
export interface FeedHandlers {
  /** A change message. */
  message(message: string): void;
  /** The connection came back after a loss: messages published meanwhile are gone. */
  reconnected(): void;
}

/** How the feed listens. */
export interface FeedOptions {
  /** The store's one channel (classic pub/sub). */
  readonly channel: string;
  /** A breaker's own channel (sharded pub/sub). */
  readonly channelOf: (name: string) => string;
  readonly pubsub: PubsubChoice;
  /** Milliseconds the connection stays open after the last name is released. */
  readonly lingerMs: number;
  /** Bounds a call to Redis by the store's timeout. */
  readonly bounded: <T>(promise: Promise<T>, what: string) => Promise<T>;
}

// One sharded subscription: settled once acknowledged (or once ioredis has subscribed it again,
// see ShardWatch), `failed` when it must be sent again.
interface Shard extends WatchedShard {
  readonly settled: Promise<void>;
  answered: boolean;
  failed: boolean;
}

/**
 * The store's subscriber connection (`redis.duplicate()`), opened while breakers follow records
 * and closed once none has for `lingerMs`, so that breakers created and disposed one after
 * another share one connection and an idle process may still exit.
 *
 * Classic pub/sub subscribes the store's one channel. Sharded pub/sub subscribes each followed
 * breaker's channel with SSUBSCRIBE; on a Cluster the duplicate has ioredis's sharded
 * subscribers, one connection per master, which ioredis moves to the new master after a
 * failover or a resharding, with a {@link ShardWatch}'s help.
 */
export class ChangeFeed {
  readonly #redis: Redis | Cluster;
  readonly #options: FeedOptions;
  readonly #handlers: FeedHandlers;
  readonly #names = new Set<string>();
  /** Holders of the connection without a name of their own (watchers of every breaker). */
  #holds = 0;
  readonly #shards = new Map<string, Shard>();
  #publication: Publication | null;
  #choosing: Promise<Publication> | null = null;
  #opening: Promise<void> | null = null;
  #connection: Redis | Cluster | null = null;
  #subscribed: Promise<void> = Promise.resolve();
  #linger: ReturnType<typeof setTimeout> | undefined;
  #watch: ShardWatch | null = null;
  #closed = false;

  constructor(redis: Redis | Cluster, options: FeedOptions, handlers: FeedHandlers) {
    this.#redis = redis;
    this.#options = options;
    this.#handlers = handlers;
    this.#publication = knownPublication(redis, options.pubsub);
  }

  /** How changes are published, once known (see {@link Publication}). */
  get known(): Publication | null {
    return this.#publication;
  }

  /** How changes are published; the first call may ask the server (bounded by the timeout). */
  publication(): Promise<Publication> {
    if (this.#publication !== null) return Promise.resolve(this.#publication);
    this.#choosing ??= this.#options
      .bounded(choosePublication(this.#redis, this.#options.pubsub), 'pub/sub detection')
      .then(
        (publication) => {
          this.#publication = publication;
          return publication;
        },
        (error: unknown) => {
          // Not known yet (Redis did not answer): asked again next time.
          this.#choosing = null;
          throw error;
        },
      );
    return this.#choosing;
  }

  /** The channel a change of breaker `name` is published on. */
  channelFor(name: string, publication: Publication): string {
    return publication === 'sharded' ? this.#options.channelOf(name) : this.#options.channel;
  }

  /** Whether the connection is open (or lingering). */
  get open(): boolean {
    return this.#connection !== null || this.#opening !== null;
  }

  /** Listens for the changes of `name`: opens the connection if needed, cancels a pending close. */
  follow(name: string): void {
    if (this.#linger !== undefined) {
      clearTimeout(this.#linger);
      this.#linger = undefined;
    }
    const added = !this.#names.has(name);
    this.#names.add(name);
    if (this.#connection === null) {
      if (this.#opening === null) this.#connect();
    } else if (added && this.#publication === 'sharded') {
      this.#subscribeShard(this.#options.channelOf(name));
    }
  }

  /**
   * Keeps the connection open without following a name: under classic pub/sub it hears every
   * breaker's changes. Returns the release function.
   */
  hold(): () => void {
    this.#holds++;
    if (this.#linger !== undefined) {
      clearTimeout(this.#linger);
      this.#linger = undefined;
    }
    if (this.#connection === null && this.#opening === null) this.#connect();
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#holds--;
      if (this.#names.size === 0 && this.#holds === 0) this.#release();
    };
  }

  /** Whether the feed listens for `name`. */
  follows(name: string): boolean {
    return this.#names.has(name);
  }

  /** Stops listening for `name`; after the last one, closes after the linger time. */
  unfollow(name: string): void {
    if (!this.#names.delete(name)) return;
    const channel = this.#options.channelOf(name);
    const shard = this.#shards.get(channel);
    if (shard !== undefined) {
      this.#shards.delete(channel);
      shard.release();
      const connection = this.#connection;
      if (connection !== null) {
        Promise.resolve()
          .then(() => connection.sunsubscribe(channel))
          .catch(() => {});
      }
    }
    if (this.#names.size === 0 && this.#holds === 0) this.#release();
  }

  /**
   * Settles once every subscription is acknowledged. A subscription that failed (retries
   * exhausted while Redis was down) is not retried by ioredis, which resubscribes only
   * acknowledged channels: it is retried here.
   */
  ready(): Promise<void> {
    if (this.#opening !== null) return this.#opening.then(() => this.ready());
    if (this.#connection === null) {
      // The connection waits for the publication, which Redis did not tell in time: ask again.
      if ((this.#names.size > 0 || this.#holds > 0) && !this.#closed) {
        this.#connect();
        return this.ready();
      }
      return Promise.resolve();
    }
    if (this.#publication !== 'sharded') {
      this.#subscribed = this.#subscribed.catch(() => this.#subscribe());
      return this.#subscribed;
    }
    for (const [channel, shard] of this.#shards) {
      if (shard.failed) this.#subscribeShard(channel);
    }
    return Promise.all([...this.#shards.values()].map((shard) => shard.settled)).then(
      () => undefined,
    );
  }

  close(): void {
    this.#closed = true;
    if (this.#linger !== undefined) clearTimeout(this.#linger);
    this.#linger = undefined;
    this.#names.clear();
    this.#disconnect();
  }

  #release(): void {
    if (this.#linger !== undefined || !this.open) return;
    this.#linger = setTimeout(() => {
      this.#linger = undefined;
      this.#disconnect();
    }, this.#options.lingerMs);
    this.#linger.unref();
  }

  #disconnect(): void {
    const connection = this.#connection;
    this.#connection = null;
    this.#watch?.stop();
    this.#watch = null;
    for (const shard of this.#shards.values()) shard.release();
    this.#shards.clear();
    if (connection === null) return;
    // Unsubscribed first: ioredis-mock's disconnect() leaves the connection's listener on its
    // shared channel (every later message still reaches it, and Node warns past 10 of them).
    // On Redis the UNSUBSCRIBE goes out just before the socket closes, or fails with it. Sharded
    // subscriptions end with the connection (a SUNSUBSCRIBE of every channel has no slot to be
    // routed by on a Cluster).
    if (this.#publication !== 'sharded') connection.unsubscribe().catch(() => {});
    connection.disconnect();
  }

  #connect(): void {
    if (this.#publication !== null) {
      this.#open(this.#publication);
      return;
    }
    const opening = this.publication().then(
      (publication) => {
        if (this.#opening !== opening) return;
        this.#opening = null;
        if ((this.#names.size > 0 || this.#holds > 0) && !this.#closed) this.#open(publication);
      },
      (error: unknown) => {
        if (this.#opening === opening) this.#opening = null;
        throw error;
      },
    );
    opening.catch(() => {});
    this.#opening = opening;
  }

  #open(publication: Publication): void {
    const sharded = publication === 'sharded';
    const cluster = isCluster(this.#redis);
    // ioredis's own resubscription after a reconnect rejects unhandled ("Connection is closed")
    // when the store closes the subscriber meanwhile, which would crash a process that treats
    // unhandled rejections as fatal: on a standalone server the feed resubscribes itself, with
    // a handler. A Cluster resubscribes on its own, to the slot's new master after a failover.
    const connection = cluster
      ? (this.#redis as Cluster).duplicate([], sharded ? { shardedSubscribers: true } : {})
      : (this.#redis as Redis).duplicate({ autoResubscribe: false });
    this.#connection = connection;
    // Errors surface as timeouts of the calls that needed Redis; ioredis reconnects itself.
    connection.on('error', () => {});
    const { channel } = this.#options;
    connection.on('message', (from: string, message: string) => {
      if (from === channel && this.#connection === connection) this.#handlers.message(message);
    });
    connection.on('smessage', (from: string, message: string) => {
      if (this.#shards.has(from) && this.#connection === connection) {
        this.#handlers.message(message);
      }
    });
    if (cluster && sharded) {
      this.#watch = new ShardWatch(connection as Cluster, {
        shards: () => this.#shards.values(),
        reconnected: () => this.#handlers.reconnected(),
      });
    }
    if (sharded) {
      for (const name of this.#names) this.#subscribeShard(this.#options.channelOf(name));
    } else {
      this.#subscribed = this.#subscribe();
      this.#subscribed.catch(() => {});
    }
    let connected = false;
    connection.on('ready', () => {
      if (!connected) {
        connected = true;
        return;
      }
      if (this.#connection !== connection) return;
      if (!cluster) this.#resubscribe();
      this.#handlers.reconnected();
    });
  }

  /**
   * Reads the Cluster's slot map again (one CLUSTER SLOTS), so that subscriptions a resharding
   * ended unnoticed follow their slots; the store calls it with its periodic check.
   */
  refreshRoutes(): void {
    this.#watch?.refresh();
  }

  #resubscribe(): void {
    if (this.#publication !== 'sharded') {
      this.#subscribed = this.#subscribe();
      this.#subscribed.catch(() => {});
      return;
    }
    for (const channel of this.#shards.keys()) this.#subscribeShard(channel);
  }

  #subscribe(): Promise<void> {
    const connection = this.#connection;
    if (connection === null) return Promise.resolve();
    return connection.subscribe(this.#options.channel).then(() => undefined);
  }

  // One channel per SSUBSCRIBE: channels of several slots in one command are refused on a
  // Cluster (CROSSSLOT).
  #subscribeShard(channel: string): void {
    const connection = this.#connection;
    if (connection === null) return;
    let release = () => {};
    const early = new Promise<void>((resolve) => {
      release = resolve;
    });
    const acked = Promise.resolve()
      .then(() => connection.ssubscribe(channel))
      .then(() => undefined);
    const shard: Shard = {
      settled: Promise.race([acked, early]),
      release,
      sentAt: this.#watch?.stamp() ?? 0,
      answered: false,
      failed: false,
    };
    acked.then(
      () => {
        shard.answered = true;
      },
      () => {
        shard.answered = true;
        if (this.#shards.get(channel) === shard) shard.failed = true;
      },
    );
    shard.settled.catch(() => {});
    this.#shards.get(channel)?.release();
    this.#shards.set(channel, shard);
  }
}
