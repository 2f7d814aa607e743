import OpenAI from 'openai';
import { CircuitBreaker } from 'statebreaker';
import { breakerFetch, llmClassify } from 'statebreaker/llm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type FakeLlmServer, startFakeLlmServer } from './support/fake-llm-server.js';

// breakerFetch hands over a body that is neither JSON nor an event stream (speech audio, a
// file) as it comes, instead of reading it whole first: the client plays audio while it
// streams, and the breaker's timeout does not bound the download. Its end is the success.

let upstream: FakeLlmServer;
const breakers: CircuitBreaker[] = [];
beforeAll(async () => {
  upstream = await startFakeLlmServer();
});
afterAll(async () => {
  for (const b of breakers) b.dispose();
  await upstream.close();
});

it('hands over streamed speech before its end, and counts a success at its end', async () => {
  const breaker = new CircuitBreaker('speech', { classify: llmClassify, timeout: 300 });
  breakers.push(breaker);
  const counted: string[] = [];
  breaker.on('success', () => counted.push('success'));
  breaker.on('failure', ({ error }) => counted.push(`failure:${(error as Error).name}`));
  const client = new OpenAI({
    apiKey: 'k',
    baseURL: upstream.baseURL,
    maxRetries: 0,
    fetch: breakerFetch(breaker),
  });
  // The server sends 1 KiB of audio, then holds the rest until released.
  const response = await client.audio.speech.create({
    model: 'tts-1',
    voice: 'alloy',
    input: 'hi',
  });
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const first = await reader.read();
  expect(first.value?.byteLength).toBe(1024);
  expect(counted).toEqual([]);
  // Longer than the breaker's timeout: a download is not a call's whole answer.
  await new Promise((resolve) => setTimeout(resolve, 500));
  upstream.releaseSpeech();
  let rest = 0;
  for (;;) {
    const next = await reader.read();
    if (next.done) break;
    rest += next.value.byteLength;
  }
  expect({ rest, counted }).toEqual({ rest: 1024, counted: ['success'] });
});
