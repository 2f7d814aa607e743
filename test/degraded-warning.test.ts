import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RedisStore } from 'statebreaker/redis';
import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { CircuitBreaker } from '../src/index.js';
import type { BreakerStore } from '../src/stores/index.js';

// A breaker that loses its store decides alone; nobody would know if nobody listened. The
// warning is given once per process (this file's module instance), so the order of the tests
// below matters: the silent cases first, then the one that warns, then one that must not warn
// again.

const CODE = 'STATEBREAKER_DEGRADED';

/** A store whose every call rejects; its clock never moves, so no retry timer fires. */
function unreachableStore(): BreakerStore {
  const refuse = () => Promise.reject(new Error('store unreachable'));
  return {
    clock: new SimulatedClock(),
    load: refuse,
    compareAndSet: refuse,
    subscribe: () => () => undefined,
  };
}

/** Collects the warnings of this process with the degraded code until `stop()`. */
function collectWarnings() {
  const warnings: (Error & { code?: string })[] = [];
  const listener = (warning: Error & { code?: string }) => {
    if (warning.code === CODE) warnings.push(warning);
  };
  process.on('warning', listener);
  return { warnings, stop: () => process.off('warning', listener) };
}

// process.emitWarning delivers on the next tick: a macrotask later every warning has arrived.
const afterWarnings = () => new Promise<void>((resolve) => setImmediate(resolve));

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('a breaker degraded with nobody listening', () => {
  it('says nothing when a degraded listener hears it', async () => {
    const { warnings, stop } = collectWarnings();
    cleanups.push(stop);
    const breaker = new CircuitBreaker('heard', { store: unreachableStore() });
    cleanups.push(() => breaker.dispose());
    const degraded: unknown[] = [];
    breaker.on('degraded', (event) => degraded.push(event.error));
    await breaker.settled();
    await afterWarnings();
    expect(degraded).toHaveLength(1);
    expect(warnings).toEqual([]);
  });

  it('says nothing when a storeError listener hears it', async () => {
    const { warnings, stop } = collectWarnings();
    cleanups.push(stop);
    const store = unreachableStore();
    const breaker = new CircuitBreaker('heard as a store error', { store });
    cleanups.push(() => breaker.dispose());
    const errors: unknown[] = [];
    breaker.on('storeError', (event) => errors.push(event.error));
    await breaker.settled();
    await afterWarnings();
    expect(errors).toHaveLength(1);
    expect(warnings).toEqual([]);
  });

  it('warns, naming the breaker and the error, on a RedisStore with no server', async () => {
    const { warnings, stop } = collectWarnings();
    cleanups.push(stop);
    const dir = mkdtempSync(join(tmpdir(), 'statebreaker-nowhere-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    // Nothing listens on this socket: every connection attempt fails at once.
    const redis = new Redis({
      path: join(dir, 'nobody.sock'),
      lazyConnect: false,
      retryStrategy: () => 10,
    });
    redis.on('error', () => undefined);
    cleanups.push(() => redis.disconnect());
    const store = new RedisStore(redis, { timeout: 100 });
    cleanups.push(() => store.close());
    // A name from a tenant, with characters a terminal or a log viewer would act on.
    const breaker = new CircuitBreaker('openai-\u202eevil-\u009b31m', { store });
    cleanups.push(() => breaker.dispose());

    const warning = await new Promise<Error & { code?: string }>((resolve) => {
      const listener = (warning: Error & { code?: string }) => {
        if (warning.code !== CODE) return;
        process.off('warning', listener);
        resolve(warning);
      };
      process.on('warning', listener);
    });
    expect(warning.message).toContain('"openai-\\u202eevil-\\u009b31m"');
    expect(warning.message).not.toMatch(/[\u009b\u202e]/);
    expect(warning.message).toMatch(/RedisStoreTimeoutError|MaxRetriesPerRequestError|ENOENT/);
    expect(warning.message).toMatch(/"degraded"/);
    expect(breaker.state).toBe('closed');
    await afterWarnings();
    expect(warnings).toHaveLength(1);
  });

  it('warns only once per process', async () => {
    const { warnings, stop } = collectWarnings();
    cleanups.push(stop);
    const breaker = new CircuitBreaker('unheard too', { store: unreachableStore() });
    cleanups.push(() => breaker.dispose());
    await breaker.settled();
    await afterWarnings();
    expect(warnings).toEqual([]);
  });
});
