// Checks shared by the option validators of the breaker and of the stores, so that every bad
// option is refused with the same words.

/** The longest delay a timer can hold: `setTimeout` fires at once above 2^31 - 1 ms (~24.8 days). */
export const MAX_DELAY = 2_147_483_647;

/** A value as an error message shows it: strings quoted, objects by kind. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

/**
 * `value` as a delay in milliseconds: a finite number above 0 and at most {@link MAX_DELAY}.
 * @param label how the error names the option, e.g. `option timeout`
 * @throws TypeError or RangeError naming the option and the value
 */
export function checkDuration(label: string, value: unknown): number {
  if (typeof value !== 'number') {
    throw new TypeError(`${label} must be a number of milliseconds, got ${describeValue(value)}`);
  }
  if (!Number.isFinite(value) || value <= 0 || value > MAX_DELAY) {
    throw new RangeError(
      `${label} must be more than 0 and at most ${MAX_DELAY} ms, got ${describeValue(value)}`,
    );
  }
  return value;
}
