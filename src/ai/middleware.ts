import type { CircuitBreaker } from '../breaker.js';
import { admittedAbove, withinAdmission } from '../llm/admission-scope.js';
import { llmClassify } from '../llm/classify.js';
import { type Classify, FollowingController, settleWith } from '../llm/settle.js';
import {
  checkStreamRules,
  openingDeadline,
  type StreamRules,
  watchStream,
} from '../llm/watch-stream.js';
import { describeValue } from '../validate.js';
import {
  type CallOptionsLike,
  errorPartOf,
  isAnswerPart,
  isFinishPart,
  type StreamPartLike,
  type StreamResultLike,
} from './model-types.js';

/** Options of {@link breakerMiddleware}. */
export interface BreakerMiddlewareOptions extends StreamRules {
  /**
   * How an error counts before it reaches the breaker: `llmClassify` by default (reads the AI
   * SDK's `APICallError` by its `statusCode`).
   */
  classify?: Classify;
}

/**
 * Middleware for `wrapLanguageModel` from `ai` 6 or 7; its `specificationVersion` is `'v3'`,
 * which `ai` 7 accepts as it accepts every middleware version.
 */
export interface BreakerMiddleware {
  readonly specificationVersion: 'v3';
  wrapGenerate<P extends CallOptionsLike, R>(options: {
    params: P;
    model: { doGenerate(options: P): PromiseLike<R> };
  }): Promise<R>;
  wrapStream<P extends CallOptionsLike, R extends StreamResultLike>(options: {
    params: P;
    model: { doStream(options: P): PromiseLike<R> };
  }): Promise<R>;
}

/**
 * Puts a language model behind `breaker`:
 * `wrapLanguageModel({ model, middleware: breakerMiddleware(breaker) })`.
 *
 * - While the circuit does not admit calls, `generateText` and `streamText` reject with
 *   `CircuitBreakerError` without calling the provider; the AI SDK does not retry it.
 * - An error counts as `classify` judges it (`llmClassify`: 5xx, 408, 409, 429 and network
 *   errors are failures, other 4xx ignored); a failure reaches the breaker as the provider's
 *   `APICallError`, whose `responseHeaders` a breaker with `retryAfter: llmRetryAfter` reads.
 * - A stream counts as a success only when it ends (or its `finish` part is read); an
 *   `{ type: 'error' }` part (how providers
 *   report a failure mid-stream), an error while reading and a breach of `firstChunkTimeout`
 *   (counted from the call, until the first part of the answer) or `chunkTimeout` count as
 *   failures. The AI SDK's own timeouts (`timeout: { chunkMs }` and the like) abort with a
 *   `TimeoutError`: a failure too. The caller's abort and a consumer that stops early are
 *   ignored.
 * - The breaker's `timeout` aborts the provider's request and counts as a failure; for a stream
 *   it runs only until `doStream` returns, then the stream's own deadlines take over.
 */
export function breakerMiddleware(
  breaker: CircuitBreaker,
  options?: BreakerMiddlewareOptions,
): BreakerMiddleware {
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw new TypeError(
      `breakerMiddleware() options must be an object, got ${describeValue(options)}`,
    );
  }
  if (options?.classify !== undefined && typeof options.classify !== 'function') {
    throw new TypeError(
      `breakerMiddleware() option classify must be a function, got ${describeValue(options.classify)}`,
    );
  }
  const classify = options?.classify ?? llmClassify;
  const rules = checkStreamRules('breakerMiddleware()', options);
  return {
    specificationVersion: 'v3',
    async wrapGenerate({ params, model }) {
      // A layer above on the same breaker (a failover model) has admitted this call: join it.
      if (admittedAbove(breaker)) return model.doGenerate(params);
      const { attempt, controller, settle } = await admit(breaker, params.abortSignal);
      let result: Awaited<ReturnType<typeof model.doGenerate>>;
      try {
        result = await withinAdmission(breaker, () =>
          model.doGenerate({ ...params, abortSignal: controller.signal }),
        );
      } catch (error) {
        const reason = params.abortSignal?.aborted ? params.abortSignal.reason : error;
        settle(() => settleWith(attempt, reason, classify));
        throw error;
      }
      settle(() => attempt.success());
      return result;
    },
    async wrapStream({ params, model }) {
      if (admittedAbove(breaker)) return model.doStream(params);
      const { attempt, controller, settle } = await admit(breaker, params.abortSignal);
      const startedAt = breaker.clock.now();
      // The first-chunk deadline runs from the call: a provider may wait for the response's
      // headers, or its first event, before doStream returns.
      const opening = openingDeadline(breaker.clock, rules.firstChunkTimeout, breaker.name, (e) => {
        settle(() => attempt.failure(e));
        controller.abort(e);
      });
      let result: StreamResultLike;
      try {
        result = await withinAdmission(breaker, () =>
          model.doStream({ ...params, abortSignal: controller.signal }),
        );
      } catch (error) {
        const reason =
          opening.breach ?? (params.abortSignal?.aborted ? params.abortSignal.reason : error);
        settle(() => settleWith(attempt, reason, classify));
        throw opening.breach ?? error;
      } finally {
        opening.clear();
      }
      // The breaker's timeout bounds opening the stream, not the stream: its deadlines take over.
      attempt.streamOpened();
      const stream = watchStream<StreamPartLike>(
        result.stream,
        {
          attempt,
          breaker: breaker.name,
          clock: breaker.clock,
          classify,
          signal: params.abortSignal,
          abort: (reason) => controller.abort(reason),
          settling: (ended) => {
            controller.unfollow();
            if (!ended) controller.follow(params.abortSignal);
          },
          isChunk: isAnswerPart,
          isLast: isFinishPart,
          errorOf: errorPartOf,
        },
        rules,
        startedAt,
      );
      // The same result with the watched stream, whose parts are the provider's own.
      return { ...result, stream } as never;
    },
  };
}

/**
 * Admits a call and builds the signal the provider gets: it follows the caller's signal, and the
 * attempt's (the breaker's timeout) until the attempt settles.
 */
async function admit(breaker: CircuitBreaker, callerSignal: AbortSignal | undefined) {
  // The caller's signal is not the attempt's: the attempt would count its abort as ignored,
  // where the AI SDK's own timeouts abort it with a TimeoutError, a failure.
  if (callerSignal?.aborted) throw callerSignal.reason;
  const attempt = await breaker.attempt();
  const controller = new FollowingController().follow(callerSignal).follow(attempt.signal);
  // Settling stops following both: the attempt's signal aborts on ignore(), which must not cut
  // what follows, and a long-lived caller's signal should collect no listeners.
  const settle = (how: () => void) => {
    controller.unfollow();
    how();
  };
  return { attempt, controller, settle };
}
