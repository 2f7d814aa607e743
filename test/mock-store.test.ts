import type { Redis } from 'ioredis';
import RedisMock from 'ioredis-mock';
import { CircuitBreaker, CircuitBreakerError, CorruptRecordError } from 'statebreaker';
import { RedisStore } from 'statebreaker/redis';
import { createSimulatedClock } from 'statebreaker/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from './support/redis-wait.js';

// RedisStore on ioredis-mock, as a user's unit test would use it: `new RedisStore(new
// RedisMock())`. What this shows holds for the mock; it shows nothing about Redis.

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let unique = 0;
const fresh = (label: string) => `${label} #${++unique}`;

function storeOn(redis: Redis): RedisStore {
  const store = new RedisStore(redis);
  cleanups.push(
    () => redis.disconnect(),
    () => store.close(),
  );
  return store;
}

/** A breaker that records every store problem, so that a test can say there was none. */
function breakerOn(name: string, options: ConstructorParameters<typeof CircuitBreaker>[1]) {
  const breaker = new CircuitBreaker(name, options);
  const problems: string[] = [];
  breaker.on('storeError', ({ error }) => problems.push(String(error)));
  breaker.on('degraded', ({ error }) => problems.push(`degraded: ${String(error)}`));
  cleanups.push(() => breaker.dispose());
  return { breaker, problems };
}

const fail = () => Promise.reject(new Error('upstream down'));

describe('a breaker on RedisStore(new RedisMock())', () => {
  it('trips, rejects, half-opens and closes, on the store clock, and the record follows', async () => {
    const redis = new RedisMock();
    const store = storeOn(redis);
    const name = fresh('llm');
    const { breaker, problems } = breakerOn(name, {
      store,
      failMax: 2,
      resetTimeout: 300,
      successThreshold: 1,
    });
    const state = () => redis.get(store.keys(name).state);

    for (let i = 0; i < 2; i++) await expect(breaker.call(fail)).rejects.toThrow('upstream down');
    expect(breaker.state).toBe('open');
    let called = false;
    const rejected = breaker.call(async () => {
      called = true;
    });
    await expect(rejected).rejects.toBeInstanceOf(CircuitBreakerError);
    expect(called).toBe(false);
    await breaker.settled();
    expect(await state()).toBe('open');

    expect(await waitFor(() => breaker.state === 'halfOpen', 5_000)).toBe(true);
    await expect(breaker.call(async () => 'ok')).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
    await breaker.settled();
    expect(await state()).toBe('closed');
    expect(problems).toEqual([]);
  });

  it.each([
    ['a client and its duplicate', (redis: Redis) => redis.duplicate()],
    ['two clients of one mock server', () => new RedisMock()],
  ])('two stores on %s share the breaker', async (_, second) => {
    const first = new RedisMock();
    const a = storeOn(first);
    const b = storeOn(second(first));
    const name = fresh('shared');
    // One simulated clock for both breakers: the mock's TIME is right only to about a second
    // (see docs/testing.md), and this test is about sharing, not time.
    const clock = createSimulatedClock(Date.now());
    const config = { clock, failMax: 2, resetTimeout: 30_000, successThreshold: 1 };
    const one = breakerOn(name, { ...config, store: a });
    const two = breakerOn(name, { ...config, store: b });
    await Promise.all([one.breaker.settled(), two.breaker.settled()]);

    // Tripped through one store: the other breaker rejects without calling.
    for (let i = 0; i < 2; i++) await one.breaker.call(fail).catch(() => {});
    expect(one.breaker.state).toBe('open');
    await one.breaker.settled();
    expect(await waitFor(() => two.breaker.state === 'open')).toBe(true);
    let called = false;
    await expect(
      two.breaker.call(async () => {
        called = true;
      }),
    ).rejects.toBeInstanceOf(CircuitBreakerError);
    expect(called).toBe(false);

    // Half-open on both; a probe through the other store closes the circuit for both.
    clock.increment(30_000);
    expect(await waitFor(() => two.breaker.state === 'halfOpen')).toBe(true);
    await Promise.all([one.breaker.settled(), two.breaker.settled()]);
    await expect(two.breaker.call(async () => 'ok')).resolves.toBe('ok');
    await two.breaker.settled();
    expect(await waitFor(() => one.breaker.state === 'closed')).toBe(true);
    expect(two.breaker.state).toBe('closed');
    expect(one.problems).toEqual([]);
    expect(two.problems).toEqual([]);
  });

  it('pubsub: sharded falls back to classic pub/sub, which the mock has', async () => {
    const redis = new RedisMock();
    const store = new RedisStore(redis, { pubsub: 'sharded' });
    cleanups.push(
      () => redis.disconnect(),
      () => store.close(),
    );
    const other = storeOn(new RedisMock());
    const name = fresh('fallback');
    const clock = createSimulatedClock(Date.now());
    const one = breakerOn(name, { clock, store, failMax: 1 });
    const two = breakerOn(name, { clock, store: other, failMax: 1 });
    await Promise.all([one.breaker.settled(), two.breaker.settled()]);
    expect(store.publication).toBe('numbered');
    await one.breaker.call(fail).catch(() => {});
    await one.breaker.settled();
    expect(await waitFor(() => two.breaker.state === 'open')).toBe(true);
    expect(one.problems).toEqual([]);
  });

  it('a key of another type in the record is reported with its key and replaced by the next write', async () => {
    const redis = new RedisMock();
    const store = storeOn(redis);
    const name = fresh('typed');
    const keys = store.keys(name);
    // The mock raises no WRONGTYPE; the scripts read a value that is not a string as one.
    await redis.hset(keys.version, 'n', '7');
    const errors: unknown[] = [];
    const { breaker } = breakerOn(name, { store, failMax: 1 });
    breaker.on('storeError', ({ error }) => errors.push(error));
    await breaker.settled();
    expect(errors.some((e) => e instanceof CorruptRecordError && e.key === keys.version)).toBe(
      true,
    );
    await breaker.call(fail).catch(() => {});
    await breaker.settled();
    expect(await redis.type(keys.version)).toBe('string');
    expect(await redis.get(keys.state)).toBe('open');
  });
});
