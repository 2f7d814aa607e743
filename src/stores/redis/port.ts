/**
 * The narrow client port: everything the Redis store asks of a client. The store's protocol
 * (scripts, feed, resync, listing, clock) is written once against it; one adapter per client
 * family (ioredis and iovalkey: `ioredis-port.ts`; node-redis: `node-redis-port.ts`) maps it
 * onto that client. Replies come in RESP2 shapes whatever protocol the client speaks: strings
 * for bulk strings, numbers for integers, `null` (or `false` on ioredis-mock) for nil, arrays.
 *
 * A new client family is one file beside the others: a test that recognises its clients
 * (`isX(client)`), a function that returns this port for one, and a line in `client.ts`'s
 * `portOf`. Its tests are a family in test/support/redis-clients.ts: the matrix files then run
 * it on every path, fault and Cluster check.
 */
export interface RedisPort {
  /** The client family, for messages: `ioredis`, `iovalkey`, `node-redis`, `ioredis-mock`. */
  readonly family: string;
  /** Whether the client is a Cluster client. */
  readonly cluster: boolean;
  /** Where the client connects, for messages: a socket path, `host:port`, or a Cluster's seeds. */
  readonly address: string;
  /** Whether arbitrary commands can be sent (ioredis-mock has no `call`). */
  readonly rawCommands: boolean;
  /**
   * Whether the client can carry sharded subscriptions where their slot lives: always on a
   * standalone server; on a Cluster, only clients with per-shard subscribers.
   */
  readonly shardedSubscribers: boolean;
  /** Runs `script` by its SHA1, sending its source when the server answers NOSCRIPT. */
  runScript(
    script: PortScript,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown>;
  /** `GET key`. */
  get(key: string): Promise<string | null>;
  /** `PTTL key`: ms the key lives, -1 when it does not expire, -2 when it is not there. */
  pttl(key: string): Promise<number>;
  /** `TIME`: seconds and microseconds. */
  time(): Promise<ReadonlyArray<string | number>>;
  /** A keyless command on any node (`COMMAND INFO SPUBLISH`). */
  command(args: readonly string[]): Promise<unknown>;
  /** Whether `error` is the server's answer (an error reply), not a failure to reach it. */
  isReplyError(error: unknown): boolean;
  /**
   * The master that serves `slot` in a Cluster client's slot map, as the client names it (an
   * address): which breakers one script may check together. `undefined` on a standalone server
   * and while the client has no map. The map may be stale (a slot that moved since): a script
   * that meets a key its node no longer serves fails, and the store reads breaker by breaker.
   */
  slotMaster(slot: number): string | undefined;
  /**
   * Runs `script` on the Cluster master `node` (as {@link slotMaster} names it) over that node's
   * own connection, sending its source when the node answers NOSCRIPT. A redirection (MOVED,
   * ASK) is the node's answer, not followed: a script sent after ASK runs on the importing node
   * with the right to read its importing slot, where a key not moved yet reads as missing.
   * `undefined` when the client holds no connection to `node` (or is not a Cluster client).
   */
  runScriptOn(
    node: string,
    script: PortScript,
    keys: readonly string[],
    args: readonly string[],
  ): Promise<unknown> | undefined;
  /** The standalone server, or each master of a Cluster, for SCAN. */
  masters(): Promise<readonly ScanNode[]>;
  /** A subscriber (a second connection, or the Cluster's own sharded subscribers). */
  subscriber(handlers: SubscriberHandlers, sharded: boolean): SubscriberPort;
  /**
   * The last connection error the client reported since it was last ready, if any: the cause
   * named when a call gets no answer in time.
   */
  lastError(): Error | undefined;
  /** Stops listening to the client's events. The client itself stays the caller's. */
  release(): void;
}

/** A Lua script as the port runs it. */
export interface PortScript {
  /** The file's name without its key count (`compareAndSet`). */
  readonly name: string;
  /** Keys per call, or `undefined` when the call decides. */
  readonly keys: number | undefined;
  readonly lua: string;
  /** SHA1 of `lua`, as EVALSHA takes it. */
  readonly sha: string;
  /** The command name ioredis's `defineCommand` gets: carries the script's hash. */
  readonly command: string;
}

/** One node to SCAN. */
export interface ScanNode {
  /** `SCAN cursor MATCH pattern COUNT count`: the next cursor and the keys. */
  scan(cursor: string, pattern: string, count: number): Promise<[string, string[]]>;
}

/** What a subscriber tells the feed. */
export interface SubscriberHandlers {
  /** A message on a channel (classic or sharded). */
  message(channel: string, message: string): void;
  /** The subscriber came back after a loss: messages published meanwhile are gone. */
  reconnected(): void;
}

/** The feed's subscriber. */
export interface SubscriberPort {
  /**
   * SUBSCRIBE `channel`; settles once acknowledged. Called again after `reconnected`: an adapter
   * whose client resubscribes on its own answers once the connection is back.
   */
  subscribe(channel: string): Promise<void>;
  /**
   * SSUBSCRIBE `channel` on the node of its slot; settles once acknowledged, or once the client
   * has taken the subscription over (a Cluster client that subscribes it again after MOVED).
   */
  ssubscribe(channel: string): Promise<void>;
  /** SUNSUBSCRIBE `channel`. */
  sunsubscribe(channel: string): Promise<void>;
  /** Reads a Cluster's slot map again, so that subscriptions follow their slots. */
  refreshRoutes(): void;
  /** Ends the subscriber's connections (or its subscriptions on the caller's client). */
  close(): void;
}

/** Thrown when a client cannot be used by the store, naming why. */
export function unsupportedClient(what: string): TypeError {
  return new TypeError(
    `RedisStore needs an ioredis 5/6 or iovalkey Redis or Cluster, or a node-redis 5/6 client or cluster (createClient / createCluster); got ${what}`,
  );
}
