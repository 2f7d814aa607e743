import type { Cluster, Redis } from 'ioredis';
import { withoutCredentials } from './address.js';
import { ShardWatch, type WatchedShard } from './ioredis-shard-watch.js';
import type {
  PortScript,
  RedisPort,
  ScanNode,
  SubscriberHandlers,
  SubscriberPort,
} from './port.js';

// The adapter for ioredis 5 and 6 and iovalkey (an API-compatible fork), standalone or Cluster,
// and ioredis-mock. Scripts go through `defineCommand`, which sends EVALSHA and falls back to
// EVAL on NOSCRIPT itself (and is the only way ioredis-mock runs a script). The subscriber is
// `duplicate()`: on a Cluster under sharded pub/sub with ioredis's `shardedSubscribers`.

type Command = (...args: unknown[]) => Promise<unknown>;

/** Whether `client` looks like an ioredis (or iovalkey, or ioredis-mock) client. */
export function isIORedis(client: object): boolean {
  const c = client as { defineCommand?: unknown; duplicate?: unknown };
  return typeof c.defineCommand === 'function' && typeof c.duplicate === 'function';
}

function isClusterClient(redis: Redis | Cluster): redis is Cluster {
  return (redis as { isCluster?: boolean }).isCluster === true;
}

function addressOf(redis: Redis | Cluster): string {
  if (isClusterClient(redis)) {
    const seeds = (redis as unknown as { startupNodes?: unknown[] }).startupNodes ?? [];
    const named = seeds.map((seed) =>
      typeof seed === 'object' && seed !== null
        ? `${(seed as { host?: string }).host ?? 'localhost'}:${(seed as { port?: number }).port ?? 6379}`
        : typeof seed === 'string'
          ? withoutCredentials(seed)
          : `localhost:${String(seed)}`,
    );
    return named.length > 0 ? `Cluster ${named.join(',')}` : 'a Redis Cluster';
  }
  const options = (redis as { options?: { path?: string | null; host?: string; port?: number } })
    .options;
  if (options?.path) return options.path;
  return `${options?.host ?? 'localhost'}:${options?.port ?? 6379}`;
}

/**
 * The `keyPrefix` of an ioredis client, which ioredis applies to keys but neither to SCAN
 * patterns nor to channels: the store's `prefix` does that job everywhere.
 */
export function keyPrefixOf(redis: Redis | Cluster): string {
  const options = redis.options as { keyPrefix?: string; redisOptions?: { keyPrefix?: string } };
  return options?.keyPrefix || options?.redisOptions?.keyPrefix || '';
}

/** The port onto an ioredis, iovalkey or ioredis-mock client. */
export function ioredisPort(redis: Redis | Cluster): RedisPort {
  const cluster = isClusterClient(redis);
  const raw = typeof (redis as { call?: unknown }).call === 'function';
  let last: Error | undefined;
  // A Cluster that cannot read its slot map says only that; the node's own error says why.
  const onError = (error: Error) => {
    last = (error as { lastNodeError?: Error }).lastNodeError ?? error;
  };
  const onReady = () => {
    last = undefined;
  };
  redis.on('error', onError);
  redis.on('ready', onReady);
  // A Cluster reports a node's failure as `node error` (its own `error` only when it gives up).
  if (cluster) redis.on('node error', onError);
  const commands = redis as unknown as Record<string, Command | undefined>;
  const defined = new Map<string, Command>();
  return {
    family: raw ? 'ioredis' : 'ioredis-mock',
    cluster,
    address: addressOf(redis),
    rawCommands: raw,
    // An ioredis Cluster sends SSUBSCRIBE to the node of the channel's slot only with its
    // `shardedSubscribers` (ioredis 5.5 or later), which then lists the option among its
    // defaults; iovalkey 0.4 has none.
    shardedSubscribers: raw && (!cluster || Object.hasOwn(redis.options, 'shardedSubscribers')),
    runScript(script: PortScript, keys, args) {
      // A script that takes as many keys as the call gives is defined once per key count used
      // (`name_N`): ioredis-mock runs a command defined without `numberOfKeys` with the key
      // count among its KEYS. Every such command is the same script, cached once by Redis.
      const name = script.keys === undefined ? `${script.command}_${keys.length}` : script.command;
      let run = defined.get(name);
      if (run === undefined) {
        if (typeof commands[name] !== 'function') {
          redis.defineCommand(name, { numberOfKeys: keys.length, lua: script.lua });
        }
        run = commands[name] as Command;
        defined.set(name, run);
      }
      return run.call(redis, ...keys, ...args);
    },
    get: (key) => redis.get(key),
    pttl: (key) => redis.pttl(key),
    time: () => redis.time(),
    command: (args) => redis.call(...(args as [string, ...string[]])),
    isReplyError: (error) => error instanceof Error && error.name === 'ReplyError',
    // `slots[slot]` lists the slot's nodes as `host:port`, the master first; empty until the
    // first CLUSTER SLOTS, and updated by ioredis on MOVED.
    slotMaster: (slot) => (cluster ? (redis as Cluster).slots[slot]?.[0] : undefined),
    runScriptOn(node, script, keys, args) {
      // The slot map names a node `host:port` as its connection was made.
      const client = cluster
        ? (redis as Cluster)
            .nodes('master')
            .find((master) => `${master.options.host}:${master.options.port}` === node)
        : undefined;
      if (client === undefined) return undefined;
      const rest = [String(keys.length), ...keys, ...args];
      return client.call('EVALSHA', script.sha, ...rest).catch((error: unknown) => {
        if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
        return client.call('EVAL', script.lua, ...rest);
      });
    },
    async masters() {
      const nodes = cluster ? redis.nodes('master') : [redis as Redis];
      return nodes.map(
        (node): ScanNode => ({
          scan: (cursor, pattern, count) => node.scan(cursor, 'MATCH', pattern, 'COUNT', count),
        }),
      );
    },
    subscriber: (handlers, sharded) =>
      ioredisSubscriber(redis, handlers, sharded, (error) => {
        last = error;
      }),
    lastError: () => last,
    release() {
      redis.off('error', onError);
      redis.off('ready', onReady);
      if (cluster) redis.off('node error', onError);
    },
  };
}

