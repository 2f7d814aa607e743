import { SimulatedClock } from 'xstate';

/**
 * XState's simulated clock, a breaker `Clock` whose time moves only with `increment(ms)` or
 * `set(ms)`; give the same one to the breakers and to the runner.
 */
export { SimulatedClock };

/**
 * A simulated clock, XState's `SimulatedClock`, set to `startMs`. It is a breaker `Clock`
 * (`now`, `setTimeout`, `clearTimeout`) that moves only when told: `increment(ms)` runs every
 * timer that falls due, `set(ms)` jumps to a time.
 */
export function createSimulatedClock(startMs = 0): SimulatedClock {
  const clock = new SimulatedClock();
  clock.set(startMs);
  return clock;
}
