// The options that set how long an open circuit stays open beyond resetTimeout: backoff on
// reopens and the floor of an upstream's retry-after.
import { RETRY_AFTER_FLOOR, RETRY_AFTER_MAX } from './machine.js';
import { checkDuration, describeValue } from './validate.js';

/** The `backoff` option as configuration fields. */
export function backoffOption(value: unknown, resetTimeout: number) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(
      `option backoff must be an object { multiplier, max }, got ${describeValue(value)}`,
    );
  }
  const given = value as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (key !== 'multiplier' && key !== 'max') {
      throw new TypeError(`unknown backoff option ${JSON.stringify(key)}`);
    }
  }
  const { multiplier, max } = given;
  if (typeof multiplier !== 'number') {
    throw new TypeError(
      `option backoff.multiplier must be a number, got ${describeValue(multiplier)}`,
    );
  }
  if (!(Number.isFinite(multiplier) && multiplier >= 1)) {
    throw new RangeError(
      `option backoff.multiplier must be a finite number of at least 1, got ${describeValue(multiplier)}`,
    );
  }
  const longest = checkDuration('option backoff.max', max);
  if (longest < resetTimeout) {
    throw new RangeError(
      `option backoff.max must be at least resetTimeout (${resetTimeout} ms), got ${describeValue(max)}`,
    );
  }
  return { backoffMultiplier: multiplier, backoffMax: longest };
}

/**
 * The `retryAfterFloor` option: `undefined` when it is the default, so that a configuration that
 * states the default agrees with one that does not.
 */
export function retryAfterFloorOption(
  value: unknown,
  backoffMax: number | undefined,
): number | undefined {
  if (value === undefined) return undefined;
  const floor = checkDuration('option retryAfterFloor', value);
  const max = backoffMax ?? RETRY_AFTER_MAX;
  if (floor > max) {
    const what = backoffMax === undefined ? '10 minutes without backoff' : 'backoff.max';
    throw new RangeError(
      `option retryAfterFloor must be at most ${max} ms (${what}), got ${describeValue(value)}`,
    );
  }
  return floor === RETRY_AFTER_FLOOR ? undefined : floor;
}
