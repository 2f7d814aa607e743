import { Redis } from 'ioredis';
import { getBreakerPaths } from 'statebreaker/testing';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { policyPaths } from './support/policy-paths.js';
import { RedisServer } from './support/redis-server.js';
import { runPathOnStores } from './support/store-paths.js';

// The statechart's paths (edge coverage), run against breakers whose record lives in a real
// redis-server: one breaker, then a fleet of three, each on its own connection and store,
// with the path's steps dealt round-robin, on classic pub/sub (numbered messages, the
// standalone default) and on sharded pub/sub (SPUBLISH, Redis 7). The fleet must behave as one
// statechart. test/mock-paths.test.ts runs the same paths on ioredis-mock,
// test/cluster-paths.test.ts on a Redis Cluster.

const paths = getBreakerPaths();
let server: RedisServer;

beforeAll(async () => {
  server = await RedisServer.start();
});

afterAll(async () => {
  await server?.stop();
});

const connect = () => new Redis({ path: server.path });
const cases = paths.paths.map((path) => [path.description, path] as const);

describe(`model-based on Redis (${paths.paths.length} paths, ${paths.edges} edges)`, () => {
  describe('one breaker on a RedisStore', () => {
    it.each(cases)('%s', (_, path) => runPathOnStores(path, paths, 1, connect));
  });
  describe('a fleet of three breakers, each on its own connection (steps round-robin)', () => {
    it.each(cases)('%s', (_, path) => runPathOnStores(path, paths, 3, connect));
  });
  describe('a fleet of three on sharded pub/sub (pubsub: sharded)', () => {
    const sharded = { store: { pubsub: 'sharded' as const } };
    it.each(cases)('%s', (_, path) => runPathOnStores(path, paths, 3, connect, sharded));
  });
});

// With each policy on: the window's counts flushed to Redis by every member and totalled there;
// a quorum's steps go to the instance they name, so its "one breaker" is as many as the quorum.
for (const [name, policy] of Object.entries(policyPaths())) {
  const policyCases = policy.paths.map((path) => [path.description, path] as const);
  const alone = policy.instances === 1 ? 'one breaker' : `${policy.instances} breakers`;
  describe(`model-based on Redis, ${name} (${policy.paths.length} paths, ${policy.edges} edges)`, () => {
    describe(`${alone} on RedisStores`, () => {
      it.each(policyCases)('%s', (_, path) =>
        runPathOnStores(path, policy, policy.instances, connect),
      );
    });
    describe('a fleet of three (steps round-robin)', () => {
      it.each(policyCases)('%s', (_, path) => runPathOnStores(path, policy, 3, connect));
    });
  });
}
