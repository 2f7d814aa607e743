import type { CircuitBreaker } from 'statebreaker';
import { llmClassify } from 'statebreaker/llm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flush, simulatedBreaker } from './support/fake-upstream.js';
import {
  answerAsAsked,
  type HttpUpstream,
  respond,
  startHttpUpstream,
} from './support/http-upstream.js';
import { Anthropic, OpenAI, openAIBody } from './support/llm-sdk-errors.js';

// llmClassify as a real breaker's classify on a MemoryStore, with the upstream's answers coming
// from a real HTTP server: what the presets are for is which answers open the circuit.

let upstream: HttpUpstream;
beforeAll(async () => {
  upstream = await startHttpUpstream(answerAsAsked);
});
afterAll(() => upstream.close());

/** A fetch-based completion that throws non-2xx answers the way applications do. */
async function complete(status: number): Promise<string> {
  const response = await respond(upstream, status);
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`LLM answered ${status}`, { cause: response });
  }
  return response.text();
}

async function callTimes(breaker: CircuitBreaker, times: number, fn: () => Promise<unknown>) {
  for (let i = 0; i < times; i++) await breaker.call(fn).catch(() => undefined);
  await flush();
}

const openAI401 = () =>
  Promise.reject(
    OpenAI.APIError.generate(
      401,
      openAIBody('Incorrect API key', 'invalid_request_error', 'invalid_api_key'),
      undefined,
      new Headers(),
    ),
  );
const anthropic529 = () =>
  Promise.reject(
    Anthropic.APIError.generate(529, Anthropic.body('overloaded_error'), undefined, new Headers()),
  );

describe('a breaker with classify: llmClassify', () => {
  it('never opens on a storm of 401s and 403s', async () => {
    const { breaker } = simulatedBreaker({ classify: llmClassify });
    await callTimes(breaker, 20, () => complete(401));
    await callTimes(breaker, 20, () => complete(403));
    await callTimes(breaker, 20, openAI401);
    expect(breaker.state).toBe('closed');
    expect(breaker.context.failures).toBe(0);
    breaker.dispose();
  });

  it('opens on 429s, and a 401 storm between them neither counts nor resets the count', async () => {
    const { breaker } = simulatedBreaker({ classify: llmClassify });
    await callTimes(breaker, 3, () => complete(429));
    await callTimes(breaker, 30, () => complete(401));
    expect(breaker.state).toBe('closed');
    expect(breaker.context.failures).toBe(3);
    await callTimes(breaker, 2, () => complete(429));
    expect(breaker.state).toBe('open');
    breaker.dispose();
  });

  it('opens on 503s and on Anthropic 529 overloaded errors', async () => {
    const a = simulatedBreaker({ classify: llmClassify }, 'openai');
    await callTimes(a.breaker, 5, () => complete(503));
    expect(a.breaker.state).toBe('open');
    const b = simulatedBreaker({ classify: llmClassify }, 'anthropic');
    await callTimes(b.breaker, 5, anthropic529);
    expect(b.breaker.state).toBe('open');
    a.breaker.dispose();
    b.breaker.dispose();
  });

  it('lets a half-open probe answered 400 free its slot without closing or reopening', async () => {
    const { breaker, clock } = simulatedBreaker({ classify: llmClassify, successThreshold: 1 });
    await callTimes(breaker, 5, () => complete(500));
    expect(breaker.state).toBe('open');
    clock.increment(breaker.config.resetTimeout);
    await callTimes(breaker, 1, () => complete(400));
    expect(breaker.state).toBe('halfOpen');
    await expect(breaker.call(() => complete(200))).resolves.toContain('as asked');
    expect(breaker.state).toBe('closed');
    breaker.dispose();
  });
});
