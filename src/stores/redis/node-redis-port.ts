import { seedAddress, withoutCredentials } from './address.js';
import type {
  Args,
  CommandOptions,
  Listener,
  NodeRedisClient,
  NodeRedisCluster,
} from './node-redis-types.js';
import type {
  PortScript,
  RedisPort,
  ScanNode,
  SubscriberHandlers,
  SubscriberPort,
} from './port.js';

// The adapter for node-redis 5 and 6 (the `redis` package): a client (`createClient`) or a
// cluster (`createCluster`). Scripts are declared when a node-redis client is created, so a
// library handed one sends EVALSHA through `sendCommand` and EVAL on NOSCRIPT, as node-redis
// itself does. Every command asks for node-redis's default type mapping, so that replies keep
// their plain shapes whatever `typeMapping` the user set. The standalone subscriber is
// `duplicate()` + `connect()`; a cluster subscribes on the cluster object itself, which keeps
// per-shard subscribers and follows `sharded-channel-moved` on its own.

const PLAIN: CommandOptions = { typeMapping: {} };

// A Cluster's subscriber after a node's error: the refresh waits this long for more errors of
// the same failure, then tries again this often until the slot map is read and every
// subscription is made again, each awaited at most this long.
const REFRESH_DEBOUNCE_MS = 100;
const REFRESH_RETRY_MS = 1_000;
const REFRESH_BOUND_MS = 5_000;

