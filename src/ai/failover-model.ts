import type { CircuitBreaker } from '../breaker.js';
import { withinAdmission } from '../llm/admission-scope.js';
import { llmClassify } from '../llm/classify.js';
import { llmRetryAfter } from '../llm/retry-after.js';
import { checkStreamRules } from '../llm/watch-stream.js';
import type { BreakerOptions } from '../options.js';
import { getCircuitBreaker } from '../registry.js';
import { failover, type Route, type RouteOptions } from '../route/failover.js';
import type { BreakerStore } from '../stores/store.js';
import type { StreamOptions } from '../stream/stream-options.js';
import { describeValue } from '../validate.js';
import type {
  CallOptionsLike,
  LanguageModelLike,
  StreamPartLike,
  StreamResultLike,
} from './model-types.js';
import { partBatches } from './part-batches.js';
import { upstreamName } from './upstream-name.js';

/** A model of a failover model with its own breaker. */
export interface FailoverModelTarget<M extends LanguageModelLike> {
  readonly model: M;
  readonly breaker: CircuitBreaker;
}

/** Options of {@link failoverModel}. */
export interface FailoverModelOptions extends RouteOptions {
  /** The store of the breakers it creates: a `RedisStore` shares them with the fleet. */
  store?: BreakerStore;
  /**
   * Options of the breakers it creates, besides `store`. Default: `classify: llmClassify` and
   * `retryAfter: llmRetryAfter`, which these options replace when they give their own.
   */
  breaker?: Omit<BreakerOptions, 'store'>;
  /** Milliseconds until a stream's first part of the answer; the breakers' own by default. */
  firstChunkTimeout?: number;
  /** The longest gap between a stream's parts; the breakers' own by default. */
  chunkTimeout?: number;
}

type Member<M extends LanguageModelLike> = M | FailoverModelTarget<M>;

function isTarget<M extends LanguageModelLike>(
  member: Member<M>,
): member is FailoverModelTarget<M> {
  return (member as { breaker?: unknown }).breaker !== undefined;
}

function checkModel(model: unknown, index: number): LanguageModelLike {
  const m = model as Partial<LanguageModelLike> | null;
  if (
    m === null ||
    typeof m !== 'object' ||
    typeof m.doGenerate !== 'function' ||
    typeof m.doStream !== 'function' ||
    typeof m.provider !== 'string' ||
    typeof m.modelId !== 'string'
  ) {
    throw new TypeError(
      `failoverModel() model ${index} must be a language model object (provider, modelId, doGenerate, doStream), got ${describeValue(model)}; resolve a model id string with its provider first`,
    );
  }
  if (m.specificationVersion !== 'v3' && m.specificationVersion !== 'v4') {
    throw new TypeError(
      `failoverModel() model ${index} implements specificationVersion ${describeValue(m.specificationVersion)}; only 'v3' (ai 6) and 'v4' (ai 7) are supported`,
    );
  }
  return m as LanguageModelLike;
}

/**
 * A language model that routes every call across `models` in order, each behind a breaker: the
 * first whose breaker admits the call answers, and a model that fails (a 5xx, a 429, a timeout,
 * a stream that breaks before its first part of the answer) hands the call to the next. An
 * ignored error (a 400: the request is at fault) reaches the caller at once. `generateText` and
 * `streamText` take it as they take any model.
 *
 * Each model's breaker is given (`{ model, breaker }`) or got with `getCircuitBreaker` under the
 * name of its upstream, `<provider>:<modelId>` (`openai.chat('gpt-5')` and `openai('gpt-5')`
 * share `openai:gpt-5`), with `@<host>` when the provider was given another base URL (see
 * {@link upstreamName}), on `options.store` with `options.breaker`.
 *
 * Every model must implement one interface version: `'v3'` (`ai` 6) or `'v4'` (`ai` 7; wrap an
 * older provider's model with `ai` 7's `wrapLanguageModel` first, which converts it). The model
 * returned implements the same version. A stream fails over only until its first part of the
 * answer reached the caller; an error after that reaches the caller as an `{ type: 'error' }`
 * part. When no model answers: `AllTargetsFailedError`, which the AI SDK does not retry.
 *
 * @throws TypeError or RangeError naming a bad model or option.
 */
