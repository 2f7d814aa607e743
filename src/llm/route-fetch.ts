import { CircuitBreakerError } from '../errors.js';
import { AllTargetsFailedError } from '../route/errors.js';
import type { Route } from '../route/failover.js';
import type { StreamOptions } from '../stream/stream-options.js';
import { circuitOpenResponse } from './circuit-open-response.js';
import { HttpStatusError } from './http-status-error.js';
import { withPreambleHeld } from './sse-preamble.js';
import type { StreamRules } from './watch-stream.js';

type Send = (input: string, init?: RequestInit) => Promise<Response>;

/** An error answer of a target, read whole, thrown inside the route so its breaker judges it. */
class AnsweredError extends HttpStatusError {
  constructor(
    readonly response: Response,
    url: string,
  ) {
    super(response.status, response.headers, url);
  }
}

/** A `Response` like `response` with another body (the original's body is read or wrapped). */
export function rebuilt(response: Response, body: BodyInit | null): Response {
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}

async function readWhole(response: Response): Promise<Response> {
  return rebuilt(response, await response.arrayBuffer());
}

/** `url` with the route base it starts with replaced by `base`. */
function rebase(url: string, bases: readonly string[]): (base: string) => string {
  const from = bases.find((b) => url.startsWith(b));
  if (from === undefined) {
    throw new TypeError(
      `breakerFetch(route): the request URL ${url} starts with none of the route's base URLs (${bases.join(', ')}); give the SDK one of them as its baseURL`,
    );
  }
  const rest = url.slice(from.length);
  return (base) => base + rest;
}

/**
 * What the SDK gets when the route found no answer: the last target's own error answer when
 * there is one, else a `503` like an open circuit's; both with `x-should-retry: false`, since
 * the route already tried every target (an SDK retry would run it all again).
 */
function answerOf(error: unknown): Response {
  if (error instanceof AnsweredError) return error.response;
  if (!(error instanceof AllTargetsFailedError)) throw error;
  const last = error.attempts.at(-1)?.error;
  if (last instanceof AnsweredError) {
    const answer = rebuilt(last.response, last.response.body);
    answer.headers.set('x-should-retry', 'false');
    return answer;
  }
  const waits = error.attempts
    .map((a) => a.retryAfterMs)
    .filter((ms): ms is number => ms !== undefined);
  return circuitOpenResponse({
    breaker: error.route,
    state: error.attempts.every((a) => a.error instanceof CircuitBreakerError) ? 'open' : 'closed',
    retryAfterMs: waits.length === error.attempts.length ? Math.min(...waits) : undefined,
    message: error.message,
  });
}

/**
 * `breakerFetch` over a route whose values are base URLs: the request goes to the first target
 * whose breaker admits it, its URL rebased from whichever of the route's base URLs it starts
 * with. A target that fails (its breaker's `classify` judges the status, or the error) hands
 * the request to the next; a streamed answer fails over until its first chunk.
 */
export function routeFetch(
  route: Route<string>,
  send: Send,
  rules: StreamRules,
  asksForStream: (body: unknown) => boolean,
): (input: string | URL | Request, init?: RequestInit) => Promise<Response> {
  const bases = route.targets.map((t) => t.value);
  for (const [i, base] of bases.entries()) {
    if (typeof base !== 'string' || !/^https?:\/\//.test(base)) {
      throw new TypeError(
        `breakerFetch(route): target ${i}'s value must be a base URL (http or https), got ${String(base)}`,
      );
    }
  }
  const streamOptions: StreamOptions = {};
  if (rules.firstChunkTimeout !== undefined)
    streamOptions.firstChunkTimeout = rules.firstChunkTimeout;
  if (rules.chunkTimeout !== undefined) streamOptions.chunkTimeout = rules.chunkTimeout;

  return async function fetchThroughRoute(input, init) {
    // The SDKs pass a URL and an init whose body is a string, which every target can resend.
    const url = input instanceof Request ? input.url : String(input);
    const to = rebase(url, bases);
    const callerSignal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    const options = callerSignal == null ? {} : { signal: callerSignal };
    const open = async (base: string, signal: AbortSignal) => {
      const target = to(base);
      const response = await send(target, { ...init, signal });
      if (response.status >= 400) throw new AnsweredError(await readWhole(response), target);
      return response;
    };
    if (!asksForStream(init?.body)) {
      try {
        // Read whole inside the call: a body that breaks off fails over too.
        return await route.call(
          async (base, signal) => readWhole(await open(base, signal)),
          options,
        );
      } catch (error) {
        return answerOf(error);
      }
    }
    let head: Response | undefined;
    const chunks = route.stream<Uint8Array>(
      async (base, signal) => {
        const response = await open(base, signal);
        head = response;
        if (response.body === null)
          return new ReadableStream<Uint8Array>({ start: (c) => c.close() });
        const eventStream = response.headers
          .get('content-type')
          ?.toLowerCase()
          .includes('text/event-stream');
        return eventStream === true ? withPreambleHeld(response.body) : response.body;
      },
      { ...streamOptions, ...options },
    );
    const iterator = chunks[Symbol.asyncIterator]();
    let first: IteratorResult<Uint8Array>;
    try {
      first = await iterator.next();
    } catch (error) {
      return answerOf(error);
    }
    let pending: IteratorResult<Uint8Array> | undefined = first;
    const body = new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          const next = pending ?? (await iterator.next());
          pending = undefined;
          if (next.done) controller.close();
          else controller.enqueue(next.value);
        },
        async cancel() {
          await iterator.return?.();
        },
      },
      { highWaterMark: 0 },
    );
    return rebuilt(head as Response, body);
  };
}
