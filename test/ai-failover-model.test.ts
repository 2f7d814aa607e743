import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { APICallError, type LanguageModelV3StreamPart } from '@ai-sdk/provider';
import { generateText, streamText } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { Redis } from 'ioredis';
import {
  AllTargetsFailedError,
  CircuitBreaker,
  FirstChunkTimeoutError,
  getCircuitBreaker,
  MemoryStore,
} from 'statebreaker';
import { failoverModel, upstreamName } from 'statebreaker/ai';
import { RedisStore } from 'statebreaker/redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeLlmServer, failWith, startFakeLlmServer } from './support/fake-llm-server.js';
import { RedisServer } from './support/redis-server.js';

// failoverModel under the real generateText and streamText of `ai` 6: over ai/test mock models,
// and over the real OpenAI and Anthropic providers talking to a local fake server.

let upstream: FakeLlmServer;
const cleanups: (() => unknown)[] = [];
beforeAll(async () => {
  upstream = await startFakeLlmServer();
});
afterEach(() => upstream.recover());
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await upstream.close();
});

let unique = 0;
/** A model id no other test uses: breakers are got by name from the process's registry. */
const id = (label: string) => `${label}-${++unique}`;

function providers() {
  return {
    openai: createOpenAI({ apiKey: 'k', baseURL: upstream.baseURL }),
    anthropic: createAnthropic({ apiKey: 'k', baseURL: upstream.baseURL }),
  };
}

const anthropicAt = (baseURL: string) => createAnthropic({ apiKey: 'k', baseURL })('claude-x');

function dispose(model: { route: { targets: ReadonlyArray<{ breaker: CircuitBreaker }> } }) {
  cleanups.push(() => {
    for (const { breaker } of model.route.targets) breaker.dispose();
  });
}

