import RedisMock from 'ioredis-mock';
import { getBreakerPaths } from 'statebreaker/testing';
import { describe, it } from 'vitest';
import { policyPaths } from './support/policy-paths.js';
import { runPathOnStores } from './support/store-paths.js';

// The statechart's paths of test/redis-paths.test.ts, on ioredis-mock instead of a
// redis-server: what a user's unit tests get from `new RedisStore(new RedisMock())`. Every
// mock client of this file shares one in-memory data set and pub/sub (the mock keys them by
// host, port and db), so the fleet's three stores share the breaker as they would on Redis.
// This shows the store works on the mock; it shows nothing about Redis.

const paths = getBreakerPaths();
const mock = () => new RedisMock();
// In memory nothing times out: any storeError or degraded event is a difference of the mock.
const strict = { noStoreErrors: true };
const cases = paths.paths.map((path) => [path.description, path] as const);

describe(`model-based on ioredis-mock (${paths.paths.length} paths, ${paths.edges} edges)`, () => {
  describe('one breaker on a RedisStore', () => {
    it.each(cases)('%s', (_, path) => runPathOnStores(path, paths, 1, mock, strict));
  });
  describe('a fleet of three breakers, each on its own client and store (steps round-robin)', () => {
    it.each(cases)('%s', (_, path) => runPathOnStores(path, paths, 3, mock, strict));
  });
});

// The policies' window script on the mock's Lua: the failure-rate paths, on a fleet of three.
const rate = policyPaths()['failure rate'];
describe(`model-based on ioredis-mock, failure rate (${rate?.paths.length} paths)`, () => {
  it.each(rate?.paths.map((path) => [path.description, path] as const) ?? [])('%s', (_, path) =>
    runPathOnStores(path, rate as NonNullable<typeof rate>, 3, mock, strict),
  );
});
