import type { CircuitBreaker } from '../breaker.js';
import type { BreakerObserver } from '../breaker-observer.js';
import { watchBreakers } from '../live-breakers.js';

/**
 * Attaches an observer made by `observerFor` to every breaker of the process, live now or
 * created later, until the returned function detaches them all.
 */
export function followBreakers(
  observerFor: (breaker: CircuitBreaker) => BreakerObserver,
): () => void {
  const detachers = new Map<CircuitBreaker, () => void>();
  const unwatch = watchBreakers({
    created(breaker) {
      detachers.set(breaker, breaker.attachObserver(observerFor(breaker)));
    },
    // A disposed breaker drops its observers itself; forgetting it here frees it.
    disposed(breaker) {
      detachers.delete(breaker);
    },
  });
  return () => {
    unwatch();
    for (const detach of detachers.values()) detach();
    detachers.clear();
  };
}
