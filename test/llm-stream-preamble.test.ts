import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import Anthropic from '@anthropic-ai/sdk';
import { streamText, wrapLanguageModel } from 'ai';
import { CircuitBreaker, failover } from 'statebreaker';
import { breakerMiddleware, failoverModel } from 'statebreaker/ai';
import { breakerFetch, llmClassify } from 'statebreaker/llm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sseCarriesAnswer } from '../src/llm/sse-preamble.js';
import { type FakeLlmServer, startFakeLlmServer } from './support/fake-llm-server.js';

// The events an upstream sends before the model's first token (Anthropic's message_start,
// content_block_start and ping; OpenAI Responses' response.created and the like) are not the
// answer's first chunk: a stall after them still breaches firstChunkTimeout and fails over.

let upstream: FakeLlmServer;
let spare: FakeLlmServer;
const cleanups: (() => unknown)[] = [];
beforeAll(async () => {
  [upstream, spare] = await Promise.all([startFakeLlmServer(), startFakeLlmServer()]);
});
afterEach(() => upstream.recover());
afterAll(async () => {
  for (const cleanup of cleanups) cleanup();
  await Promise.all([upstream.close(), spare.close()]);
});

const STALL_AFTER_PREAMBLE = { kind: 'stall', after: 0, preamble: true } as const;

let unique = 0;
function watched() {
  const breaker = new CircuitBreaker(`preamble-${++unique}`, { classify: llmClassify });
  cleanups.push(() => breaker.dispose());
  const counted: string[] = [];
  breaker.on('success', () => counted.push('success'));
  breaker.on('failure', ({ error }) => counted.push(`failure:${(error as Error).name}`));
  breaker.on('ignored', () => counted.push('ignored'));
  return { breaker, counted };
}

/** A caller that gives up after a while (ignored): the test's backstop, never its subject. */
function backstop() {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('backstop')), 5_000);
  cleanups.push(() => clearTimeout(timer));
  return controller.signal;
}

describe('a stream that stalls after its preamble, before the first token', () => {
  it('breakerMiddleware: breaches firstChunkTimeout', async () => {
    const { breaker, counted } = watched();
    upstream.next(STALL_AFTER_PREAMBLE, 1, 'messages');
    const model = wrapLanguageModel({
      model: createAnthropic({ apiKey: 'k', baseURL: upstream.baseURL })('claude-test'),
      middleware: breakerMiddleware(breaker, { firstChunkTimeout: 300 }),
    });
    const result = streamText({ model, prompt: 'hi', abortSignal: backstop(), onError: () => {} });
    await result.consumeStream();
    expect(counted).toEqual(['failure:FirstChunkTimeoutError']);
  });

  it('failoverModel: fails over to the next model', async () => {
    upstream.next(STALL_AFTER_PREAMBLE, 1, 'messages');
    const model = failoverModel(
      [
        createAnthropic({ apiKey: 'k', baseURL: upstream.baseURL })(`claude-${++unique}`),
        createOpenAI({ apiKey: 'k', baseURL: upstream.baseURL }).chat(`gpt-${++unique}`),
      ],
      { firstChunkTimeout: 300 },
    );
    cleanups.push(() => {
      for (const { breaker } of model.route.targets) breaker.dispose();
    });
    const result = streamText({ model, prompt: 'hi', abortSignal: backstop(), onError: () => {} });
    expect(await result.text).toBe(upstream.pieces.join(''));
  });

  it('breakerFetch under the Anthropic SDK: breaches firstChunkTimeout', async () => {
    const { breaker, counted } = watched();
    upstream.next(STALL_AFTER_PREAMBLE, 1, 'messages');
    const client = new Anthropic({
      apiKey: 'k',
      baseURL: upstream.url,
      maxRetries: 0,
      fetch: breakerFetch(breaker, { firstChunkTimeout: 300 }),
    });
    const error = await (async () => {
      const stream = await client.messages.create(
        {
          model: 'claude-test',
          max_tokens: 64,
          messages: [{ role: 'user', content: 'hi' }],
          stream: true,
        },
        { signal: backstop() },
      );
      for await (const _ of stream) {
        // read on
      }
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(counted).toEqual(['failure:FirstChunkTimeoutError']);
  });

  it('breakerFetch over a route of base URLs: fails over to the next', async () => {
    const first = watched();
    const second = watched();
    upstream.next(STALL_AFTER_PREAMBLE, 1, 'messages');
    const route = failover([
      { breaker: first.breaker, value: upstream.url },
      { breaker: second.breaker, value: spare.url },
    ]);
    const client = new Anthropic({
      apiKey: 'k',
      baseURL: upstream.url,
      maxRetries: 0,
      fetch: breakerFetch(route, { firstChunkTimeout: 300 }),
    });
    const stream = await client.messages.create(
      {
        model: 'claude-test',
        max_tokens: 64,
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
      },
      { signal: backstop() },
    );
    let text = '';
    for await (const event of stream) {
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') {
        text += event.delta.text;
      }
    }
    expect(text).toBe(spare.pieces.join(''));
    expect(first.counted).toEqual(['failure:FirstChunkTimeoutError']);
    expect(second.counted).toEqual(['success']);
  });
});

describe('sseCarriesAnswer', () => {
  const bytes = (text: string) => new TextEncoder().encode(text);
  it('does not count preamble events, comments or blank lines', () => {
    expect(
      sseCarriesAnswer(bytes('event: message_start\ndata: {}\n\nevent: ping\ndata: {}\n\n')),
    ).toBe(false);
    expect(sseCarriesAnswer(bytes('event: response.created\ndata: {}\n\n: keep-alive\n\n'))).toBe(
      false,
    );
  });
  it('counts an event of the answer, and an event without a name', () => {
    expect(
      sseCarriesAnswer(bytes('event: ping\ndata: {}\n\nevent: content_block_delta\ndata: {}\n\n')),
    ).toBe(true);
    expect(sseCarriesAnswer(bytes('data: {"choices":[]}\n\n'))).toBe(true);
  });
});