describe('failoverModel over the real providers', () => {
  it('names each breaker after its upstream: openai.chat and openai.responses of one model share one', () => {
    const openai = createOpenAI({ apiKey: 'k' });
    const anthropic = createAnthropic({ apiKey: 'k' });
    const gpt = id('gpt');
    expect(upstreamName(openai.chat(gpt))).toBe(`openai:${gpt}`);
    expect(upstreamName(openai.responses(gpt))).toBe(`openai:${gpt}`);
    expect(upstreamName(anthropic('claude-x'))).toBe('anthropic:claude-x');
    const store = new MemoryStore();
    const a = failoverModel([openai.chat(gpt)], { store });
    const b = failoverModel([openai.responses(gpt)], { store });
    dispose(a);
    expect(a.route.targets[0]?.breaker).toBe(b.route.targets[0]?.breaker);
    expect(a.route.targets[0]?.breaker.name).toBe(`openai:${gpt}`);
  });

  it('names the host of a provider given another base URL: one region down leaves the other up', async () => {
    const other = await startFakeLlmServer();
    cleanups.push(() => other.close());
    const gpt = id('gpt');
    const here = createOpenAI({ apiKey: 'k', baseURL: upstream.baseURL }).chat(gpt);
    const there = createOpenAI({ apiKey: 'k', baseURL: other.baseURL }).chat(gpt);
    expect(upstreamName(here)).toBe(`openai:${gpt}@${new URL(upstream.url).host}`);
    expect(upstreamName(anthropicAt(other.baseURL))).toBe(
      `anthropic:claude-x@${new URL(other.url).host}`,
    );
    const hereModel = failoverModel([here], { breaker: { failMax: 1 } });
    const thereModel = failoverModel([there], { breaker: { failMax: 1 } });
    dispose(hereModel);
    dispose(thereModel);
    upstream.next(failWith(503));
    await generateText({ model: hereModel, prompt: 'hi', maxRetries: 0 }).catch(() => undefined);
    const { text } = await generateText({ model: thereModel, prompt: 'hi', maxRetries: 0 });
    expect({ text, reached: other.total() }).toEqual({ text: other.pieces.join(''), reached: 1 });
  });

  it('answers from the next model when the first answers 500, and skips the first once its circuit is open', async () => {
    const { openai, anthropic } = providers();
    const model = failoverModel([openai.chat(id('gpt')), anthropic(id('claude'))], {
      store: new MemoryStore(),
      breaker: { failMax: 2 },
    });
    dispose(model);
    upstream.always(failWith(500), 'chat');
    const chatBefore = upstream.requests.chat;
    for (let i = 0; i < 2; i++) {
      const { text } = await generateText({ model, prompt: 'hi', maxRetries: 0 });
      expect(text).toBe(upstream.pieces.join(''));
    }
    expect(upstream.requests.chat - chatBefore).toBe(2);
    expect(model.route.targets[0]?.breaker.state).toBe('open');
    const failovers: string[] = [];
    model.route.on('failover', ({ from, reason }) => failovers.push(`${from}:${reason}`));
    const result = streamText({ model, prompt: 'hi' });
    expect(await result.text).toBe(upstream.pieces.join(''));
    expect(upstream.requests.chat - chatBefore).toBe(2);
    expect(failovers).toEqual([`${model.route.targets[0]?.breaker.name}:rejected`]);
  });

  it('throws a 400 to the caller without trying the next model', async () => {
    const { openai, anthropic } = providers();
    const model = failoverModel([openai.responses(id('gpt')), anthropic(id('claude'))]);
    dispose(model);
    upstream.next(failWith(400), 1, 'responses');
    const before = upstream.requests.messages;
    const error = await generateText({ model, prompt: 'hi', maxRetries: 0 }).catch((e) => e);
    expect(APICallError.isInstance(error)).toBe(true);
    expect((error as APICallError).statusCode).toBe(400);
    expect(upstream.requests.messages).toBe(before);
  });

  it('fails a stream over when the first model stalls before its first chunk', async () => {
    const { openai, anthropic } = providers();
    const model = failoverModel([openai.responses(id('gpt')), anthropic(id('claude'))], {
      firstChunkTimeout: 500,
    });
    dispose(model);
    upstream.next({ kind: 'stall', after: 0 }, 1, 'responses');
    const failures: unknown[] = [];
    model.route.targets[0]?.breaker.on('failure', ({ error }) => failures.push(error));
    const result = streamText({ model, prompt: 'hi', maxOutputTokens: 64 });
    expect(await result.text).toBe(upstream.pieces.join(''));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toBeInstanceOf(FirstChunkTimeoutError);
  });

  it("stops at the caller's deadline: no failover, no failure counted on any model", async () => {
    const { openai, anthropic } = providers();
    for (const streamed of [false, true]) {
      const model = failoverModel([openai.chat(id('gpt')), anthropic(id('claude'))]);
      dispose(model);
      upstream.next({ kind: 'stall', after: 0 }, 1, 'chat');
      const counted: string[] = [];
      for (const { breaker } of model.route.targets) {
        breaker.on('failure', () => counted.push(`${breaker.name}: failure`));
      }
      const failovers: string[] = [];
      model.route.on('failover', (e) => failovers.push(`${e.from} > ${e.to}`));
      const before = upstream.requests.messages;
      const abortSignal = AbortSignal.timeout(300);
      if (streamed) {
        const result = streamText({ model, prompt: 'hi', abortSignal, onError: () => {} });
        await result.consumeStream();
      } else {
        await generateText({ model, prompt: 'hi', maxRetries: 0, abortSignal }).catch(
          () => undefined,
        );
      }
      expect({
        streamed,
        counted,
        failovers,
        reached: upstream.requests.messages - before,
      }).toEqual({ streamed, counted: [], failovers: [], reached: 0 });
    }
  });

  it('fails a stream over when the first model’s stream breaks before the answer, and not after', async () => {
    const { openai, anthropic } = providers();
    const model = failoverModel([openai.chat(id('gpt')), anthropic(id('claude'))]);
    dispose(model);
    const messages = upstream.requests.messages;
    // Cut after the head: the stream broke before any text.
    upstream.next({ kind: 'cut', after: 0 }, 1, 'chat');
    const first = streamText({ model, prompt: 'hi', maxOutputTokens: 64 });
    expect(await first.text).toBe(upstream.pieces.join(''));
    expect(upstream.requests.messages).toBe(messages + 1);

    // Cut after two pieces: the text reached the caller, so the error does too.
    upstream.next({ kind: 'cut', after: 2 }, 1, 'chat');
    const errors: unknown[] = [];
    const second = streamText({
      model,
      prompt: 'hi',
      onError: ({ error }) => {
        errors.push(error);
      },
    });
    let text = '';
    for await (const part of second.fullStream) if (part.type === 'text-delta') text += part.text;
    expect(text).toBe(upstream.pieces.slice(0, 2).join(''));
    expect(errors).toHaveLength(1);
    expect(upstream.requests.messages).toBe(messages + 1);
  });

  it('rejects with AllTargetsFailedError when every model fails, which the AI SDK does not retry', async () => {
    const { openai, anthropic } = providers();
    const model = failoverModel([openai.chat(id('gpt')), anthropic(id('claude'))]);
    dispose(model);
    upstream.always(failWith(503));
    const before = upstream.total();
    const error = await generateText({ model, prompt: 'hi', maxOutputTokens: 64 }).catch((e) => e);
    expect(error).toBeInstanceOf(AllTargetsFailedError);
    expect(upstream.total() - before).toBe(2);
  });
});

