import { MAX_DELAY } from '../validate.js';
import { errorChain } from './error-chain.js';
import { headerValue } from './headers.js';
import { parseHttpDate } from './http-date.js';

// A non-negative decimal number, as the SDKs read these headers (fractions included); not
// "1e3", "-1", "0x10" or "", which Number() would take.
const DECIMAL = /^\d+(?:\.\d+)?$/;

function decimal(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  return DECIMAL.test(trimmed) ? Number(trimmed) : undefined;
}

function delayOf(headers: unknown): number | undefined {
  const ms = decimal(headerValue(headers, 'retry-after-ms'));
  if (ms !== undefined) return ms;
  const after = headerValue(headers, 'retry-after');
  if (after === undefined) return undefined;
  const seconds = decimal(after);
  if (seconds !== undefined) return seconds * 1000;
  const at = parseHttpDate(after);
  if (at === undefined) return undefined;
  // Measured on the server's own clock when the response says what time it was there.
  const date = headerValue(headers, 'date');
  const now = (date === undefined ? undefined : parseHttpDate(date)) ?? Date.now();
  return at - now;
}

/**
 * How long an LLM API asked the caller to wait, in milliseconds, from the `retry-after-ms`
 * (OpenAI's, preferred when valid) or `retry-after` header of the response an error carries:
 * an SDK error's `headers` (the AI SDK's `APICallError`: `responseHeaders`), or a `Response`
 * the error wraps as `response` or `cause`.
 *
 * `retry-after` is seconds (fractions allowed) or an HTTP date; a date counts from the
 * response's own `Date` header when it has one (so the local clock's skew does not matter),
 * else from `Date.now()`. The result is rounded up to a whole millisecond and at most
 * 2 147 483 647. `undefined` when there is no such header, when its value is not a number or
 * date, and when it asks for no wait (0, or a date already past). Never throws.
 */
export function llmRetryAfter(error: unknown): number | undefined {
  try {
    for (const record of errorChain(error)) {
      // The AI SDK's APICallError names them `responseHeaders`.
      const headers = record.headers ?? record.responseHeaders;
      if (headers === null || typeof headers !== 'object') continue;
      // The nearest response that speaks of retrying decides, even to say nothing usable.
      if (
        headerValue(headers, 'retry-after-ms') === undefined &&
        headerValue(headers, 'retry-after') === undefined
      ) {
        continue;
      }
      const delay = delayOf(headers);
      return delay !== undefined && delay > 0 ? Math.min(Math.ceil(delay), MAX_DELAY) : undefined;
    }
  } catch {
    // A headers object whose get() throws has no usable answer.
  }
  return undefined;
}
