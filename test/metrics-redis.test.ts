import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { CircuitBreaker } from 'statebreaker';
import { prometheusMetrics } from 'statebreaker/metrics';
import { RedisStore } from 'statebreaker/redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from './support/fault-proxy.js';
import { parseScrape, series } from './support/prometheus-text.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';

// The metrics of breakers on a real redis-server: a store outage shows as store errors and a
// degraded gauge, and a transition another instance made counts where it is adopted.

let server: RedisServer;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  server = await RedisServer.start();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await server?.stop();
});

function instance(name: string) {
  const redis = new Redis({ path: server.path });
  // Connection errors while the server is down reach the breaker as store errors.
  redis.on('error', () => undefined);
  const store = new RedisStore(redis, { timeout: 100 });
  const breaker = new CircuitBreaker(name, { store, failMax: 2, resetTimeout: 60_000 });
  // A listener, so that the outage is not also reported as a process warning.
  breaker.on('degraded', () => undefined);
  cleanups.push(async () => {
    breaker.dispose();
    await store.close();
    redis.disconnect();
  });
  return breaker;
}

function metrics() {
  const registry = new Registry();
  const exporter = prometheusMetrics({ registry });
  cleanups.push(() => exporter.stop());
  return async () => parseScrape(await registry.metrics());
}

const fail = (breaker: CircuitBreaker) =>
  breaker.call(() => Promise.reject(new Error('upstream down'))).catch(() => undefined);

describe('metrics of breakers on Redis', () => {
  it('show a store outage as store errors by class and a degraded gauge, back to 0 after', async () => {
    const scrape = metrics();
    const breaker = instance('outage');
    await breaker.settled();
    expect(series(await scrape(), 'statebreaker_degraded', { name: 'outage' })).toEqual({ '': 0 });

    await server.kill();
    // Whatever this test meets, the next one gets a server.
    cleanups.push(async () => {
      if (server.pid === undefined) await server.restart();
    });
    await fail(breaker);
    await fail(breaker);
    expect(breaker.state).toBe('open');
    expect(await waitFor(() => breaker.degraded)).toBe(true);
    const during = await scrape();
    expect(series(during, 'statebreaker_degraded', { name: 'outage' })).toEqual({ '': 1 });
    const errors = series(during, 'statebreaker_store_errors_total', { name: 'outage' });
    // ioredis queues commands while it reconnects, so the store's own timeout answers.
    expect(errors['error=RedisStoreTimeoutError']).toBeGreaterThan(0);
    for (const [label, count] of Object.entries(errors)) {
      // The class, never the message: the label's values stay few.
      expect(label).toMatch(/^error=[A-Z][A-Za-z]*Error$/);
      expect(count).toBeGreaterThan(0);
    }
    // The local trip is counted, marked nowhere as speculative: metrics count what they see.
    expect(series(during, 'statebreaker_transitions_total', { name: 'outage' })).toEqual({
      'from=closed,to=open,reason=failMaxReached': 1,
    });

    await server.restart();
    expect(await waitFor(() => !breaker.degraded, 15_000)).toBe(true);
    const after = await scrape();
    expect(series(after, 'statebreaker_degraded', { name: 'outage' })).toEqual({ '': 0 });
    const errorsAfter = series(after, 'statebreaker_store_errors_total', { name: 'outage' });
    for (const [label, count] of Object.entries(errors)) {
      expect(errorsAfter[label]).toBeGreaterThanOrEqual(count);
    }
  });

  it('count a transition adopted from another instance on the instance that adopts it', async () => {
    const scrape = metrics();
    const tripper = instance('shared');
    const follower = instance('shared');
    await tripper.settled();
    await follower.settled();
    await fail(tripper);
    await fail(tripper);
    expect(tripper.state).toBe('open');
    const transitions = async () =>
      series(await scrape(), 'statebreaker_transitions_total', { name: 'shared' });
    expect(await waitFor(() => follower.state === 'open')).toBe(true);
    // The tripper hears its trip once its write is confirmed, which may come after the change
    // message reached the follower.
    await tripper.settled();
    // Each instance counts the change it saw: the tripper's own and the follower's adoption.
    expect(await transitions()).toEqual({ 'from=closed,to=open,reason=failMaxReached': 2 });
    expect(series(await scrape(), 'statebreaker_state', { name: 'shared', state: 'open' })).toEqual(
      { '': 2 },
    );
    // The follower made no call: its count of calls stays the tripper's two failures.
    expect(series(await scrape(), 'statebreaker_calls_total', { name: 'shared' })).toMatchObject({
      'kind=failed': 2,
    });
  });

  it('report a state once the record holding it is written: the gauge and the transitions agree', async () => {
    const scrape = metrics();
    const proxy = await FaultProxy.start(server.path);
    cleanups.push(() => proxy.close());
    const redis = new Redis({ path: proxy.path });
    const store = new RedisStore(redis);
    const breaker = new CircuitBreaker('heard', { store, failMax: 2 });
    cleanups.push(async () => {
      breaker.dispose();
      await store.close();
      redis.disconnect();
    });
    await breaker.settled();
    // The trip's write waits behind replies held by the proxy: in force, not yet the record's.
    proxy.commands.hold();
    await fail(breaker);
    await fail(breaker);
    expect(breaker.state).toBe('open');
    const before = await scrape();
    expect(series(before, 'statebreaker_state', { name: 'heard', state: 'open' })).toEqual({
      '': 0,
    });
    expect(series(before, 'statebreaker_transitions_total', { name: 'heard' })).toEqual({});
    proxy.commands.release();
    await breaker.settled();
    const after = await scrape();
    expect(series(after, 'statebreaker_state', { name: 'heard', state: 'open' })).toEqual({
      '': 1,
    });
    expect(
      Object.values(series(after, 'statebreaker_transitions_total', { name: 'heard' })),
    ).toEqual([1]);
  });
});
