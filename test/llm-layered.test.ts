import { createOpenAI } from '@ai-sdk/openai';
import { generateText, wrapLanguageModel } from 'ai';
import { CircuitBreaker } from 'statebreaker';
import { breakerMiddleware, failoverModel } from 'statebreaker/ai';
import { breakerFetch, llmClassify } from 'statebreaker/llm';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { type FakeLlmServer, failWith, startFakeLlmServer } from './support/fake-llm-server.js';

// breakerMiddleware on a model and breakerFetch on its provider, over one breaker (or a
// failoverModel whose target's provider has breakerFetch on the target's breaker): the inner
// layer joins the outer one's attempt, so one request counts once and a probe is one probe.

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
function breaker(options: ConstructorParameters<typeof CircuitBreaker>[1] = {}) {
  const created = new CircuitBreaker(`layered-${++unique}`, { classify: llmClassify, ...options });
  breakers.push(created);
  return created;
}

function layered(b: CircuitBreaker) {
  const provider = createOpenAI({ apiKey: 'k', baseURL: upstream.baseURL, fetch: breakerFetch(b) });
  return wrapLanguageModel({ model: provider.chat('gpt-test'), middleware: breakerMiddleware(b) });
}

it('one upstream 500 counts one failure', async () => {
  const b = breaker({ failMax: 10 });
  let failures = 0;
  b.on('failure', () => failures++);
  upstream.next(failWith(500));
  const before = upstream.requests.chat;
  await generateText({ model: layered(b), prompt: 'hi', maxRetries: 0 }).catch(() => undefined);
  expect({ requests: upstream.requests.chat - before, failures }).toEqual({
    requests: 1,
    failures: 1,
  });
});

it('a healthy upstream closes a half-open circuit through one probe', async () => {
  const b = breaker({ failMax: 1, resetTimeout: 100, successThreshold: 1 });
  upstream.next(failWith(500));
  await generateText({ model: layered(b), prompt: 'hi', maxRetries: 0 }).catch(() => undefined);
  expect(b.state).toBe('open');
  await new Promise((resolve) => setTimeout(resolve, 250));
  const before = upstream.requests.chat;
  const outcome = await generateText({ model: layered(b), prompt: 'hi', maxRetries: 0 }).then(
    () => 'answered',
    (e: Error) => e.message,
  );
  expect({ outcome, reached: upstream.requests.chat - before, state: b.state }).toEqual({
    outcome: 'answered',
    reached: 1,
    state: 'closed',
  });
});

it("failoverModel over a provider with breakerFetch on the target's breaker counts once", async () => {
  const b = breaker({ failMax: 10 });
  const spare = breaker();
  let failures = 0;
  b.on('failure', () => failures++);
  const provider = createOpenAI({ apiKey: 'k', baseURL: upstream.baseURL, fetch: breakerFetch(b) });
  const model = failoverModel([
    { model: provider.chat('gpt-primary'), breaker: b },
    {
      model: createOpenAI({ apiKey: 'k', baseURL: upstream.baseURL }).chat('gpt-spare'),
      breaker: spare,
    },
  ]);
  upstream.next(failWith(500));
  const { text } = await generateText({ model, prompt: 'hi', maxRetries: 0 });
  expect({ text, failures }).toEqual({ text: upstream.pieces.join(''), failures: 1 });
});
