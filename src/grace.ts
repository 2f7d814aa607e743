import type { Clock } from './clock.js';

/**
 * Calls `fn` once `ms` have passed on `clock`, but not before the event loop has read the I/O
 * that is already waiting. After a stall (a long synchronous task, a GC pause) a timer and the
 * reply it guards are due together, and Node runs timers before it polls sockets: without this
 * hop the timer would win and a store that answered in microseconds would count as silent.
 * Returns the function that cancels it.
 */
export function afterDue(clock: Clock, ms: number, fn: () => void): () => void {
  let immediate: ReturnType<typeof setImmediate> | undefined;
  const timer = clock.setTimeout(() => {
    immediate = setImmediate(fn);
  }, ms);
  return () => {
    clock.clearTimeout(timer);
    if (immediate !== undefined) clearImmediate(immediate);
  };
}
