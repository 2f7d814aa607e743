import type { Cluster, Redis } from 'ioredis';

function isCluster(redis: Redis | Cluster): redis is Cluster {
  return (redis as { isCluster?: boolean }).isCluster === true;
}

/** What the feed tells its store. */
export interface FeedHandlers {
  /** A message on the change channel. */
  message(message: string): void;
  /** The connection came back after a loss: messages published meanwhile are gone. */
  reconnected(): void;
}

/**
 * The store's subscriber connection to the change channel (`redis.duplicate()`), opened while
 * breakers follow records and closed once none has for `lingerMs`, so that breakers created and
 * disposed one after another share one connection and an idle process may still exit.
 */
export class ChangeFeed {
  readonly #redis: Redis | Cluster;
  readonly #channel: string;
  readonly #lingerMs: number;
  readonly #handlers: FeedHandlers;
  #connection: Redis | Cluster | null = null;
  #subscribed: Promise<void> = Promise.resolve();
  #linger: ReturnType<typeof setTimeout> | undefined;

  constructor(redis: Redis | Cluster, channel: string, lingerMs: number, handlers: FeedHandlers) {
    this.#redis = redis;
    this.#channel = channel;
    this.#lingerMs = lingerMs;
    this.#handlers = handlers;
  }

  /** Whether the connection is open (or lingering). */
  get open(): boolean {
    return this.#connection !== null;
  }

  /** Opens the connection if needed and cancels a pending close. */
  use(): void {
    if (this.#linger !== undefined) {
      clearTimeout(this.#linger);
      this.#linger = undefined;
    }
    if (this.#connection === null) this.#connect();
  }

  /** Nobody follows anything: close after the linger time, unless `use()` comes first. */
  release(): void {
    if (this.#connection === null || this.#linger !== undefined) return;
    this.#linger = setTimeout(() => {
      this.#linger = undefined;
      this.close();
    }, this.#lingerMs);
    this.#linger.unref();
  }

  /**
   * Settles once SUBSCRIBE is acknowledged. A SUBSCRIBE that failed (retries exhausted while
   * Redis was down) is not retried by ioredis, which resubscribes only acknowledged channels:
   * it is retried here.
   */
  ready(): Promise<void> {
    if (this.#connection === null) return Promise.resolve();
    this.#subscribed = this.#subscribed.catch(() => this.#subscribe());
    return this.#subscribed;
  }

  close(): void {
    if (this.#linger !== undefined) clearTimeout(this.#linger);
    this.#linger = undefined;
    const connection = this.#connection;
    this.#connection = null;
    // Unsubscribed first: ioredis-mock's disconnect() leaves the connection's listener on its
    // shared channel (every later message still reaches it, and Node warns past 10 of them).
    // On Redis the UNSUBSCRIBE goes out just before the socket closes, or fails with it.
    connection?.unsubscribe().catch(() => {});
    connection?.disconnect();
  }

  #subscribe(): Promise<void> {
    const connection = this.#connection;
    if (connection === null) return Promise.resolve();
    return connection.subscribe(this.#channel).then(() => undefined);
  }

  #connect(): void {
    // ioredis's own resubscription after a reconnect rejects unhandled ("Connection is closed")
    // when the store closes the subscriber meanwhile, which would crash a process that treats
    // unhandled rejections as fatal: the feed resubscribes itself, with a handler.
    const own = !isCluster(this.#redis);
    const connection = own
      ? (this.#redis as Redis).duplicate({ autoResubscribe: false })
      : this.#redis.duplicate();
    this.#connection = connection;
    // Errors surface as timeouts of the calls that needed Redis; ioredis reconnects itself.
    connection.on('error', () => {});
    connection.on('message', (channel: string, message: string) => {
      if (channel === this.#channel && this.#connection === connection) {
        this.#handlers.message(message);
      }
    });
    this.#subscribed = this.#subscribe();
    this.#subscribed.catch(() => {});
    let connected = false;
    connection.on('ready', () => {
      if (!connected) {
        connected = true;
        return;
      }
      if (this.#connection !== connection) return;
      if (own) {
        this.#subscribed = this.#subscribe();
        this.#subscribed.catch(() => {});
      }
      this.#handlers.reconnected();
    });
  }
}
