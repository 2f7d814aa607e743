import { ConsecutiveBreaker, circuitBreaker, handleAll } from 'cockatiel';
import Opossum from 'opossum';

/** Opossum without its per-call timer, latency percentiles and snapshot events. */
export const OPOSSUM_LEAN = {
  timeout: false,
  rollingPercentilesEnabled: false,
  enableSnapshots: false,
} as Opossum.Options;

/** Cockatiel's closest equivalent of statebreaker's defaults: 5 consecutive failures. */
export function cockatielBreaker(halfOpenAfter = 30_000) {
  return circuitBreaker(handleAll, { halfOpenAfter, breaker: new ConsecutiveBreaker(5) });
}

export function opossumBreaker<T>(
  fn: () => Promise<T>,
  options: Opossum.Options = {},
): Opossum<[], T> {
  return new Opossum(fn, options);
}
