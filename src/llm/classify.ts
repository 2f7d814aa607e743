import type { Outcome } from '../options.js';
import { className, errorChain, httpStatus, stringField } from './error-chain.js';

// Error `code`s and `type`s of the OpenAI and Anthropic APIs (found on SDK errors, including
// those raised mid-stream without a status), and Node's network error codes.
const CODES: Readonly<Record<string, Outcome>> = {
  // The request itself is at fault: sending it again fails again, whoever sends it.
  context_length_exceeded: 'ignored',
  content_policy_violation: 'ignored',
  content_filter: 'ignored',
  invalid_request_error: 'ignored',
  request_too_large: 'ignored',
  not_found_error: 'ignored',
  // One instance's key or account: that instance's problem, not the upstream's.
  invalid_api_key: 'ignored',
  authentication_error: 'ignored',
  permission_error: 'ignored',
  billing_error: 'ignored',
  // The upstream is overloaded, limited or broken.
  rate_limit_exceeded: 'failure',
  rate_limit_error: 'failure',
  overloaded_error: 'failure',
  api_error: 'failure',
  server_error: 'failure',
  timeout_error: 'failure',
  // The connection failed or stalled (Node's net and DNS errors, undici's errors).
  ECONNRESET: 'failure',
  ECONNREFUSED: 'failure',
  ECONNABORTED: 'failure',
  ETIMEDOUT: 'failure',
  EPIPE: 'failure',
  ENOTFOUND: 'failure',
  EAI_AGAIN: 'failure',
  ENETUNREACH: 'failure',
  EHOSTUNREACH: 'failure',
  UND_ERR_SOCKET: 'failure',
  UND_ERR_CLOSED: 'failure',
  UND_ERR_CONNECT_TIMEOUT: 'failure',
  UND_ERR_HEADERS_TIMEOUT: 'failure',
  UND_ERR_BODY_TIMEOUT: 'failure',
};

// Errors known by name: a DOMException's `name`, or an SDK error's class (the SDKs do not set
// `name` on theirs).
const NAMES: Readonly<Record<string, Outcome | 'aborted'>> = {
  // AbortSignal.timeout() and the breaker's own timeout.
  TimeoutError: 'failure',
  CallTimeoutError: 'failure',
  FirstChunkTimeoutError: 'failure',
  ChunkTimeoutError: 'failure',
  APIConnectionError: 'failure',
  APIConnectionTimeoutError: 'failure',
  // Aborted by a signal the breaker did not hand out: someone gave up on the call.
  AbortError: 'aborted',
  APIUserAbortError: 'aborted',
  // OpenAI's parse helpers: the answer hit the caller's max_tokens, or the content filter.
  LengthFinishReasonError: 'ignored',
  ContentFilterFinishReasonError: 'ignored',
};

function statusOutcome(status: number): Outcome {
  if (status >= 500 || status === 408 || status === 409 || status === 429) return 'failure';
  return 'ignored';
}

function verdictOf(record: Record<string, unknown>): Outcome | 'aborted' | undefined {
  const status = httpStatus(record);
  // A 1xx-3xx status in an error says nothing about whose fault it is.
  if (status !== undefined && status >= 400) return statusOutcome(status);
  for (const key of ['code', 'type']) {
    const value = stringField(record, key);
    if (value !== undefined && Object.hasOwn(CODES, value)) return CODES[value];
  }
  for (const name of [stringField(record, 'name'), className(record)]) {
    if (name !== undefined && Object.hasOwn(NAMES, name)) return NAMES[name];
  }
  return undefined;
}

/**
 * Classifies errors of LLM APIs for the breaker's `classify` option: errors of the official
 * OpenAI and Anthropic SDKs (read by their `status`, `code` and `type`, without depending on
 * the SDKs), Node's `fetch` errors, and application errors that wrap a `Response` as
 * `response` or `cause` or wrap any of these as `cause`.
 *
 * - `'ignored'`: the caller's fault (400, 404, 413, 422 and every other 4xx but 408, 409 and
 *   429; context length exceeded; content policy) and one instance's credentials (401, 403):
 *   a bad key in one process must not open the circuit for the fleet. An abort by a signal
 *   the breaker did not hand out (`AbortError`, the SDKs' `APIUserAbortError`) is ignored
 *   too, unless its reason is a timeout.
 * - `'failure'`: 408, 409, 429, every 5xx (Anthropic's 529 overloaded too), connection errors
 *   (refused, reset, DNS) and timeouts; and any error it does not recognise, as without
 *   `classify`.
 *
 * The outermost answer wins: a status on the error itself before one on what it wraps.
 * Never throws.
 */
export function llmClassify(error: unknown): Outcome {
  try {
    let aborted = false;
    for (const record of errorChain(error)) {
      const verdict = verdictOf(record);
      if (verdict === 'aborted') aborted = true;
      else if (verdict !== undefined) return verdict;
    }
    return aborted ? 'ignored' : 'failure';
  } catch {
    // A getter that throws (a revoked Proxy, say) leaves the error unknown.
    return 'failure';
  }
}
