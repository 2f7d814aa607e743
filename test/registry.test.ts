import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { getCircuitBreaker, MemoryStore, resetAllBreakers } from '../src/index.js';
import { failTimes, T0 } from './support/fake-upstream.js';

function simulatedStore() {
  const clock = new SimulatedClock();
  clock.set(T0);
  return new MemoryStore({ clock });
}

afterEach(() => resetAllBreakers());

describe('getCircuitBreaker', () => {
  it('returns one breaker per name', () => {
    const store = simulatedStore();
    const first = getCircuitBreaker('openai', { store, failMax: 3 });
    expect(getCircuitBreaker('openai')).toBe(first);
    expect(getCircuitBreaker('openai', { store, failMax: 3 })).toBe(first);
    expect(getCircuitBreaker('anthropic', { store })).not.toBe(first);
  });

  it('treats defaults given explicitly as the same options', () => {
    const store = simulatedStore();
    const first = getCircuitBreaker('openai', { store });
    expect(getCircuitBreaker('openai', { store, failMax: 5, resetTimeout: 30_000 })).toBe(first);
  });

  it('refuses different options, naming each difference and only those', () => {
    const store = simulatedStore();
    const classify = () => 'failure' as const;
    getCircuitBreaker('openai', { store, failMax: 3, timeout: 1_000, classify });
    let message = '';
    try {
      getCircuitBreaker('openai', { store, failMax: 4, resetTimeout: 10_000, classify });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('"openai"');
    expect(message).toMatch(/failMax \(3 vs 4\)/);
    expect(message).toMatch(/resetTimeout \(30000 vs 10000\)/);
    expect(message).toMatch(/timeout \(1000 vs undefined\)/);
    expect(message).not.toContain('successThreshold');
    expect(message).not.toContain('classify');
    expect(message).not.toMatch(/store/);
  });

  it('hands out the same breaker to a handler that writes classify inline on each request', () => {
    const store = simulatedStore();
    // The pattern docs/api.md allows: every request builds new functions with the same code.
    const handle = () =>
      getCircuitBreaker('openai', {
        store,
        timeout: 20_000,
        classify: (error) =>
          (error as { status?: number }).status === 400 ? 'ignored' : 'failure',
        inspect: () => undefined,
      });
    const first = handle();
    expect(handle()).toBe(first);
    expect(handle()).toBe(first);
  });

  it("keeps the first breaker's classify when asked again with another one", async () => {
    const store = simulatedStore();
    const first = getCircuitBreaker('openai', { store, classify: () => 'ignored' });
    expect(getCircuitBreaker('openai', { store, classify: () => 'failure' })).toBe(first);
    await failTimes(first, 5);
    expect(first.state).toBe('closed');
  });

  it('still refuses different data options next to a new inline classify, naming them', () => {
    const store = simulatedStore();
    getCircuitBreaker('openai', { store, failMax: 3, classify: () => 'failure' });
    let message = '';
    try {
      getCircuitBreaker('openai', { store, failMax: 4, classify: () => 'failure' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/failMax \(3 vs 4\)/);
    expect(message).not.toContain('classify (');
    // It says how to get the breaker without a conflict.
    expect(message).toMatch(/same options/);
  });

  it('refuses classify or inspect given to a breaker created without one', () => {
    const store = simulatedStore();
    getCircuitBreaker('openai', { store });
    // The breaker would go on counting every error as a failure: say so, not ignore it.
    expect(() => getCircuitBreaker('openai', { store, classify: () => 'ignored' })).toThrow(
      /classify \(undefined vs a function\)/,
    );
    expect(() => getCircuitBreaker('openai', { store, inspect: () => undefined })).toThrow(
      /inspect \(undefined vs a function\)/,
    );
  });

  it('refuses another store or clock', () => {
    const store = simulatedStore();
    getCircuitBreaker('openai', { store });
    expect(() => getCircuitBreaker('openai', { store: simulatedStore() })).toThrow(/store/);
    expect(() => getCircuitBreaker('openai', { store, clock: new SimulatedClock() })).toThrow(
      /clock/,
    );
  });

  it('validates the name and options of a new breaker', () => {
    expect(() => getCircuitBreaker('')).toThrow(RangeError);
    expect(() => getCircuitBreaker('x', { failMax: 0 })).toThrow(/failMax/);
  });
});

describe('resetAllBreakers', () => {
  it('returns every registered breaker to closed and empties the registry', async () => {
    const store = simulatedStore();
    const tripped = getCircuitBreaker('tripped', { store });
    const forced = getCircuitBreaker('forced', { store });
    const disabled = getCircuitBreaker('disabled', { store });
    await failTimes(tripped, 5);
    forced.forceOpen();
    disabled.disable();
    expect([tripped.state, forced.state, disabled.state]).toEqual([
      'open',
      'forcedOpen',
      'disabled',
    ]);

    const done = resetAllBreakers();
    expect([tripped.state, forced.state, disabled.state]).toEqual(['closed', 'closed', 'closed']);
    const fresh = getCircuitBreaker('tripped', { store });
    expect(fresh).not.toBe(tripped);
    await done;
  });

  it('leaves the shared record closed, so the next breaker of the name starts closed', async () => {
    const store = simulatedStore();
    const tripped = getCircuitBreaker('tripped', { store });
    const forced = getCircuitBreaker('forced', { store });
    await failTimes(tripped, 5);
    forced.forceOpen();
    await tripped.settled();
    await forced.settled();

    await resetAllBreakers();
    expect(getCircuitBreaker('tripped', { store }).state).toBe('closed');
    expect(getCircuitBreaker('forced', { store }).state).toBe('closed');
    expect(store.peek('tripped')?.snapshot.value).toBe('closed');
  });

  it('accepts new options for a name after the reset', async () => {
    const store = simulatedStore();
    getCircuitBreaker('openai', { store, failMax: 3 });
    await resetAllBreakers();
    expect(getCircuitBreaker('openai', { store, failMax: 7 }).config.failMax).toBe(7);
  });
});
