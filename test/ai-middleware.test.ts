import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import {
  APICallError,
  type LanguageModelV3,
  type LanguageModelV3StreamPart,
} from '@ai-sdk/provider';
import { generateText, streamText, wrapLanguageModel } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import {
  type BreakerOptions,
  ChunkTimeoutError,
  CircuitBreaker,
  CircuitBreakerError,
  FirstChunkTimeoutError,
} from 'statebreaker';
import { breakerMiddleware } from 'statebreaker/ai';
import { llmRetryAfter } from 'statebreaker/llm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type FakeLlmServer,
  failWith,
  rateLimited,
  startFakeLlmServer,
} from './support/fake-llm-server.js';

// The real generateText and streamText of `ai` 6 through breakerMiddleware: over the SDK's own
// mock models, and over the real OpenAI and Anthropic providers talking to a local fake server.

let upstream: FakeLlmServer;
const breakers: CircuitBreaker[] = [];
beforeAll(async () => {
  upstream = await startFakeLlmServer();
});
afterEach(() => upstream.recover());
afterAll(async () => {
  for (const b of breakers) b.dispose();
  await upstream.close();
});

let unique = 0;
function breaker(options: BreakerOptions = {}): CircuitBreaker {
  const created = new CircuitBreaker(`ai-${++unique}`, options);
  breakers.push(created);
  return created;
}

/** The outcomes the breaker counted, in order, with the error of each failure. */
function outcomes(b: CircuitBreaker) {
  const seen: { outcome: string; error?: unknown }[] = [];
  b.on('success', () => seen.push({ outcome: 'success' }));
  b.on('failure', ({ error }) => seen.push({ outcome: 'failure', error }));
  b.on('ignored', () => seen.push({ outcome: 'ignored' }));
  return seen;
}

async function rejection(promise: PromiseLike<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

function apiError(statusCode: number, headers: Record<string, string> = {}) {
  return new APICallError({
    message: `answered ${statusCode}`,
    url: 'https://api.example/v1',
    requestBodyValues: {},
    statusCode,
    responseHeaders: headers,
  });
}

const usage = {
  inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 2, text: 2, reasoning: 0 },
};
const finish: LanguageModelV3StreamPart = {
  type: 'finish',
  finishReason: { unified: 'stop', raw: 'stop' },
  usage,
};

function partsStream(parts: LanguageModelV3StreamPart[], stallAfter?: number) {
  let index = 0;
  return new ReadableStream<LanguageModelV3StreamPart>({
    pull(controller) {
      if (stallAfter !== undefined && index >= stallAfter) return new Promise<void>(() => {});
      const part = parts[index++];
      if (part === undefined) controller.close();
      else controller.enqueue(part);
    },
  });
}

const textParts = (text: string): LanguageModelV3StreamPart[] => [
  { type: 'stream-start', warnings: [] },
  { type: 'text-start', id: 't' },
  { type: 'text-delta', id: 't', delta: text },
  { type: 'text-end', id: 't' },
  finish,
];

