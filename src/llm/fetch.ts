import { CircuitBreaker } from '../breaker.js';
import { CircuitBreakerError } from '../errors.js';
import type { Route } from '../route/failover.js';
import { describeValue } from '../validate.js';
import { admittedAbove } from './admission-scope.js';
import { circuitOpenResponse } from './circuit-open-response.js';
import { llmClassify } from './classify.js';
import { HttpStatusError } from './http-status-error.js';
import { rebuilt, routeFetch } from './route-fetch.js';
import { type Classify, FollowingController, settleWith } from './settle.js';
import { sseCarriesAnswer } from './sse-preamble.js';
import {
  checkStreamRules,
  openingDeadline,
  type StreamRules,
  watchStream,
} from './watch-stream.js';

/** A `fetch` as the OpenAI and Anthropic SDKs and the AI SDK's providers take it. */
export type FetchFunction = (
  input: string | URL | Request,
  init?: RequestInit,
) => Promise<Response>;

/** Options of {@link breakerFetch}. */
export interface BreakerFetchOptions extends StreamRules {
  /** The `fetch` that sends the requests; `globalThis.fetch` by default. */
  fetch?: FetchFunction;
  /**
   * How an answer counts: called with an {@link HttpStatusError} for a status of 400 or more, and
   * with what the request or its body threw. `llmClassify` by default.
   */
  classify?: Classify;
}

/** Whether a request's JSON body asks for a streamed answer (`"stream": true`). */
function asksForStream(body: unknown): boolean {
  if (typeof body !== 'string' || !body.includes('"stream"')) return false;
  try {
    const parsed: unknown = JSON.parse(body);
    return (parsed as { stream?: unknown } | null)?.stream === true;
  } catch {
    return false;
  }
}

function isEventStream(response: Response): boolean {
  return response.headers.get('content-type')?.toLowerCase().includes('text/event-stream') === true;
}

function checkOptions(options: unknown): BreakerFetchOptions {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`breakerFetch() options must be an object, got ${describeValue(options)}`);
  }
  const given = options as BreakerFetchOptions;
  if (given.fetch !== undefined && typeof given.fetch !== 'function') {
    throw new TypeError(
      `breakerFetch() option fetch must be a function, got ${describeValue(given.fetch)}`,
    );
  }
  if (given.classify !== undefined && typeof given.classify !== 'function') {
    throw new TypeError(
      `breakerFetch() option classify must be a function, got ${describeValue(given.classify)}`,
    );
  }
  return { ...given, ...checkStreamRules('breakerFetch()', given) };
}

/**
 * A `fetch` that sends every request through a breaker (or a route), for `new OpenAI({ fetch })`,
 * `new Anthropic({ fetch })` or an AI SDK provider's `fetch` option.
 *
 * - The answer's status decides the outcome through `classify` (`llmClassify`): 5xx, 408, 409
 *   and 429 are failures, other 4xx are ignored, the rest succeed. A failure reaches the breaker
 *   as an {@link HttpStatusError} carrying the response's headers, so a breaker with
 *   `retryAfter: llmRetryAfter` opens for the time a 429's `retry-after` asks.
 * - A server-sent-event body (`text/event-stream`) is watched with the stream rules: a success
 *   only when it ends, a failure when it breaks off or breaches `firstChunkTimeout` (counted
 *   from the request) or `chunkTimeout`, ignored when the SDK cancels it. A JSON body is read
 *   whole (up to 8 MiB) before the `Response` is handed over; any other body (audio, a file)
 *   is handed over at once and watched the same way, a success at its end.
 * - While the circuit does not admit the request, nothing is sent: the answer is the `503` of
 *   {@link circuitOpenResponse}, whose `x-should-retry: false` stops the SDKs' retries at once.
 * - The caller's signal aborts the request (ignored); the breaker's `timeout` aborts it (a
 *   failure) until its response headers come: a stream is then bounded by its own deadlines.
 *
 * Given a failover route whose values are base URLs (`failover([{ breaker, value:
 * 'https://eu.example/v1' }, …])`), each request goes to the first target whose breaker admits
 * it, its URL rebased from whichever of the route's base URLs it starts with (give the SDK one
 * of them as `baseURL`); the request body and headers are sent unchanged, so the targets must
 * speak one API with one key (regions, deployments, a gateway). Each target's breaker judges
 * its answers with its own `classify` (give them `llmClassify`): a failure moves on, an ignored
 * status (a 400) is the SDK's answer. A streamed answer fails over until its first chunk. When
 * every target failed, the SDK gets the last target's error answer, or a `503` like an open
 * circuit's when none answered, both with `x-should-retry: false`: the route already tried
 * every target.
 *
 * @throws TypeError when an option is invalid, naming it.
 */
export function breakerFetch(
  target: CircuitBreaker | Route<string>,
  options?: BreakerFetchOptions,
): FetchFunction {
  const checked = checkOptions(options);
  const send: FetchFunction = checked.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const rules: StreamRules = {
    firstChunkTimeout: checked.firstChunkTimeout,
    chunkTimeout: checked.chunkTimeout,
  };
  if (target instanceof CircuitBreaker) return overBreaker(target, send, rules, checked.classify);
  if (isRoute(target)) {
    if (checked.classify !== undefined) {
      throw new TypeError(
        "breakerFetch(route) takes no classify option: each target's breaker classifies with its own",
      );
    }
    return routeFetch(target, send, rules, asksForStream);
  }
  throw new TypeError(
    `breakerFetch() needs a CircuitBreaker or a failover route, got ${describeValue(target)}`,
  );
}

