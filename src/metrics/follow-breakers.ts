import type { CircuitBreaker } from '../breaker.js';
import type { BreakerObserver } from '../breaker-observer.js';
import { watchBreakers } from '../live-breakers.js';

/**
 * Attaches an observer made by `observerFor` to every breaker of the process, live now or
 * created later, until the returned function detaches them all; `released` hears each one
 * disposed meanwhile.
 */
export function followBreakers(
  observerFor: (breaker: CircuitBreaker) => BreakerObserver,
  released?: (breaker: CircuitBreaker) => void,
): () => void {
  const detachers = new Map<CircuitBreaker, () => void>();
  const unwatch = watchBreakers({
    created(breaker) {
      detachers.set(breaker, breaker.attachObserver(observerFor(breaker)));
    },
    // A disposed breaker drops its observers itself; forgetting it here frees it.
    disposed(breaker) {
      if (detachers.delete(breaker)) released?.(breaker);
    },
  });
  return () => {
    unwatch();
    for (const detach of detachers.values()) detach();
    detachers.clear();
  };
}
