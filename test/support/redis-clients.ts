import {
  Redis as IORedis5,
  Cluster as IORedis5Cluster,
  type ClusterOptions as IORedis5ClusterOptions,
} from 'ioredis';
import { Redis as IORedis6, Cluster as IORedis6Cluster } from 'ioredis6';
import { Redis as IOValkey, Cluster as IOValkeyCluster } from 'iovalkey';
import { createClient as createClient6, createCluster as createCluster6 } from 'redis';
import { createClient as createClient5, createCluster as createCluster5 } from 'redis5';

// Connected clients of every family the store supports, made the way a user of that client
// makes them, for tests that run the same scenario on each. Each client gets an `error`
// listener (as the docs tell users to attach) so that a killed server does not print
// "Unhandled error event" or crash the test process; the errors are kept for assertions.

/** The client families the store supports. */
export const CLIENT_FAMILIES = [
  'ioredis5',
  'ioredis6',
  'iovalkey',
  'node-redis5',
  'node-redis6',
] as const;

/** One client family: the package and its major. */
export type ClientFamily = (typeof CLIENT_FAMILIES)[number];

/** The families whose clients speak RESP3 as well as RESP2. */
export const RESP3_FAMILIES: readonly ClientFamily[] = ['ioredis6', 'node-redis5', 'node-redis6'];

/** Where a standalone server listens: a unix socket or a TCP address. */
export type ServerAddress =
  | { readonly path: string }
  | { readonly host: string; readonly port: number };

/** A cluster node's TCP address. */
export interface NodeAddress {
  readonly host: string;
  readonly port: number;
}

/** How to configure the client beyond its address. */
export interface ClientSetup {
  /** RESP version, on families that speak both (ignored by ioredis 5 and iovalkey: RESP2). */
  readonly resp?: 2 | 3;
  /** ioredis 6 `replyMapping` under RESP3. */
  readonly replyMapping?: 'legacy' | 'resp3';
  /** Extra options merged into the client's own (e.g. ioredis `keyPrefix`). */
  readonly extra?: object;
}

type NodeRedis5Client = ReturnType<typeof createClient5>;
type NodeRedis6Client = ReturnType<typeof createClient6>;
type NodeRedis5Cluster = ReturnType<typeof createCluster5>;
type NodeRedis6Cluster = ReturnType<typeof createCluster6>;

/** A connected standalone client of any family. */
export type TestClient = IORedis5 | IORedis6 | IOValkey | NodeRedis5Client | NodeRedis6Client;
/** A connected cluster client of any family. */
export type TestClusterClient =
  | IORedis5Cluster
  | IORedis6Cluster
  | IOValkeyCluster
  | NodeRedis5Cluster
  | NodeRedis6Cluster;

const errorsOf = new WeakMap<object, Error[]>();

/** The errors a client made by this module has emitted so far. */
export function clientErrors(client: object): readonly Error[] {
  return errorsOf.get(client) ?? [];
}

function listen<T extends { on(event: 'error', listener: (error: Error) => void): unknown }>(
  client: T,
): T {
  const errors: Error[] = [];
  errorsOf.set(client, errors);
  client.on('error', (error: Error) => {
    if (errors.length < 100) errors.push(error);
  });
  return client;
}

/** Whether a family is node-redis (connect with `connect()`, close with `close()`). */
export function isNodeRedisFamily(family: ClientFamily): boolean {
  return family === 'node-redis5' || family === 'node-redis6';
}

function ioOptions(family: ClientFamily, setup: ClientSetup): Record<string, unknown> {
  const options: Record<string, unknown> = { ...setup.extra };
  if (family === 'ioredis6') {
    options.protocol = setup.resp ?? 3;
    if (setup.replyMapping !== undefined) options.replyMapping = setup.replyMapping;
  }
  return options;
}

/**
 * A connected client of `family` on a standalone server, ready for commands, with an `error`
 * listener attached. Close it with `closeClient`.
 */
export async function connectClient(
  family: ClientFamily,
  address: ServerAddress,
  setup: ClientSetup = {},
): Promise<TestClient> {
  const socket =
    'path' in address ? { path: address.path } : { host: address.host, port: address.port };
  switch (family) {
    case 'ioredis5':
    case 'ioredis6':
    case 'iovalkey': {
      const options = { ...socket, lazyConnect: true, ...ioOptions(family, setup) };
      const client =
        family === 'ioredis5'
          ? new IORedis5(options)
          : family === 'ioredis6'
            ? new IORedis6(options)
            : new IOValkey(options);
      listen(client);
      await client.connect();
      return client;
    }
    case 'node-redis5':
    case 'node-redis6': {
      const options = {
        socket: { ...socket, reconnectStrategy: (retries: number) => Math.min(50 * retries, 500) },
        RESP: setup.resp ?? (family === 'node-redis6' ? 3 : 2),
        ...setup.extra,
      } as const;
      const client = family === 'node-redis5' ? createClient5(options) : createClient6(options);
      listen(client);
      await client.connect();
      return client as TestClient;
    }
  }
}

/**
 * A connected cluster client of `family` seeded with `nodes`, with an `error` listener
 * attached. Close it with `closeClient`.
 */
export async function connectClusterClient(
  family: ClientFamily,
  nodes: readonly NodeAddress[],
  setup: ClientSetup = {},
): Promise<TestClusterClient> {
  const seeds = nodes.map((node) => ({ host: node.host, port: node.port }));
  switch (family) {
    case 'ioredis5':
    case 'ioredis6':
    case 'iovalkey': {
      const options = {
        lazyConnect: true,
        ...ioOptions(family, setup),
        redisOptions: ioOptions(family, setup),
      } as IORedis5ClusterOptions;
      const client =
        family === 'ioredis5'
          ? new IORedis5Cluster(seeds, options)
          : family === 'ioredis6'
            ? new IORedis6Cluster(seeds, options as never)
            : new IOValkeyCluster(seeds, options as never);
      listen(client);
      await client.connect();
      return client;
    }
    case 'node-redis5':
    case 'node-redis6': {
      const options = {
        rootNodes: seeds.map((seed) => ({
          socket: { ...seed, reconnectStrategy: (retries: number) => Math.min(50 * retries, 500) },
        })),
        RESP: setup.resp ?? (family === 'node-redis6' ? 3 : 2),
        ...setup.extra,
      } as const;
      const client = family === 'node-redis5' ? createCluster5(options) : createCluster6(options);
      listen(client);
      await client.connect();
      return client as TestClusterClient;
    }
  }
}

/**
 * Ends a client made by `connectClient` / `connectClusterClient` without waiting on a server
 * that may be dead or frozen (ioredis `disconnect()`, node-redis `destroy()`).
 */
export async function closeClient(client: TestClient | TestClusterClient): Promise<void> {
  if ('destroy' in client && typeof client.destroy === 'function') {
    // node-redis: destroy() closes at once, even when the server is down.
    if ((client as { isOpen?: boolean }).isOpen !== false) client.destroy();
    return;
  }
  (client as IORedis5).disconnect();
}