export function failoverModel<M extends LanguageModelLike>(
  models: ReadonlyArray<Member<M>>,
  options?: FailoverModelOptions,
): M & { readonly route: Route<M> } {
  if (!Array.isArray(models) || models.length === 0) {
    throw new TypeError(
      `failoverModel() needs a non-empty array of models, got ${describeValue(models)}`,
    );
  }
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw new TypeError(`failoverModel() options must be an object, got ${describeValue(options)}`);
  }
  const {
    store,
    breaker: breakerOptions,
    firstChunkTimeout,
    chunkTimeout,
    ...routeOptions
  } = options ?? {};
  const rules = checkStreamRules('failoverModel()', { firstChunkTimeout, chunkTimeout });
  // Every model is checked before any breaker is created: a bad list leaves no breaker behind.
  const checked = models.map((member, i) =>
    checkModel(isTarget(member) ? member.model : member, i),
  );
  const version = checked[0]?.specificationVersion;
  const mixed = checked.find((m) => m.specificationVersion !== version);
  if (mixed !== undefined) {
    throw new TypeError(
      `failoverModel() models implement different interface versions (${version} and ${mixed.specificationVersion}); wrap the older ones with ai 7's wrapLanguageModel to convert them`,
    );
  }
  const targets = models.map((member, i) => {
    const model = checked[i] as M;
    const breaker = isTarget(member)
      ? member.breaker
      : getCircuitBreaker(upstreamName(model), {
          classify: llmClassify,
          retryAfter: llmRetryAfter,
          ...breakerOptions,
          ...(store === undefined ? {} : { store }),
        });
    return { breaker, value: model };
  });
  const route = failover(targets, routeOptions);
  // A layer below on a model's own breaker (its breakerMiddleware, its provider's breakerFetch)
  // joins the route's attempt rather than counting the call again.
  const breakers = new Map<M, CircuitBreaker>(targets.map((t) => [t.value, t.breaker]));
  const breakerOf = (model: M) => breakers.get(model) as CircuitBreaker;
  const streamOptions: StreamOptions = {};
  if (rules.firstChunkTimeout !== undefined)
    streamOptions.firstChunkTimeout = rules.firstChunkTimeout;
  if (rules.chunkTimeout !== undefined) streamOptions.chunkTimeout = rules.chunkTimeout;
  const first = targets[0]?.value as M;

  const model = {
    specificationVersion: version,
    provider: 'statebreaker.failover',
    modelId: route.name,
    supportedUrls: first.supportedUrls,
    route,
    doGenerate(params: CallOptionsLike) {
      // The caller's signal is the route's: its abort stops the route, counted on no model.
      return route.call(
        (target, signal) =>
          withinAdmission(breakerOf(target), () =>
            (target.doGenerate as (p: CallOptionsLike) => PromiseLike<unknown>)({
              ...params,
              abortSignal: signal,
            }),
          ),
        params.abortSignal === undefined ? undefined : { signal: params.abortSignal },
      );
    },
    async doStream(params: CallOptionsLike): Promise<StreamResultLike> {
      let chosen: StreamResultLike | undefined;
      const batches = route.stream(
        async (target, signal) => {
          const result = await withinAdmission(breakerOf(target), () =>
            (target.doStream as (p: CallOptionsLike) => PromiseLike<StreamResultLike>)({
              ...params,
              abortSignal: signal,
            }),
          );
          chosen = result;
          return partBatches(result.stream);
        },
        params.abortSignal === undefined
          ? streamOptions
          : { ...streamOptions, signal: params.abortSignal },
      );
      const iterator = batches[Symbol.asyncIterator]();
      // Failover happens here: the first batch holds the answer's first part.
      const head = await iterator.next();
      return { ...(chosen as StreamResultLike), stream: partStream(head, iterator) };
    },
  };
  return model as unknown as M & { readonly route: Route<M> };
}

/** The parts of the route's batches; an error after the first batch becomes an error part. */
function partStream(
  head: IteratorResult<StreamPartLike[]>,
  iterator: AsyncIterator<StreamPartLike[]>,
): ReadableStream<StreamPartLike> {
  let pending: IteratorResult<StreamPartLike[]> | undefined = head;
  return new ReadableStream<StreamPartLike>(
    {
      async pull(controller) {
        let next = pending;
        pending = undefined;
        if (next === undefined) {
          try {
            next = await iterator.next();
          } catch (error) {
            controller.enqueue({ type: 'error', error } as StreamPartLike);
            controller.close();
            return;
          }
        }
        if (next.done) {
          controller.close();
          return;
        }
        for (const part of next.value) controller.enqueue(part);
      },
      async cancel() {
        await iterator.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}
