import { createOpenAI } from '@ai-sdk/openai';
import { streamText, wrapLanguageModel } from 'ai';
import OpenAI from 'openai';
import { type BreakerOptions, CircuitBreaker } from 'statebreaker';
import { breakerMiddleware } from 'statebreaker/ai';
import { breakerFetch, llmClassify } from 'statebreaker/llm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeLlmServer, startFakeLlmServer } from './support/fake-llm-server.js';

// Healthy streams that last longer than the breaker's whole-call `timeout` (sized for JSON
// answers) and longer than a probe's lease, through breakerFetch and breakerMiddleware: the
// stream's own deadlines judge it, never the call's.

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
/** A breaker and what it counted, in order. */
function watched(options: BreakerOptions) {
  const breaker = new CircuitBreaker(`long-${++unique}`, { classify: llmClassify, ...options });
  breakers.push(breaker);
  const counted: string[] = [];
  breaker.on('success', () => counted.push('success'));
  breaker.on('failure', ({ error }) => counted.push(`failure:${(error as Error).name}`));
  breaker.on('ignored', () => counted.push('ignored'));
  return { breaker, counted };
}

// Five pieces 150 ms apart: about 0.75 s of stream.
const SLOW = { kind: 'ok', gapMs: 150 } as const;

async function streamWithOpenAi(breaker: CircuitBreaker): Promise<string> {
  const client = new OpenAI({
    apiKey: 'k',
    baseURL: upstream.baseURL,
    maxRetries: 0,
    fetch: breakerFetch(breaker),
  });
  const stream = await client.chat.completions.create({
    model: 'gpt-test',
    messages: [{ role: 'user', content: 'hi' }],
    stream: true,
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  return text;
}

async function streamWithAiSdk(breaker: CircuitBreaker): Promise<string> {
  const model = wrapLanguageModel({
    model: createOpenAI({ apiKey: 'k', baseURL: upstream.baseURL }).chat('gpt-test'),
    middleware: breakerMiddleware(breaker),
  });
  const errors: unknown[] = [];
  const result = streamText({
    model,
    prompt: 'hi',
    onError: ({ error }) => void errors.push(error),
  });
  let text = '';
  for await (const part of result.textStream) text += part;
  expect(errors).toEqual([]);
  return text;
}

describe("a healthy stream longer than the breaker's timeout", () => {
  it('breakerFetch: read whole, a success', async () => {
    const { breaker, counted } = watched({ timeout: 300 });
    upstream.next(SLOW);
    expect(await streamWithOpenAi(breaker)).toBe(upstream.pieces.join(''));
    expect(counted).toEqual(['success']);
  });

  it('breakerMiddleware: read whole, a success', async () => {
    const { breaker, counted } = watched({ timeout: 300 });
    upstream.next(SLOW);
    expect(await streamWithAiSdk(breaker)).toBe(upstream.pieces.join(''));
    expect(counted).toEqual(['success']);
  });
});

describe('a healthy probe stream longer than the probe lease', () => {
  /** A half-open breaker whose probe lease (its resetTimeout) is 500 ms, and its transitions. */
  async function halfOpen() {
    const { breaker } = watched({ failMax: 1, resetTimeout: 500, successThreshold: 1 });
    const changes: string[] = [];
    breaker.on('stateChange', ({ to, reason }) => changes.push(`${to}:${reason}`));
    await breaker
      .call(() => {
        throw new Error('down');
      })
      .catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 650));
    expect(breaker.state).toBe('halfOpen');
    return { breaker, changes };
  }

  it('breakerFetch: keeps its lease while chunks flow, and closes the circuit', async () => {
    const { breaker, changes } = await halfOpen();
    upstream.next(SLOW);
    expect(await streamWithOpenAi(breaker)).toBe(upstream.pieces.join(''));
    expect(changes.filter((c) => c.includes('probeLeaseExpired'))).toEqual([]);
    expect(breaker.state).toBe('closed');
  });

  it('breakerMiddleware: keeps its lease while chunks flow, and closes the circuit', async () => {
    const { breaker, changes } = await halfOpen();
    upstream.next(SLOW);
    expect(await streamWithAiSdk(breaker)).toBe(upstream.pieces.join(''));
    expect(changes.filter((c) => c.includes('probeLeaseExpired'))).toEqual([]);
    expect(breaker.state).toBe('closed');
  });
});
