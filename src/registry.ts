import { CircuitBreaker } from './breaker.js';
import { optionDifferences } from './option-differences.js';
import { type BreakerOptions, type ResolvedOptions, resolveOptions } from './options.js';

// Each breaker with the options it was created with, which later requests are compared with.
const registry = new Map<string, { breaker: CircuitBreaker; resolved: ResolvedOptions }>();

/**
 * The process's breaker of this name, created on first use (and again after the registered one
 * was disposed). Asking again with no options returns it; asking with options that differ from
 * its own is an error naming the differences.
 *
 * `classify` and `inspect` may be new functions each time, as when they are written inline in
 * a request handler: the breaker keeps the ones it was created with, and only having one where
 * the breaker has none (or the reverse) is a difference. Every other option must be the same
 * value (`store` and `clock` the same object).
 *
 * @example
 * // In a request handler: the same breaker on every request.
 * const breaker = getCircuitBreaker('openai', {
 *   classify: (error) => ((error as { status?: number }).status === 400 ? 'ignored' : 'failure'),
 * });
 *
 * @throws TypeError or RangeError for an invalid name or option; Error for conflicting options.
 */
export function getCircuitBreaker(name: string, options?: BreakerOptions): CircuitBreaker {
  const existing = registry.get(name);
  // A disposed breaker no longer follows the fleet: never hand it out again.
  if (existing === undefined || existing.breaker.disposed) {
    const breaker = new CircuitBreaker(name, options);
    registry.set(name, { breaker, resolved: resolveOptions(options) });
    return breaker;
  }
  if (options !== undefined) {
    const differences = optionDifferences(existing.resolved, resolveOptions(options));
    if (differences.length > 0) {
      throw new Error(
        `circuit breaker "${name}" already exists with other options: ${differences.join(', ')}; ` +
          'ask for it with the same options, or with none to take it as it is',
      );
    }
  }
  return existing.breaker;
}

/**
 * Returns every registered breaker to closed, empties the registry, and resolves once each
 * reset is written to its store (so that the next breaker of a name starts closed), after
 * which the old breakers stop their timers and feed. Await it between tests.
 */
export async function resetAllBreakers(): Promise<void> {
  const breakers = [...registry.values()].map((entry) => entry.breaker);
  registry.clear();
  for (const breaker of breakers) breaker.reset();
  // Disposing before the write lands would leave the store holding the old, open record.
  await Promise.all(breakers.map((breaker) => breaker.settled().finally(() => breaker.dispose())));
}