describe('failoverModel over ai/test mock models', () => {
  const usage = {
    inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 },
    outputTokens: { total: 1, text: 1, reasoning: 0 },
  };
  const answer = (text: string) =>
    new MockLanguageModelV3({
      provider: 'mock.chat',
      modelId: id('answers'),
      doGenerate: async () => ({
        content: [{ type: 'text', text }],
        finishReason: { unified: 'stop', raw: 'stop' },
        usage,
        warnings: [],
      }),
      doStream: async () => ({
        stream: new ReadableStream<LanguageModelV3StreamPart>({
          start(controller) {
            controller.enqueue({ type: 'stream-start', warnings: [] });
            controller.enqueue({ type: 'text-start', id: 't' });
            controller.enqueue({ type: 'text-delta', id: 't', delta: text });
            controller.enqueue({ type: 'text-end', id: 't' });
            controller.enqueue({
              type: 'finish',
              finishReason: { unified: 'stop', raw: 'stop' },
              usage,
            });
            controller.close();
          },
        }),
      }),
    });
  const erroring = () =>
    new MockLanguageModelV3({
      provider: 'mock.chat',
      modelId: id('errors'),
      doStream: async () => ({
        stream: new ReadableStream<LanguageModelV3StreamPart>({
          start(controller) {
            controller.enqueue({ type: 'stream-start', warnings: [] });
            controller.enqueue({ type: 'error', error: { type: 'server_error', message: 'x' } });
            controller.close();
          },
        }),
      }),
    });

  it('takes given breakers, and fails over on an error part before the answer', async () => {
    const first = erroring();
    const breaker = getCircuitBreaker(id('given'));
    cleanups.push(() => breaker.dispose());
    const model = failoverModel([{ model: first, breaker }, answer('from the second')]);
    dispose(model);
    expect(model.route.targets[0]?.breaker).toBe(breaker);
    const result = streamText({ model, prompt: 'hi' });
    expect(await result.text).toBe('from the second');
    expect(first.doStreamCalls).toHaveLength(1);
    expect(breaker.context.failures).toBe(1);
    const { text } = await generateText({
      model: failoverModel([answer('generated')]),
      prompt: 'x',
    });
    expect(text).toBe('generated');
  });

  it('names a bad model or option', () => {
    expect(() => failoverModel([])).toThrow(/non-empty array of models/);
    expect(() => failoverModel(['openai/gpt-5' as never])).toThrow(
      /model 0 must be a language model object/,
    );
    const v2 = { ...answer('x'), specificationVersion: 'v2' };
    expect(() => failoverModel([v2 as never])).toThrow(/specificationVersion "v2"/);
    expect(() => failoverModel([answer('x')], { chunkTimeout: Number.NaN })).toThrow(
      /failoverModel\(\) option chunkTimeout/,
    );
  });
});

describe('failoverModel on a fleet sharing Redis', () => {
  it('one process’s trip sends the other’s next call straight to the next model', async () => {
    const redis = await RedisServer.start();
    cleanups.push(() => redis.stop());
    const fleet = [0, 1].map(() => {
      const client = new Redis({ path: redis.path });
      const store = new RedisStore(client);
      cleanups.push(() => client.disconnect());
      cleanups.push(() => store.close());
      return store;
    });
    const gpt = id('gpt');
    const claude = id('claude');
    // Each "process" has its own registry in real life; here each gets its own breakers.
    const models = fleet.map((store) => {
      const { openai, anthropic } = providers();
      return failoverModel([
        {
          model: openai.chat(gpt),
          breaker: new CircuitBreaker(`openai:${gpt}`, { store, failMax: 1 }),
        },
        { model: anthropic(claude), breaker: new CircuitBreaker(`anthropic:${claude}`, { store }) },
      ]);
    });
    for (const model of models) dispose(model);
    const [here, there] = models as [(typeof models)[0], (typeof models)[0]];
    upstream.always(failWith(500), 'chat');
    const before = upstream.requests.chat;
    expect((await generateText({ model: there, prompt: 'hi', maxRetries: 0 })).text).toBe(
      upstream.pieces.join(''),
    );
    expect(upstream.requests.chat).toBe(before + 1);
    const primary = here.route.targets[0]?.breaker as CircuitBreaker;
    await new Promise<void>((resolve) => {
      if (primary.state === 'open') resolve();
      else primary.on('stateChange', ({ to }) => to === 'open' && resolve());
    });
    const chat = upstream.requests.chat;
    const result = streamText({ model: here, prompt: 'hi', maxOutputTokens: 64 });
    expect(await result.text).toBe(upstream.pieces.join(''));
    expect(upstream.requests.chat).toBe(chat);
  });
});