// `promise`, rejected past `ms` (a subscription sent to a dead node waits for its reconnect).
function within(promise: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/** Whether `client` looks like a node-redis client or cluster. */
export function isNodeRedis(client: object): boolean {
  const c = client as { sendCommand?: unknown; sSubscribe?: unknown; defineCommand?: unknown };
  return (
    typeof c.sendCommand === 'function' &&
    typeof c.sSubscribe === 'function' &&
    typeof c.defineCommand !== 'function'
  );
}

function isClusterClient(client: object): client is NodeRedisCluster {
  return typeof (client as { nodeClient?: unknown }).nodeClient === 'function';
}

// node-redis's errors set no name of their own: known by their class.
function isOfClass(error: unknown, name: string): boolean {
  for (let p = error; p !== null && typeof p === 'object'; p = Object.getPrototypeOf(p)) {
    if ((p as { constructor?: { name?: string } }).constructor?.name === name) return true;
  }
  return false;
}

const isErrorReply = (error: unknown) => isOfClass(error, 'ErrorReply');

// A client handed over before `connect()` (or closed since) answers every command with "The
// client is closed", which names neither the client nor the remedy. A store made before
// `connect()` works once the caller connects, so this is said per call, not at construction.
function explainClosed(error: unknown, address: string): unknown {
  if (!isOfClass(error, 'ClientClosedError')) return error;
  return new Error(
    `RedisStore: the node-redis client at ${address} is not open: call await client.connect() before the store's first call (or the client was closed since)`,
    { cause: error },
  );
}

function addressOf(client: NodeRedisClient | NodeRedisCluster): string {
  if (isClusterClient(client)) {
    const roots = client._options?.rootNodes ?? [];
    const named = roots.map((n) => seedAddress({ url: n.url, ...n.socket }));
    return named.length > 0 ? `Cluster ${named.join(',')}` : 'a Redis Cluster';
  }
  const { options } = client;
  if (options?.socket?.path) return options.socket.path;
  if (options?.url) return withoutCredentials(options.url);
  return `${options?.socket?.host ?? 'localhost'}:${options?.socket?.port ?? 6379}`;
}

/** The port onto a node-redis client or cluster. */
export function nodeRedisPort(client: object): RedisPort {
  const c = client as NodeRedisClient | NodeRedisCluster;
  const cluster = isClusterClient(c);
  const address = addressOf(c);
  const send = (firstKey: string | undefined, args: Args, readonly = false) =>
    (cluster
      ? (c as NodeRedisCluster).sendCommand(firstKey, readonly, args, PLAIN)
      : (c as NodeRedisClient).sendCommand(args, PLAIN)
    ).catch((error: unknown) => {
      throw explainClosed(error, address);
    });
  let last: Error | undefined;
  const onError = (error: Error) => {
    last = error;
  };
  const onReady = () => {
    last = undefined;
  };
  c.on('error', onError);
  c.on('ready', onReady);
  // A cluster reports its nodes' failures (ECONNREFUSED, auth) as `node-error`, not `error`.
  if (cluster) {
    c.on('node-error', onError);
    c.on('node-ready', onReady);
  }
  return {
    family: 'node-redis',
    cluster,
    address,
    rawCommands: true,
    shardedSubscribers: true,
    async runScript(script: PortScript, keys, args) {
      const rest = [String(keys.length), ...keys, ...args.map(String)];
      try {
        return await send(keys[0], ['EVALSHA', script.sha, ...rest]);
      } catch (error) {
        if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
        return send(keys[0], ['EVAL', script.lua, ...rest]);
      }
    },
    runScriptOn(node, script, keys, args) {
      const master = cluster
        ? (c as NodeRedisCluster).masters.find((m) => m.address === node)
        : undefined;
      if (master === undefined) return undefined;
      const rest = [String(keys.length), ...keys, ...args];
      // The node's own client: node-redis follows no redirection there.
      const onNode = async (args: Args) => {
        const client = await (c as NodeRedisCluster).nodeClient(master);
        return client.sendCommand(args, PLAIN);
      };
      return onNode(['EVALSHA', script.sha, ...rest])
        .catch((error: unknown) => {
          if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
          return onNode(['EVAL', script.lua, ...rest]);
        })
        .catch((error: unknown) => {
          throw explainClosed(error, node);
        });
    },
    get: (key) => send(key, ['GET', key], true) as Promise<string | null>,
    pttl: (key) => send(key, ['PTTL', key], true).then(Number),
    time: () => send(undefined, ['TIME'], true) as Promise<string[]>,
    command: (args) => send(undefined, args, true),
    isReplyError: isErrorReply,
    slotMaster: (slot) =>
      cluster ? (c as NodeRedisCluster).slots?.[slot]?.master?.address : undefined,
    async masters() {
      const clients = cluster
        ? await Promise.all(
            (c as NodeRedisCluster).masters.map((m) => (c as NodeRedisCluster).nodeClient(m)),
          )
        : [c as NodeRedisClient];
      return clients.map(
        (node): ScanNode => ({
          scan: (cursor, pattern, count) =>
            node.sendCommand(
              ['SCAN', cursor, 'MATCH', pattern, 'COUNT', String(count)],
              PLAIN,
            ) as Promise<[string, string[]]>,
        }),
      );
    },
    subscriber: (handlers, sharded) =>
      cluster
        ? clusterSubscriber(c as NodeRedisCluster, handlers, sharded)
        : clientSubscriber(c as NodeRedisClient, handlers, (error) => {
            last = error;
          }),
    lastError: () => last,
    release() {
      c.off('error', onError);
      c.off('ready', onReady);
      if (cluster) {
        c.off('node-error', onError);
        c.off('node-ready', onReady);
      }
    },
  };
}

// A second connection of the store's own: node-redis subscribes its channels again after a
// reconnect, so a channel already held is only awaited.
function clientSubscriber(
  client: NodeRedisClient,
  handlers: SubscriberHandlers,
  onError: (error: Error) => void,
): SubscriberPort {
  const connection = client.duplicate();
  const held = new Set<string>();
  connection.on('error', onError);
  let connected = false;
  connection.on('ready', () => {
    if (!connected) {
      connected = true;
      return;
    }
    handlers.reconnected();
  });
  const listener: Listener = (message, channel) => {
    if (held.has(channel)) handlers.message(channel, message);
  };
  const opened = connection.connect();
  opened.catch(() => {});
  let closed = false;
  const whenReady = () =>
    connection.isReady
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          const ready = () => {
            connection.off('ready', ready);
            resolve();
          };
          connection.on('ready', ready);
        });
  const hold = (channel: string, subscribe: () => Promise<void>) => {
    if (held.has(channel)) return whenReady();
    held.add(channel);
    return opened.then(subscribe).catch((error: unknown) => {
      held.delete(channel);
      throw error;
    });
  };
  return {
    subscribe: (channel) => hold(channel, () => connection.subscribe(channel, listener)),
    ssubscribe: (channel) => hold(channel, () => connection.sSubscribe(channel, listener)),
    async sunsubscribe(channel) {
      if (!held.delete(channel) || closed) return;
      await connection.sUnsubscribe(channel, listener);
    },
    refreshRoutes() {},
    close() {
      closed = true;
      held.clear();
      if (typeof connection.destroy === 'function') {
        try {
          connection.destroy();
        } catch {
          // Already closed.
        }
      } else connection.disconnect?.().catch(() => {});
    },
  };
}

