import type { Cluster, Redis } from 'ioredis';
import { describeValue } from '../../validate.js';
import { ioredisPort, isIORedis, keyPrefixOf } from './ioredis-port.js';
import { isNodeRedis, nodeRedisPort } from './node-redis-port.js';
import { type RedisPort, unsupportedClient } from './port.js';

/**
 * An ioredis 5/6 or iovalkey `Redis` or `Cluster` (or ioredis-mock), as the store takes it:
 * described by what the store calls, so that each of these packages' own types fit.
 */
export interface IORedisLikeClient {
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): unknown;
  duplicate(...args: never[]): unknown;
}

/** A node-redis 5/6 client (`createClient`) or cluster (`createCluster`), connected. */
export interface NodeRedisLikeClient {
  sendCommand(...args: never[]): Promise<unknown>;
  sSubscribe(...args: never[]): Promise<unknown>;
}

/** A Redis client the store can use (see docs/redis-clients.md). */
export type RedisClient = IORedisLikeClient | NodeRedisLikeClient;

/**
 * The client port for `client`, by its family.
 * @throws TypeError naming what was given when it is no supported client, or when it is an
 * ioredis client with a `keyPrefix`
 */
export function portOf(client: unknown): RedisPort {
  if (client === null || typeof client !== 'object') throw unsupportedClient(describeValue(client));
  if (isIORedis(client)) {
    const redis = client as Redis | Cluster;
    const keyPrefix = keyPrefixOf(redis);
    if (keyPrefix !== '') {
      // A Cluster's duplicate takes its seeds first, and its nodes' options from redisOptions.
      const duplicate =
        (redis as { isCluster?: boolean }).isCluster === true
          ? "cluster.duplicate([], { keyPrefix: '', redisOptions: { ...cluster.options.redisOptions, keyPrefix: '' } })"
          : "redis.duplicate({ keyPrefix: '' })";
      throw new TypeError(
        `RedisStore cannot use an ioredis client with keyPrefix ${JSON.stringify(keyPrefix)}: ioredis applies it to keys but not to SCAN patterns or pub/sub channels. Give the store a client without keyPrefix and the option prefix instead, e.g. new RedisStore(${duplicate}, { prefix: ${JSON.stringify(`${keyPrefix}circuit_breaker:`)} })`,
      );
    }
    return ioredisPort(redis);
  }
  if (isNodeRedis(client)) return nodeRedisPort(client);
  throw unsupportedClient('an object that is neither');
}