describe('breakerMiddleware over ai/test mock models', () => {
  it('counts APICallError 5xx as failures, ignores a 400, and rejects without calling the model once open', async () => {
    const b = breaker({ failMax: 2 });
    const seen = outcomes(b);
    const errors = [apiError(400), apiError(500), apiError(503)];
    const mock = new MockLanguageModelV3({
      doGenerate: async () => {
        throw errors.shift();
      },
    });
    const model = wrapLanguageModel({ model: mock, middleware: breakerMiddleware(b) });
    for (let i = 0; i < 3; i++)
      await rejection(generateText({ model, prompt: 'hi', maxRetries: 0 }));
    expect(seen.map((s) => s.outcome)).toEqual(['ignored', 'failure', 'failure']);
    expect(b.state).toBe('open');
    const error = await rejection(generateText({ model, prompt: 'hi' }));
    expect(error).toBeInstanceOf(CircuitBreakerError);
    expect(mock.doGenerateCalls).toHaveLength(3);
  });

  it('counts a stream a success only at its end, and an error part as a failure', async () => {
    const b = breaker();
    const seen = outcomes(b);
    const good = textParts('fine');
    const broken: LanguageModelV3StreamPart[] = [
      ...good.slice(0, 3),
      { type: 'error', error: apiError(500) },
      finish,
    ];
    const streams = [partsStream(good), partsStream(broken)];
    const mock = new MockLanguageModelV3({
      doStream: async () => ({
        stream: streams.shift() as ReadableStream<LanguageModelV3StreamPart>,
      }),
    });
    const model = wrapLanguageModel({ model: mock, middleware: breakerMiddleware(b) });
    const ok = streamText({ model, prompt: 'hi' });
    const reader = ok.textStream[Symbol.asyncIterator]();
    expect((await reader.next()).value).toBe('fine');
    expect(seen).toEqual([]);
    expect((await reader.next()).done).toBe(true);
    expect(seen.map((s) => s.outcome)).toEqual(['success']);

    const errorsSeen: unknown[] = [];
    const bad = streamText({
      model,
      prompt: 'hi',
      onError: ({ error }) => {
        errorsSeen.push(error);
      },
    });
    await bad.consumeStream();
    expect(seen.map((s) => s.outcome)).toEqual(['success', 'failure']);
    expect(seen[1]?.error).toMatchObject({ statusCode: 500 });
    expect(errorsSeen).toHaveLength(1);
  });

  it('counts the AI SDK’s own chunk timeout (a TimeoutError) as a failure', async () => {
    const b = breaker();
    const seen = outcomes(b);
    const mock = new MockLanguageModelV3({
      doStream: async () => ({ stream: partsStream(textParts('stalls'), 3) }),
    });
    const model = wrapLanguageModel({ model: mock, middleware: breakerMiddleware(b) });
    const result = streamText({
      model,
      prompt: 'hi',
      timeout: { chunkMs: 200 },
      onError: () => {},
    });
    await result.consumeStream();
    expect(seen.map((s) => s.outcome)).toEqual(['failure']);
    expect(seen[0]?.error).toMatchObject({ name: 'TimeoutError' });
  });

  it('ignores a stream the caller aborts', async () => {
    const b = breaker();
    const seen = outcomes(b);
    const mock = new MockLanguageModelV3({
      doStream: async () => ({ stream: partsStream(textParts('stalls'), 3) }),
    });
    const model = wrapLanguageModel({ model: mock, middleware: breakerMiddleware(b) });
    const controller = new AbortController();
    const result = streamText({ model, prompt: 'hi', abortSignal: controller.signal });
    const reader = result.textStream[Symbol.asyncIterator]();
    expect((await reader.next()).value).toBe('stalls');
    controller.abort();
    await rejection(result.text);
    expect(seen.map((s) => s.outcome)).toEqual(['ignored']);
  });

  it('names a bad option', () => {
    expect(() => breakerMiddleware(breaker(), { classify: 1 as never })).toThrow(
      /option classify must be a function, got 1/,
    );
    expect(() => breakerMiddleware(breaker(), { firstChunkTimeout: -5 })).toThrow(
      /breakerMiddleware\(\) option firstChunkTimeout/,
    );
  });
});

