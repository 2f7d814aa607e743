import type { Cluster } from 'ioredis';
import { getBreakerPaths } from 'statebreaker/testing';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { RedisCluster } from './support/redis-cluster.js';
import { runPathOnStores } from './support/store-paths.js';

// The statechart's paths of test/redis-paths.test.ts on a Redis Cluster of 3 masters and 3
// replicas: one breaker, then a fleet of three, each on its own Cluster client and store.

const paths = getBreakerPaths();
// Generous for a loaded machine: the paths check states, not how fast Redis answers (a store
// whose Redis answers later than its timeout rightly degrades, which is not checked here).
const STORE_TIMEOUT_MS = 5_000;
const START_BOUND_MS = 60_000;
let cluster: RedisCluster;

beforeAll(async () => {
  cluster = await RedisCluster.start({ boundMs: START_BOUND_MS });
}, START_BOUND_MS);

afterAll(async () => {
  for (const client of clients) client.disconnect();
  clients = [];
  await cluster?.stop();
});

// Three clients serve every path (each store still opens its own subscribers).
let clients: Cluster[] = [];
let next = 0;
const connect = () => {
  if (clients.length < 3) clients.push(cluster.client());
  return clients[next++ % clients.length] as Cluster;
};
const keep = { release: () => {}, store: { timeout: STORE_TIMEOUT_MS } };
const cases = paths.paths.map((path) => [path.description, path] as const);

describe(`model-based on Redis Cluster (${paths.paths.length} paths, ${paths.edges} edges)`, () => {
  describe('one breaker on a RedisStore', () => {
    it.each(cases)('%s', (_, path) => runPathOnStores(path, paths, 1, connect, keep));
  });
  describe('a fleet of three breakers, each on its own Cluster client (steps round-robin)', () => {
    it.each(cases)('%s', (_, path) => runPathOnStores(path, paths, 3, connect, keep));
  });
});
