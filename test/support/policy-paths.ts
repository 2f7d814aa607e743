import { type BreakerPaths, getBreakerPaths } from 'statebreaker/testing';

/**
 * Path sets with each policy on, small enough to run on Redis too: one probe slot and one
 * success to close (the probe paths are the small config's, lease included), thresholds low so
 * that short paths reach them.
 */
export function policyPaths(): Record<string, BreakerPaths> {
  const base = { halfOpenMaxCalls: 1, successThreshold: 1, probeLease: 10_000 };
  return {
    'failure rate': getBreakerPaths({
      ...base,
      failMax: 3,
      failureRateThreshold: 50,
      minimumCalls: 3,
      window: 10_000,
    }),
    'slow-call rate': getBreakerPaths({
      ...base,
      failMax: Number.POSITIVE_INFINITY,
      slowCallDuration: 100,
      slowCallRateThreshold: 50,
      minimumCalls: 2,
      window: 10_000,
    }),
    'quorum 2, consecutive': getBreakerPaths({ ...base, failMax: 2, quorum: 2 }),
    'quorum 2, failure rate': getBreakerPaths({
      ...base,
      failMax: Number.POSITIVE_INFINITY,
      failureRateThreshold: 50,
      minimumCalls: 2,
      window: 10_000,
      quorum: 2,
    }),
    'backoff and retry-after': getBreakerPaths(
      { ...base, failMax: 2, backoffMultiplier: 2, backoffMax: 120_000 },
      { retryAfterMs: 5_000 },
    ),
  };
}