// A cluster subscribes on the cluster object itself (the caller's): it keeps one subscriber per
// shard and moves it after a failover. close() takes off only this store's listener.
function clusterSubscriber(
  cluster: NodeRedisCluster,
  handlers: SubscriberHandlers,
  sharded: boolean,
): SubscriberPort {
  const held = new Map<string, Promise<void>>();
  let closed = false;
  const listener: Listener = (message, channel) => {
    if (!closed && held.has(channel)) handlers.message(channel, message);
  };
  // node-redis moves a subscriber off a node only when it reads the slot map again (on MOVED,
  // and in 6 after many reconnect attempts), not when the node dies: a node's error schedules a
  // prompt refresh that reads the map again and subscribes every channel where its slot lives
  // now, retried until it succeeds. Each success ends with `reconnected`: messages published
  // while the subscriber was away are lost, and the store's resync finds what they carried.
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running = false;
  let again = false;
  const subscribeAgain = (channel: string) => {
    const made = sharded
      ? cluster.sSubscribe(channel, listener)
      : cluster.subscribe(channel, listener);
    held.set(channel, made);
    return within(made, REFRESH_BOUND_MS);
  };
  const refresh = async () => {
    const root = cluster._options?.rootNodes?.[0];
    await cluster._slots?.rediscover?.({ options: root });
    for (const channel of [...held.keys()]) if (held.has(channel)) await subscribeAgain(channel);
  };
  const schedule = (ms: number) => {
    if (closed || timer !== undefined) return;
    timer = setTimeout(run, ms);
    timer.unref();
  };
  const run = () => {
    timer = undefined;
    if (closed) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    again = false;
    refresh()
      .then(
        () => {
          if (!closed) handlers.reconnected();
        },
        () => {
          again = true;
        },
      )
      .finally(() => {
        running = false;
        if (again) schedule(REFRESH_RETRY_MS);
      });
  };
  const onNodeError = () => {
    if (running) again = true;
    else schedule(REFRESH_DEBOUNCE_MS);
  };
  cluster.on('node-error', onNodeError);
  const hold = (channel: string, subscribe: () => Promise<void>) => {
    const existing = held.get(channel);
    if (existing !== undefined) return existing;
    const made = subscribe();
    held.set(channel, made);
    made.catch(() => {
      if (held.get(channel) === made) held.delete(channel);
    });
    return made;
  };
  return {
    subscribe: (channel) => hold(channel, () => cluster.subscribe(channel, listener)),
    ssubscribe: (channel) => hold(channel, () => cluster.sSubscribe(channel, listener)),
    async sunsubscribe(channel) {
      if (!held.delete(channel)) return;
      await cluster.sUnsubscribe(channel, listener);
    },
    // Node errors drive the refresh (see above).
    refreshRoutes() {},
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      cluster.off('node-error', onNodeError);
      for (const channel of held.keys()) {
        const end = sharded
          ? cluster.sUnsubscribe(channel, listener)
          : cluster.unsubscribe(channel, listener);
        end.catch(() => {});
      }
      held.clear();
    },
  };
}
