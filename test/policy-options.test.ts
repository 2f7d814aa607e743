import { describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import {
  type BreakerOptions,
  CircuitBreaker,
  ConfigMismatchError,
  getCircuitBreaker,
  MemoryStore,
  resetAllBreakers,
} from '../src/index.js';
import { resolveOptions } from '../src/options.js';

// The policy options: validated like the others (a TypeError or RangeError naming the option
// and the value), kept in the shared configuration, compared by the registry.

const store = () => new MemoryStore({ clock: new SimulatedClock() });
const build = (options: BreakerOptions) => () =>
  new CircuitBreaker('policy', { store: store(), ...options });
const rate = { failureRateThreshold: 50 };

type Bad = [options: Record<string, unknown>, error: typeof TypeError, message: string];

const bad: Bad[] = [
  [{ failureRateThreshold: '50' }, TypeError, 'option failureRateThreshold must be a number'],
  [{ failureRateThreshold: 0 }, RangeError, 'failureRateThreshold must be a percent above 0'],
  [{ failureRateThreshold: 100.5 }, RangeError, 'got 100.5'],
  [{ failureRateThreshold: Number.NaN }, RangeError, 'got NaN'],
  [{ ...rate, minimumCalls: 0 }, RangeError, 'option minimumCalls must be a whole number'],
  [{ ...rate, minimumCalls: 2.5 }, RangeError, 'got 2.5'],
  [{ ...rate, window: -1 }, RangeError, 'option window must be more than 0'],
  [{ ...rate, window: '10s' }, TypeError, 'option window must be a number of milliseconds'],
  [{ ...rate, windowFlush: 0 }, RangeError, 'option windowFlush must be more than 0'],
  [
    { ...rate, window: 1_000, windowFlush: 2_000 },
    RangeError,
    'windowFlush must be at most window (1000 ms), got 2000',
  ],
  [{ slowCallRateThreshold: 50 }, TypeError, 'option slowCallRateThreshold needs slowCallDuration'],
  [{ slowCallDuration: 1_000 }, TypeError, 'option slowCallDuration needs slowCallRateThreshold'],
  [
    { slowCallDuration: 0, slowCallRateThreshold: 50 },
    RangeError,
    'option slowCallDuration must be more than 0',
  ],
  [
    { slowCallDuration: 10, slowCallRateThreshold: 0 },
    RangeError,
    'slowCallRateThreshold must be a percent',
  ],
  [{ minimumCalls: 5 }, TypeError, 'option minimumCalls needs a rate rule'],
  [{ window: 5_000 }, TypeError, 'option window needs a rate rule'],
  [{ windowFlush: 100 }, TypeError, 'option windowFlush needs a rate rule'],
  [{ backoff: 2 }, TypeError, 'option backoff must be an object { multiplier, max }, got 2'],
  [{ backoff: { multiplier: 2 } }, TypeError, 'option backoff.max must be a number'],
  [
    { backoff: { multiplier: 0.5, max: 60_000 } },
    RangeError,
    'backoff.multiplier must be a finite number of at least 1, got 0.5',
  ],
  [
    { backoff: { multiplier: '2', max: 60_000 } },
    TypeError,
    'option backoff.multiplier must be a number, got "2"',
  ],
  [
    { backoff: { multiplier: 2, max: 1_000 } },
    RangeError,
    'backoff.max must be at least resetTimeout (30000 ms), got 1000',
  ],
  [
    { backoff: { multiplier: 2, max: 60_000, jitter: 1 } },
    TypeError,
    'unknown backoff option "jitter"',
  ],
  [{ retryAfter: 1_000 }, TypeError, 'option retryAfter must be a function, got 1000'],
  [{ retryAfterFloor: 0 }, RangeError, 'option retryAfterFloor must be more than 0'],
  [{ retryAfterFloor: '1s' }, TypeError, 'option retryAfterFloor must be a number'],
  [
    { retryAfterFloor: 700_000 },
    RangeError,
    'option retryAfterFloor must be at most 600000 ms (10 minutes without backoff), got 700000',
  ],
  [
    { retryAfterFloor: 90_000, backoff: { multiplier: 2, max: 60_000 } },
    RangeError,
    'option retryAfterFloor must be at most 60000 ms (backoff.max), got 90000',
  ],
  [{ quorum: 0 }, RangeError, 'option quorum must be a whole number of at least 1, got 0'],
  [{ quorum: 1.5 }, RangeError, 'got 1.5'],
  [{ quorum: '2' }, TypeError, 'option quorum must be a number, got "2"'],
];

describe('policy options', () => {
  it.each(
    bad.map(
      ([options, error, message]) => [JSON.stringify(options), options, error, message] as const,
    ),
  )('refuses %s', (_, options, error, message) => {
    expect(build(options as BreakerOptions)).toThrow(error);
    expect(build(options as BreakerOptions)).toThrow(message);
  });

  it('keeps the policies in the shared configuration, and nothing when they are off', () => {
    expect(build({})().config).toEqual({
      failMax: 5,
      resetTimeout: 30_000,
      successThreshold: 2,
      halfOpenMaxCalls: 1,
      probeLease: 30_000,
    });
    const options: BreakerOptions = {
      failMax: Number.POSITIVE_INFINITY,
      failureRateThreshold: 50,
      slowCallDuration: 2_000,
      slowCallRateThreshold: 80,
      backoff: { multiplier: 1.5, max: 300_000 },
      quorum: 2,
      retryAfter: () => undefined,
    };
    const breaker = build(options)();
    expect(breaker.config).toEqual({
      failMax: Number.POSITIVE_INFINITY,
      resetTimeout: 30_000,
      successThreshold: 2,
      halfOpenMaxCalls: 1,
      probeLease: 30_000,
      window: 10_000,
      minimumCalls: 20,
      failureRateThreshold: 50,
      slowCallDuration: 2_000,
      slowCallRateThreshold: 80,
      backoffMultiplier: 1.5,
      backoffMax: 300_000,
      quorum: 2,
    });
    expect(resolveOptions(options).windowFlush).toBe(500);
    // quorum 1 is the default and is not written.
    expect(build({ quorum: 1 })().config.quorum).toBeUndefined();
    // Nor is the default retry-after floor, so that stating it agrees with leaving it out.
    expect(build({ retryAfterFloor: 1_000 })().config.retryAfterFloor).toBeUndefined();
    expect(build({ retryAfterFloor: 250 })().config.retryAfterFloor).toBe(250);
  });

  it('takes the percent 100 and a window flush as long as the window', () => {
    const options = { failureRateThreshold: 100, window: 800, windowFlush: 800 };
    expect(build(options)().config.failureRateThreshold).toBe(100);
    expect(resolveOptions(options).windowFlush).toBe(800);
    // A window shorter than the default flush interval flushes once per window.
    expect(resolveOptions({ ...rate, window: 200 }).windowFlush).toBe(200);
  });
});

describe('the registry and the fleet compare the policies', () => {
  it('names windowFlush, retryAfter and a policy that differ', async () => {
    const shared = store();
    getCircuitBreaker('compared', { store: shared, ...rate, retryAfter: () => 1 });
    // Another retryAfter function is the same option (written inline, say); none is not.
    expect(() =>
      getCircuitBreaker('compared', { store: shared, ...rate, retryAfter: () => 2 }),
    ).not.toThrow();
    expect(() => getCircuitBreaker('compared', { store: shared, ...rate })).toThrow(/retryAfter/);
    expect(() =>
      getCircuitBreaker('compared', {
        store: shared,
        ...rate,
        retryAfter: () => 1,
        windowFlush: 100,
      }),
    ).toThrow(/windowFlush \(500 vs 100\)/);
    expect(() =>
      getCircuitBreaker('compared', {
        store: shared,
        failureRateThreshold: 60,
        retryAfter: () => 1,
      }),
    ).toThrow(/failureRateThreshold \(50 vs 60\)/);
    await resetAllBreakers();
  });

  it('reports instances whose quorum differs with a ConfigMismatchError', async () => {
    const shared = store();
    const a = new CircuitBreaker('mismatch', { store: shared, quorum: 2, failMax: 1 });
    const b = new CircuitBreaker('mismatch', { store: shared, failMax: 1 });
    const errors: unknown[] = [];
    b.on('storeError', ({ error }) => errors.push(error));
    a.forceOpen();
    await a.settled();
    await b.settled();
    const mismatch = errors.find((e) => e instanceof ConfigMismatchError) as ConfigMismatchError;
    expect(mismatch?.differences).toEqual(['quorum (unset vs 2)']);
    a.dispose();
    b.dispose();
  });
});
