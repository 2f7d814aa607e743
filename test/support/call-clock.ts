import { vi } from 'vitest';

/**
 * Makes `performance.now()` advance by `stepMs` at every read, so that every call a breaker
 * times seems to take `stepMs`: calls of 0.1 ms or more are all timed, faster ones sampled.
 * Returns the spy (restored by `vi.restoreAllMocks()`).
 */
export function stepPerformanceNow(stepMs: number) {
  // Whole milliseconds to start from and a step that binary fractions hold exactly, so that a
  // duration of one step never rounds below the step (0.1 ms read as 0.09999... would flip a
  // threshold on whatever performance.now() happened to return).
  const exact = 2 ** Math.round(Math.log2(stepMs));
  if (exact !== stepMs)
    throw new RangeError(`stepPerformanceNow: ${stepMs} ms is not a power of two`);
  let now = Math.floor(performance.now());
  const spy = vi.spyOn(performance, 'now');
  spy.mockImplementation(() => {
    now += stepMs;
    return now;
  });
  return spy;
}
