import { SimulatedClock } from 'xstate';
import { type BreakerOptions, CircuitBreaker, MemoryStore } from '../../src/index.js';

/** A start time far from 0, so that a bug that treats `openedAt: 0` as "never" shows. */
export const T0 = 1_700_000_000_000;

/** A breaker on its own `MemoryStore` driven by a simulated clock set to {@link T0}. */
export function simulatedBreaker(options: BreakerOptions = {}, name = 'upstream') {
  const clock = new SimulatedClock();
  clock.set(T0);
  const store = new MemoryStore({ clock });
  const breaker = new CircuitBreaker(name, { store, ...options });
  return { clock, store, breaker };
}

/** The error a failing fake upstream rejects with. */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';
  constructor(readonly status = 503) {
    super(`upstream answered ${status}`);
  }
}

/** A call that fails like an unavailable upstream. */
export const fail = (): Promise<never> => Promise.reject(new UpstreamError());

/** A call that succeeds. */
export const succeed = (): Promise<string> => Promise.resolve('ok');

/** A promise with its settle functions, for calls that stay in flight until a test says. */
export function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Lets pending microtasks and the store's change feed run. The breaker writes and notifies on
 * microtasks, so one macrotask turn is enough; nothing here waits on wall-clock time.
 */
export function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Fails `times` calls in a row and swallows their errors. */
export async function failTimes(breaker: CircuitBreaker, times: number): Promise<void> {
  for (let i = 0; i < times; i++) await breaker.call(fail).catch(() => undefined);
}

/** Trips a breaker with the default `failMax` of 5 or the given one. */
export async function trip(breaker: CircuitBreaker): Promise<void> {
  await failTimes(breaker, breaker.config.failMax);
  if (breaker.state !== 'open')
    throw new Error(`expected open after tripping, got ${breaker.state}`);
}