function isRoute(value: unknown): value is Route<string> {
  const route = value as Partial<Route<string>> | null;
  return (
    typeof route === 'object' &&
    route !== null &&
    typeof route.call === 'function' &&
    typeof route.stream === 'function' &&
    Array.isArray(route.targets)
  );
}

function overBreaker(
  breaker: CircuitBreaker,
  send: FetchFunction,
  rules: StreamRules,
  classifyOption: Classify | undefined,
): FetchFunction {
  const classify = classifyOption ?? llmClassify;
  const clock = breaker.clock;

  return async function fetchThroughBreaker(input, init) {
    // A layer above on the same breaker (breakerMiddleware, failoverModel) has admitted this
    // request and counts its outcome: send it as it is.
    if (admittedAbove(breaker)) return send(input, init);
    const callerSignal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    let attempt: Awaited<ReturnType<CircuitBreaker['attempt']>>;
    try {
      attempt = await breaker.attempt(callerSignal == null ? undefined : { signal: callerSignal });
    } catch (error) {
      if (error instanceof CircuitBreakerError) return circuitOpenResponse(error);
      throw error;
    }
    const controller = new FollowingController().follow(callerSignal ?? undefined);
    controller.follow(attempt.signal);
    // Settling stops following the attempt's signal, which ignore() aborts: an ignored 400's
    // body must stay readable. It stops following the caller's too, once nothing is left to
    // abort, so that a long-lived signal collects no listeners.
    const settle = (how: () => void) => {
      controller.unfollow();
      how();
    };
    const startedAt = clock.now();
    const streamed = asksForStream(init?.body);
    const opening = openingDeadline(
      clock,
      streamed ? rules.firstChunkTimeout : undefined,
      breaker.name,
      (error) => controller.abort(error),
    );
    const url = input instanceof Request ? input.url : String(input);
    let response: Response;
    try {
      response = await send(input, { ...init, signal: controller.signal });
    } catch (error) {
      const reason = controller.signal.aborted ? controller.signal.reason : error;
      settle(() => settleWith(attempt, reason, classify));
      throw reason;
    } finally {
      opening.clear();
    }
    if (response.status >= 400) {
      const error = new HttpStatusError(response.status, response.headers, url);
      settle(() => settleWith(attempt, error, classify));
      // The error body is small and read whole, as a JSON answer is.
      return rebuilt(response, await response.arrayBuffer());
    }
    const body = response.body;
    if (body === null) {
      settle(() => attempt.success());
      return response;
    }
    const watch = (source: ReadableStream<Uint8Array>, eventStream: boolean): Response => {
      // The breaker's timeout bounds the request, not the body: the stream rules take over.
      attempt.streamOpened();
      const watched = watchStream(
        source,
        {
          attempt,
          breaker: breaker.name,
          clock,
          classify,
          abort: (reason) => controller.abort(reason),
          settling: (ended) => {
            controller.unfollow();
            if (!ended) controller.follow(callerSignal ?? undefined);
          },
          ...(eventStream ? { isChunk: sseCarriesAnswer } : {}),
        },
        // The first-chunk deadline is a streamed request's; a download has its gaps' only.
        streamed ? rules : { chunkTimeout: rules.chunkTimeout },
        startedAt,
      );
      return rebuilt(response, watched);
    };
    if (isEventStream(response)) return watch(body, true);
    // Audio, files and other bodies reach the SDK as they come: a success at their end.
    if (!isJson(response)) return watch(body, false);
    // A JSON answer is read whole here (up to a bound), so that its outcome never waits on the
    // SDK; a larger one is watched as it is read.
    let read: BoundedRead;
    try {
      read = await readBounded(body, JSON_BUFFER_LIMIT);
    } catch (error) {
      const reason = controller.signal.aborted ? controller.signal.reason : error;
      settle(() => settleWith(attempt, reason, classify));
      throw reason;
    }
    if (read.rest !== undefined) return watch(read.rest, false);
    settle(() => attempt.success());
    return rebuilt(response, read.bytes);
  };
}

/** The largest JSON answer read whole before it is handed over: 8 MiB. */
const JSON_BUFFER_LIMIT = 8 * 1024 * 1024;

function isJson(response: Response): boolean {
  return response.headers.get('content-type')?.toLowerCase().includes('json') === true;
}

/** A body read whole (`bytes`), or, past the limit, the same body still to be read (`rest`). */
type BoundedRead =
  | { readonly bytes: Uint8Array<ArrayBuffer>; readonly rest?: undefined }
  | { readonly rest: ReadableStream<Uint8Array> };

async function readBounded(body: ReadableStream<Uint8Array>, limit: number): Promise<BoundedRead> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const next = await reader.read();
    if (next.done) break;
    chunks.push(next.value);
    size += next.value.byteLength;
    if (size > limit) {
      const rest = new ReadableStream<Uint8Array>(
        {
          async pull(controller) {
            const held = chunks.shift();
            if (held !== undefined) {
              controller.enqueue(held);
              return;
            }
            const more = await reader.read();
            if (more.done) controller.close();
            else controller.enqueue(more.value);
          },
          cancel: (reason) => reader.cancel(reason),
        },
        { highWaterMark: 0 },
      );
      return { rest };
    }
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { bytes };
}
