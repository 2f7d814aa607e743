import { CircuitBreaker } from './breaker.js';
import { type BreakerOptions, optionDifferences, resolveOptions } from './options.js';

const registry = new Map<string, CircuitBreaker>();

/**
 * The process's breaker of this name, created on first use. Asking again with no options
 * returns it; asking with options that differ from its own is an error naming the differences.
 *
 * @throws TypeError or RangeError for an invalid name or option; Error for conflicting options.
 */
export function getCircuitBreaker(name: string, options?: BreakerOptions): CircuitBreaker {
  const existing = registry.get(name);
  if (existing === undefined) {
    const breaker = new CircuitBreaker(name, options);
    registry.set(name, breaker);
    return breaker;
  }
  if (options !== undefined) {
    const differences = optionDifferences(existing.resolved, resolveOptions(options));
    if (differences.length > 0) {
      throw new Error(
        `circuit breaker "${name}" already exists with other options: ${differences.join(', ')}`,
      );
    }
  }
  return existing;
}

/**
 * Returns every registered breaker to closed, stops its timers and feed, and empties the
 * registry, so that each test starts from fresh breakers.
 */
export function resetAllBreakers(): void {
  for (const breaker of registry.values()) {
    breaker.reset();
    breaker.dispose();
  }
  registry.clear();
}
