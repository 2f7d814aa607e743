import { vi } from 'vitest';

/**
 * Makes `performance.now()` advance by `stepMs` at every read, so that every call a breaker
 * times seems to take `stepMs`: calls of 0.1 ms or more are all timed, faster ones sampled.
 * Returns the spy (restored by `vi.restoreAllMocks()`).
 */
export function stepPerformanceNow(stepMs: number) {
  let now = performance.now();
  const spy = vi.spyOn(performance, 'now');
  spy.mockImplementation(() => {
    now += stepMs;
    return now;
  });
  return spy;
}
