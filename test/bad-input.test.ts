import { describe, expect, it } from 'vitest';
import type { BreakerOptions } from '../src/index.js';
import { simulatedBreaker, trip } from './support/fake-upstream.js';

// The breaker has three ways to run fn: the closed fast path, the path with a timeout (or a
// caller's signal), and half-open probes. Bad input must behave the same on each.
const paths: [string, BreakerOptions, boolean][] = [
  ['closed', {}, false],
  ['closed with a timeout', { timeout: 1_000 }, false],
  ['a half-open probe', { successThreshold: 1 }, true],
];

async function breakerOn(options: BreakerOptions, halfOpen: boolean) {
  const setup = simulatedBreaker(options);
  if (halfOpen) {
    await trip(setup.breaker);
    setup.clock.increment(setup.breaker.config.resetTimeout);
    expect(setup.breaker.state).toBe('halfOpen');
  }
  return setup.breaker;
}

/** The state a counted failure leads to from where `breakerOn` starts. */
const afterFailure = (halfOpen: boolean) => (halfOpen ? 'open' : 'closed');
/** The state a counted success leads to (successThreshold 1 closes a half-open circuit). */
const afterSuccess = 'closed';

describe('call() with something that is not a function', () => {
  it.each([
    ['a number', 42],
    ['null', null],
    ['undefined', undefined],
    ['a string', 'fetch'],
    ['a promise', Promise.resolve(1)],
  ])('rejects with a TypeError for %s and changes nothing', async (_label, fn) => {
    const { breaker } = simulatedBreaker();
    const before = structuredClone(breaker.context);
    await expect(breaker.call(fn as unknown as () => number)).rejects.toThrow(TypeError);
    expect(breaker.context).toEqual(before);
  });
});

describe.each(paths)('on %s', (_path, options, halfOpen) => {
  it('a synchronous throw rejects the call with that error and counts as a failure', async () => {
    const breaker = await breakerOn(options, halfOpen);
    const thrown = new Error('thrown before any await');
    await expect(
      breaker.call(() => {
        throw thrown;
      }),
    ).rejects.toBe(thrown);
    expect(breaker.state).toBe(afterFailure(halfOpen));
    if (!halfOpen) expect(breaker.context.failures).toBe(1);
    else expect(breaker.context.reason).toBe('probeFailed');
  });

  it('a plain (non-promise) return value resolves the call and counts as a success', async () => {
    const breaker = await breakerOn(options, halfOpen);
    await expect(breaker.call(() => 42)).resolves.toBe(42);
    await expect(breaker.call(() => null)).resolves.toBe(null);
    expect(breaker.state).toBe(afterSuccess);
  });

  it('a thenable that is not a Promise is awaited', async () => {
    const breaker = await breakerOn(options, halfOpen);
    const thenable: PromiseLike<string> = {
      // biome-ignore lint/suspicious/noThenProperty: the point is a hand-made thenable.
      then: (onFulfilled) => Promise.resolve(onFulfilled?.('from a thenable')),
    } as PromiseLike<string>;
    await expect(breaker.call(() => thenable)).resolves.toBe('from a thenable');
    expect(breaker.state).toBe(afterSuccess);
  });

  it.each([
    ['a string', 'rate limited'],
    ['undefined', undefined],
    ['null', null],
    ['zero', 0],
  ])(
    'a rejection with %s rejects with the same value and counts as a failure',
    async (_l, value) => {
      const breaker = await breakerOn(options, halfOpen);
      const seen: unknown[] = [];
      breaker.on('failure', ({ error }) => seen.push(error));
      await expect(breaker.call(() => Promise.reject(value))).rejects.toBe(value);
      expect(seen).toEqual([value]);
      expect(breaker.state).toBe(afterFailure(halfOpen));
    },
  );

  it('a synchronous throw of a non-Error counts as a failure too', async () => {
    const breaker = await breakerOn(options, halfOpen);
    await expect(
      breaker.call(() => {
        throw 'plain string';
      }),
    ).rejects.toBe('plain string');
    expect(breaker.state).toBe(afterFailure(halfOpen));
  });
});

describe('non-Error failures in a row', () => {
  it('trip the circuit like any other failure', async () => {
    const { breaker } = simulatedBreaker();
    for (const value of ['a', undefined, null, 0]) {
      await breaker.call(() => Promise.reject(value)).catch(() => undefined);
    }
    expect(breaker.context.failures).toBe(4);
    await breaker.call(() => Promise.reject(undefined)).catch(() => undefined);
    expect(breaker.state).toBe('open');
  });

  it('reach classify unchanged', async () => {
    const classified: unknown[] = [];
    const { breaker } = simulatedBreaker({
      classify: (error) => {
        classified.push(error);
        return 'ignored';
      },
    });
    await breaker.call(() => Promise.reject('quota')).catch(() => undefined);
    await breaker.call(() => Promise.reject(undefined)).catch(() => undefined);
    expect(classified).toEqual(['quota', undefined]);
    expect(breaker.context.failures).toBe(0);
  });
});