// One sharded subscription: settled once acknowledged, or once ioredis or the watch has subscribed
// it again (see ShardWatch).
interface Shard extends WatchedShard {
  readonly settled: Promise<void>;
  answered: boolean;
}

function ioredisSubscriber(
  redis: Redis | Cluster,
  handlers: SubscriberHandlers,
  sharded: boolean,
  onError: (error: Error) => void,
): SubscriberPort {
  const cluster = isClusterClient(redis);
  // ioredis's own resubscription after a reconnect rejects unhandled ("Connection is closed")
  // when the store closes the subscriber meanwhile, which would crash a process that treats
  // unhandled rejections as fatal: on a standalone server the feed resubscribes itself, with
  // a handler. A Cluster resubscribes on its own, to the slot's new master after a failover.
  const connection = cluster
    ? (redis as Cluster).duplicate([], sharded ? { shardedSubscribers: true } : {})
    : (redis as Redis).duplicate({ autoResubscribe: false });
  const shards = new Map<string, Shard>();
  const channels = new Set<string>();
  let attempts = 0;
  // Errors surface as timeouts of the calls that needed Redis, naming the last one; ioredis
  // reconnects itself.
  connection.on('error', onError);
  connection.on('message', (channel: string, message: string) => {
    if (channels.has(channel)) handlers.message(channel, message);
  });
  connection.on('smessage', (channel: string, message: string) => {
    if (shards.has(channel)) handlers.message(channel, message);
  });
  const watch =
    cluster && sharded
      ? new ShardWatch(connection as Cluster, {
          shards: () => shards.values(),
          shard: (channel) => shards.get(channel),
          reconnected: () => handlers.reconnected(),
        })
      : null;
  let connected = false;
  connection.on('ready', () => {
    if (!connected) {
      connected = true;
      return;
    }
    handlers.reconnected();
  });
  return {
    subscribe(channel) {
      // A Cluster subscribes again on its own after a reconnect.
      if (cluster && channels.has(channel)) return Promise.resolve();
      channels.add(channel);
      const attempt = ++attempts;
      return connection.subscribe(channel).then(
        () => undefined,
        (error: unknown) => {
          // Sent again when the feed asks: ioredis resubscribes only acknowledged channels.
          if (attempt === attempts) channels.delete(channel);
          throw error;
        },
      );
    },
    // One channel per SSUBSCRIBE: channels of several slots in one command are refused on a
    // Cluster (CROSSSLOT).
    ssubscribe(channel) {
      const held = shards.get(channel);
      if (cluster && held !== undefined) return held.settled;
      let release = () => {};
      const early = new Promise<void>((resolve) => {
        release = resolve;
      });
      const acked = Promise.resolve()
        .then(() => connection.ssubscribe(channel))
        .then(() => undefined);
      const answered = () => {
        shard.answered = true;
      };
      const shard: Shard = {
        channel,
        settled: Promise.race([acked, early]),
        release,
        confirm() {
          answered();
          release();
        },
        sentAt: watch?.stamp() ?? 0,
        answered: false,
      };
      acked.then(answered, () => {
        answered();
        // Sent again when the feed asks: ioredis resubscribes only acknowledged channels.
        if (shards.get(channel) === shard) shards.delete(channel);
      });
      held?.release();
      shards.set(channel, shard);
      return shard.settled;
    },
    sunsubscribe(channel) {
      const shard = shards.get(channel);
      shards.delete(channel);
      shard?.release();
      return Promise.resolve()
        .then(() => connection.sunsubscribe(channel))
        .then(() => undefined);
    },
    refreshRoutes() {
      watch?.refresh();
    },
    close() {
      watch?.stop();
      for (const shard of shards.values()) shard.release();
      shards.clear();
      // Unsubscribed first: ioredis-mock's disconnect() leaves the connection's listener on its
      // shared channel (every later message still reaches it, and Node warns past 10 of them).
      // On Redis the UNSUBSCRIBE goes out just before the socket closes, or fails with it.
      // Sharded subscriptions end with the connection (a SUNSUBSCRIBE of every channel has no
      // slot to be routed by on a Cluster).
      if (!sharded) connection.unsubscribe().catch(() => {});
      channels.clear();
      connection.disconnect();
    },
  };
}
