import type { BreakerCore } from './breaker-core.js';
import { admit, ticketOf } from './breaker-gate.js';
import { recordError } from './record-error.js';
import { NEVER_ABORTED, runCall } from './run-call.js';
import type { CircuitState } from './state.js';

/**
 * A call off the closed-circuit fast path (`call()` with a timeout or a caller's signal, or in a
 * state other than closed): admitted by the gate's admission, run, and recorded.
 */
export async function callSlow<T>(
  core: BreakerCore,
  fn: (signal: AbortSignal) => T | PromiseLike<T>,
  signal: AbortSignal | undefined,
  state: CircuitState,
): Promise<T> {
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError('call() option signal must be an AbortSignal');
  }
  if (signal?.aborted) throw signal.reason;
  const ticket = state === 'closed' ? ticketOf(core, undefined) : await admit(core, undefined);
  // Disabled records nothing: no outcome is counted, so none is timed.
  if (!ticket.recorded) return run(core, fn, signal);
  const { generation, probeId, started, since } = ticket;
  let result: T;
  try {
    result = await run(core, fn, signal);
  } catch (error) {
    recordError(core, error, generation, probeId, signal, started, since);
    throw error;
  }
  core.recordSuccess(generation, probeId, started, since);
  return result;
}

function run<T>(
  core: BreakerCore,
  fn: (signal: AbortSignal) => T | PromiseLike<T>,
  signal: AbortSignal | undefined,
): Promise<T> {
  if (core.timeout === undefined && signal === undefined) {
    return Promise.resolve().then(() => fn(NEVER_ABORTED));
  }
  return runCall(fn, signal, core.timeout, core.clock, core.name);
}