describe('breakerMiddleware over the real OpenAI and Anthropic providers', () => {
  const openai = () => createOpenAI({ apiKey: 'k', baseURL: upstream.baseURL });
  const anthropic = () => createAnthropic({ apiKey: 'k', baseURL: upstream.baseURL });

  it('trips on 500s; once open the provider sends nothing', async () => {
    const b = breaker({ failMax: 2 });
    const model = wrapLanguageModel({
      model: openai().chat('gpt-a'),
      middleware: breakerMiddleware(b),
    });
    upstream.always(failWith(500));
    for (let i = 0; i < 2; i++)
      await rejection(generateText({ model, prompt: 'hi', maxRetries: 0 }));
    expect(b.state).toBe('open');
    const count = upstream.requests.chat;
    // The AI SDK's retries (two by default) do not retry a rejection of the circuit.
    expect(await rejection(generateText({ model, prompt: 'hi' }))).toBeInstanceOf(
      CircuitBreakerError,
    );
    expect(upstream.requests.chat).toBe(count);
  });

  it('opens for the time a 429’s retry-after asks, read from the APICallError', async () => {
    const b = breaker({ retryAfter: llmRetryAfter, resetTimeout: 1_000 });
    const model = wrapLanguageModel({
      model: anthropic()('claude-a'),
      middleware: breakerMiddleware(b),
    });
    upstream.next(rateLimited(90));
    await rejection(generateText({ model, prompt: 'hi', maxRetries: 0, maxOutputTokens: 64 }));
    expect(b.state).toBe('open');
    const error = await rejection(generateText({ model, prompt: 'hi', maxOutputTokens: 64 }));
    expect((error as CircuitBreakerError).retryAfterMs).toBeGreaterThan(60_000);
  });

  it('counts a stream cut mid-way as a failure', async () => {
    const b = breaker();
    const seen = outcomes(b);
    const model = wrapLanguageModel({
      model: anthropic()('claude-a'),
      middleware: breakerMiddleware(b),
    });
    upstream.next({ kind: 'cut', after: 2 });
    const result = streamText({ model, prompt: 'hi', maxOutputTokens: 64, onError: () => {} });
    await result.consumeStream();
    expect(seen.map((s) => s.outcome)).toEqual(['failure']);
  });

  it('fails a stream stalled before its first chunk on firstChunkTimeout, and one stalled between chunks on chunkTimeout', async () => {
    const b = breaker();
    const seen = outcomes(b);
    // One deadline each, so that a loaded machine's slow first chunk cannot breach the other.
    const [firstChunk, betweenChunks] = [{ firstChunkTimeout: 100 }, { chunkTimeout: 500 }].map(
      (rules) =>
        wrapLanguageModel({
          model: openai().responses('gpt-a'),
          middleware: breakerMiddleware(b, rules),
        }),
    ) as [LanguageModelV3, LanguageModelV3];
    upstream.next({ kind: 'stall', after: 0 }, 1, 'responses');
    upstream.next({ kind: 'stall', after: 2 }, 1, 'responses');
    const errors: unknown[] = [];
    const onError = ({ error }: { error: unknown }) => {
      errors.push(error);
    };
    await streamText({ model: firstChunk, prompt: 'hi', onError }).consumeStream();
    const second = streamText({ model: betweenChunks, prompt: 'hi', onError });
    // The stall reaches the consumer as an error part or a thrown error, as the provider's
    // stream reports its abort; either way after the text sent before it.
    let text = '';
    await (async () => {
      for await (const part of second.fullStream) if (part.type === 'text-delta') text += part.text;
    })().catch(() => undefined);
    expect(seen.map((s) => s.outcome)).toEqual(['failure', 'failure']);
    expect(seen[0]?.error).toBeInstanceOf(FirstChunkTimeoutError);
    expect(seen[1]?.error).toBeInstanceOf(ChunkTimeoutError);
    expect(text).toBe(upstream.pieces.slice(0, 2).join(''));
    expect(errors[0]).toBeInstanceOf(FirstChunkTimeoutError);
  });

  it('recovers through a probe once the upstream is back', async () => {
    // The probe holds its slot while it streams: a lease of resetTimeout (50 ms) would lapse.
    const b = breaker({ failMax: 1, resetTimeout: 50, successThreshold: 1, probeLease: 30_000 });
    const model = wrapLanguageModel({
      model: openai().chat('gpt-a'),
      middleware: breakerMiddleware(b),
    });
    upstream.next(failWith(502));
    await rejection(generateText({ model, prompt: 'hi', maxRetries: 0 }));
    expect(b.state).toBe('open');
    await new Promise<void>((resolve) => {
      const off = b.on('stateChange', ({ to }) => {
        if (to === 'halfOpen') {
          off();
          resolve();
        }
      });
    });
    const closed = new Promise<void>((resolve) => {
      b.on('stateChange', ({ to }) => to === 'closed' && resolve());
    });
    const result = streamText({ model, prompt: 'hi' });
    expect(await result.text).toBe(upstream.pieces.join(''));
    // The probe's success is counted when the stream's end is read, which may come just after
    // the SDK resolved the text on the finish part.
    await closed;
  });
});
