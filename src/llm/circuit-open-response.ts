import type { CircuitBreakerError } from '../errors.js';

/** The `type` and `code` of the body of {@link circuitOpenResponse}. */
export const CIRCUIT_OPEN = 'circuit_open';

/**
 * What `breakerFetch` answers instead of calling the upstream while the circuit does not admit
 * the call: a `503` whose headers stop the SDKs' own retries.
 *
 * - `x-should-retry: false`: the OpenAI and Anthropic SDKs retry a 5xx unless this says no.
 * - `retry-after` (whole seconds, rounded up) and `retry-after-ms`: when the open period ends,
 *   for an open circuit; absent when half-open with every probe slot taken or forced open.
 * - `x-circuit-breaker` and `x-circuit-state`: the breaker's name and state.
 * - A JSON body both SDKs read as an API error:
 *   `{"type":"error","error":{"type":"circuit_open","code":"circuit_open","param":null,"message":…}}`.
 */
export function circuitOpenResponse(
  error: Pick<CircuitBreakerError, 'breaker' | 'state' | 'retryAfterMs' | 'message'>,
): Response {
  const headers = new Headers({
    'content-type': 'application/json',
    'x-should-retry': 'false',
    'x-circuit-breaker': error.breaker,
    'x-circuit-state': error.state,
  });
  const after = error.retryAfterMs;
  if (after !== undefined) {
    headers.set('retry-after', String(Math.ceil(after / 1000)));
    headers.set('retry-after-ms', String(Math.ceil(after)));
  }
  const body = {
    type: 'error',
    error: { type: CIRCUIT_OPEN, code: CIRCUIT_OPEN, param: null, message: error.message },
  };
  return new Response(JSON.stringify(body), {
    status: 503,
    statusText: 'Service Unavailable',
    headers,
  });
}
