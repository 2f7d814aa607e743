import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import {
  type BreakerEventMap,
  CircuitBreaker,
  ConfigMismatchError,
  MemoryStore,
} from '../src/index.js';
import type { BreakerStore } from '../src/stores/index.js';
import { SimulatedClock } from '../src/testing/index.js';

// A rolling deploy that changes failMax leaves two configurations in one fleet: each instance
// decides with its own, and nobody would know unless a storeError listener exists. The warning
// is given once per process (this file's module instance), so the order of the tests matters.

const CODE = 'STATEBREAKER_CONFIG_MISMATCH';

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

/** A new instance starts with `failMax`; an old one, with failMax 5, then writes the record. */
async function rollingDeploy(name: string, failMax: number, listen = false) {
  const store = new MemoryStore({ clock: new SimulatedClock() });
  const errors: Error[] = [];
  const next = new CircuitBreaker(name, { store, failMax });
  cleanups.push(() => next.dispose());
  if (listen) next.on('storeError', ({ error }) => errors.push(error));
  const old = new CircuitBreaker(name, { store, failMax: 5 });
  cleanups.push(() => old.dispose());
  await old.call(() => Promise.reject(new Error('upstream failed'))).catch(() => undefined);
  await old.settled();
  await next.settled();
  await afterWarnings();
  return errors;
}

describe('a configuration mismatch with nobody listening', () => {
  it('says nothing when a storeError listener hears it', async () => {
    const { warnings, stop } = collectWarnings();
    cleanups.push(stop);
    const errors = await rollingDeploy('heard', 10, true);
    expect(errors.map((e) => e.constructor)).toEqual([ConfigMismatchError]);
    expect(warnings).toEqual([]);
  });

  it('warns, naming the breaker and the options that differ', async () => {
    const { warnings, stop } = collectWarnings();
    cleanups.push(stop);
    // A name from a tenant, with characters a terminal or a log viewer would act on.
    await rollingDeploy('openai-\u202eevil-\u001b[31m', 10);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.message).toContain('"openai-\\u202eevil-\\u001b[31m"');
    expect(warnings[0]?.message).not.toContain('\u001b');
    expect(warnings[0]?.message).not.toContain('\u202e');
    expect(warnings[0]?.message).toContain('failMax (10 vs 5)');
    expect(warnings[0]?.message).toContain('"storeError"');
  });

  it('warns only once per process', async () => {
    const { warnings, stop } = collectWarnings();
    cleanups.push(stop);
    await rollingDeploy('unheard too', 7);
    expect(warnings).toEqual([]);
  });
});

describe('the storeError and degraded payloads', () => {
  it('type error as an Error, so that error.message compiles under strict TypeScript', () => {
    expectTypeOf<BreakerEventMap['storeError']['error']>().toEqualTypeOf<Error>();
    expectTypeOf<BreakerEventMap['degraded']['error']>().toEqualTypeOf<Error>();
  });

  it('hand an Error even when a store rejects with something else, keeping it as the cause', async () => {
    const refuse = () => Promise.reject('connection refused');
    const store: BreakerStore = {
      clock: new SimulatedClock(),
      load: refuse,
      compareAndSet: refuse,
      subscribe: () => () => undefined,
    };
    const breaker = new CircuitBreaker('odd store', { store });
    cleanups.push(() => breaker.dispose());
    const messages: string[] = [];
    const causes: unknown[] = [];
    breaker.on('degraded', ({ error }) => messages.push(error.message));
    breaker.on('storeError', ({ error }) => causes.push(error.cause));
    await breaker.settled();
    expect(messages).toEqual(['connection refused']);
    expect(causes).toEqual(['connection refused']);
  });
});
