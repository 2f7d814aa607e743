import { vi } from 'vitest';

/**
 * Makes `performance.now()` advance by `stepMs` at every read, so that every call a breaker
 * times seems to take `stepMs`: calls of 0.1 ms or more are all timed, faster ones sampled.
 * Returns the spy (restored by `vi.restoreAllMocks()`).
 */
export function stepPerformanceNow(stepMs: number) {
  // Read n is an integer base plus n steps, not a running sum that drifts: with a step that is
  // a binary fraction (0.25, 0.001 is far from any threshold), differences of reads are exact.
  const base = Math.ceil(performance.now());
  let reads = 0;
  const spy = vi.spyOn(performance, 'now');
  spy.mockImplementation(() => {
    reads++;
    return base + Math.round(reads * stepMs * 1e6) / 1e6;
  });
  return spy;
}
