import type { RedisPort, SubscriberPort } from './port.js';
import {
  choosePublication,
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

// One sharded subscription: settled once acknowledged (or once the client has taken it over),
// `failed` when it must be sent again.
interface Shard {
  readonly settled: Promise<void>;
  failed: boolean;
}

/**
 * The store's subscriber (the client port's: a second connection, or a Cluster client's own
 * sharded subscribers), opened while breakers follow records and closed once none has for
 * `lingerMs`, so that breakers created and disposed one after another share one connection
 * and an idle process may still exit.
 *
 * Classic pub/sub subscribes the store's one channel. Sharded pub/sub subscribes each followed
 * breaker's channel with SSUBSCRIBE; on a Cluster the client's sharded subscribers (one
 * connection per master) follow the slot to its new master after a failover or a resharding.
 */
export class ChangeFeed {
  readonly #port: RedisPort;
  readonly #options: FeedOptions;
  readonly #handlers: FeedHandlers;
  readonly #names = new Set<string>();
  /** Holders of the connection without a name of their own (watchers of every breaker). */
  #holds = 0;
  readonly #shards = new Map<string, Shard>();
  #publication: Publication | null;
  #choosing: Promise<Publication> | null = null;
  #opening: Promise<void> | null = null;
  #connection: SubscriberPort | null = null;
  #subscribed: Promise<void> = Promise.resolve();
  #linger: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(port: RedisPort, options: FeedOptions, handlers: FeedHandlers) {
    this.#port = port;
    this.#options = options;
    this.#handlers = handlers;
    this.#publication = knownPublication(port, options.pubsub);
  }

  /** How changes are published, once known (see {@link Publication}). */
  get known(): Publication | null {
    return this.#publication;
  }

  /** How changes are published; the first call may ask the server (bounded by the timeout). */
  publication(): Promise<Publication> {
    if (this.#publication !== null) return Promise.resolve(this.#publication);
    this.#choosing ??= this.#options
      .bounded(choosePublication(this.#port, this.#options.pubsub), 'pub/sub detection')
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
    if (this.#shards.delete(channel)) {
      this.#connection?.sunsubscribe(channel).catch(() => {});
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
    this.#shards.clear();
    connection?.close();
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
    const { channel } = this.#options;
    const connection: SubscriberPort = this.#port.subscriber(
      {
        message: (from, message) => {
          if (this.#connection !== connection) return;
          if (sharded ? this.#shards.has(from) : from === channel) this.#handlers.message(message);
        },
        reconnected: () => {
          if (this.#connection !== connection) return;
          this.#resubscribe();
          this.#handlers.reconnected();
        },
      },
      sharded,
    );
    this.#connection = connection;
    if (sharded) {
      for (const name of this.#names) this.#subscribeShard(this.#options.channelOf(name));
    } else {
      this.#subscribed = this.#subscribe();
      this.#subscribed.catch(() => {});
    }
  }

  /**
   * Reads the Cluster's slot map again (one CLUSTER SLOTS), so that subscriptions a resharding
   * ended unnoticed follow their slots; the store calls it with its periodic check.
   */
  refreshRoutes(): void {
    this.#connection?.refreshRoutes();
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
    return connection.subscribe(this.#options.channel);
  }

  #subscribeShard(channel: string): void {
    const connection = this.#connection;
    if (connection === null) return;
    const settled = Promise.resolve().then(() => connection.ssubscribe(channel));
    const shard: Shard = { settled, failed: false };
    settled.catch(() => {
      if (this.#shards.get(channel) === shard) shard.failed = true;
    });
    this.#shards.set(channel, shard);
  }
}
