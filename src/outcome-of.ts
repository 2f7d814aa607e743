import { CallTimeoutError } from './errors.js';
import type { Emitter } from './events.js';
import type { Outcome } from './options.js';
import { describeValue } from './validate.js';

/**
 * How a call's error counts: its own signal's abort is ignored, a timeout is a failure, else
 * the breaker's `classify` says; a `classify` that throws or answers nonsense is reported as a
 * `classifyError` and counts as a failure.
 */
export function outcomeOf(
  error: unknown,
  signal: AbortSignal | undefined,
  classify: ((error: unknown) => Outcome) | undefined,
  events: Emitter,
  name: string,
): Outcome {
  if (signal?.aborted && error === signal.reason) return 'ignored';
  if (error instanceof CallTimeoutError) return 'failure';
  if (signal?.aborted) return 'ignored';
  if (classify === undefined) return 'failure';
  let outcome: unknown;
  try {
    outcome = classify(error);
  } catch (classifyError) {
    events.emit('classifyError', { name, error: classifyError });
    return 'failure';
  }
  if (outcome === 'failure' || outcome === 'ignored' || outcome === 'success') return outcome;
  // describeValue, not String: an object without a prototype cannot be turned into a string.
  const message = `classify returned ${describeValue(outcome)}; counted as a failure`;
  events.emit('classifyError', { name, error: new TypeError(message) });
  return 'failure';
}

// The upstream's retry-after for a counted failure; a bad answer is reported and not used.
export function retryAfterOf(
  error: unknown,
  retryAfter: ((error: unknown) => number | undefined) | undefined,
  events: Emitter,
  name: string,
): number | undefined {
  if (retryAfter === undefined) return undefined;
  let ms: unknown;
  try {
    ms = retryAfter(error);
  } catch (retryAfterError) {
    events.emit('classifyError', { name, error: retryAfterError });
    return undefined;
  }
  if (ms === undefined) return undefined;
  if (typeof ms === 'number' && !Number.isNaN(ms)) return ms;
  const message = `retryAfter returned ${describeValue(ms)}; not used`;
  events.emit('classifyError', { name, error: new TypeError(message) });
  return undefined;
}
