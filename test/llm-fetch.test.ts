import Anthropic from '@anthropic-ai/sdk';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { ChunkTimeoutError, CircuitBreaker, FirstChunkTimeoutError, failover } from 'statebreaker';
import { breakerFetch, HttpStatusError, llmClassify, llmRetryAfter } from 'statebreaker/llm';
import { RedisStore } from 'statebreaker/redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type FakeLlmServer,
  failWith,
  rateLimited,
  startFakeLlmServer,
} from './support/fake-llm-server.js';
import { RedisServer } from './support/redis-server.js';

// breakerFetch under the real openai and @anthropic-ai/sdk clients, their own retries on,
// against a local server that speaks their APIs: what reaches the upstream is counted there.

let upstream: FakeLlmServer;
let redis: RedisServer;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  [upstream, redis] = await Promise.all([startFakeLlmServer(), RedisServer.start()]);
});
afterEach(() => upstream.recover());
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await upstream.close();
  await redis.stop();
});

let unique = 0;
const fresh = (label: string) => `${label}-${++unique}`;

function breaker(name: string, options: ConstructorParameters<typeof CircuitBreaker>[1] = {}) {
  const created = new CircuitBreaker(name, { classify: llmClassify, ...options });
  cleanups.push(() => created.dispose());
  return created;
}

/** A breaker of this name in another "process": its own Redis connection and store. */
function fleetBreaker(name: string, options: ConstructorParameters<typeof CircuitBreaker>[1] = {}) {
  const client = new Redis({ path: redis.path });
  const store = new RedisStore(client);
  cleanups.push(() => client.disconnect());
  cleanups.push(() => store.close());
  return breaker(name, { store, ...options });
}

const ask = { model: 'gpt-test', messages: [{ role: 'user' as const, content: 'hi' }] };
const askClaude = { model: 'claude-test', max_tokens: 64, ...{ messages: ask.messages } };

async function rejection(promise: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    return error as Record<string, unknown>;
  }
  throw new Error('expected a rejection');
}

/** `fetch` counting the SDK's calls of it: each retry of the SDK is one more. */
function counted(fetch: ReturnType<typeof breakerFetch>) {
  const counter = {
    calls: 0,
    fetch: (input: string | URL | Request, init?: RequestInit) => {
      counter.calls++;
      return fetch(input, init);
    },
  };
  return counter;
}

function until(predicate: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const poll = () => (predicate() ? resolve() : setTimeout(poll, 5));
    poll();
  });
}

describe('breakerFetch with the openai SDK', () => {
  it('counts each of the SDK’s retries; once another instance trips the circuit the SDK sends nothing and does not retry', async () => {
    const name = fresh('openai');
    const here = fleetBreaker(name, { failMax: 3 });
    const there = fleetBreaker(name, { failMax: 3 });
    const tripping = new OpenAI({
      apiKey: 'k',
      baseURL: upstream.baseURL,
      fetch: breakerFetch(there),
    });
    const sdkFetch = counted(breakerFetch(here));
    const client = new OpenAI({ apiKey: 'k', baseURL: upstream.baseURL, fetch: sdkFetch.fetch });
    upstream.always(failWith(500));

    // One call, three requests: the first and the SDK's two retries, each a counted failure.
    const first = await rejection(tripping.chat.completions.create(ask));
    expect(first.status).toBe(500);
    expect(upstream.requests.chat).toBe(3);
    expect(there.state).toBe('open');
    await until(() => here.state === 'open');

    const before = upstream.total();
    const error = await rejection(client.chat.completions.create(ask));
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(error.status).toBe(503);
    expect((error.error as Record<string, unknown>).code).toBe('circuit_open');
    const headers = error.headers as Headers;
    expect(headers.get('x-should-retry')).toBe('false');
    expect(headers.get('x-circuit-state')).toBe('open');
    expect(Number(headers.get('retry-after-ms'))).toBeGreaterThan(0);
    // The SDK did not retry (its default is two retries), and nothing reached the upstream.
    expect(sdkFetch.calls).toBe(1);
    expect(upstream.total()).toBe(before);
  });

  it('opens the circuit for the time a 429 asks, at once, on a breaker with retryAfter', async () => {
    const b = breaker(fresh('openai-429'), { retryAfter: llmRetryAfter, resetTimeout: 1_000 });
    const client = new OpenAI({
      apiKey: 'k',
      baseURL: upstream.baseURL,
      fetch: breakerFetch(b),
      maxRetries: 0,
    });
    upstream.next(rateLimited(120, 120_000));
    const failures: unknown[] = [];
    b.on('failure', ({ error }) => failures.push(error));
    const error = await rejection(client.chat.completions.create(ask));
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(b.state).toBe('open');
    expect(failures[0]).toBeInstanceOf(HttpStatusError);
    expect((failures[0] as HttpStatusError).status).toBe(429);

    const retrying = new OpenAI({ apiKey: 'k', baseURL: upstream.baseURL, fetch: breakerFetch(b) });
    const count = upstream.requests.chat;
    const rejected = await rejection(retrying.chat.completions.create(ask));
    expect(rejected.status).toBe(503);
    // Open for the 120 s asked, not the 1 s resetTimeout.
    expect(Number((rejected.headers as Headers).get('retry-after'))).toBeGreaterThan(100);
    expect(upstream.requests.chat).toBe(count);
  });

  it('ignores a 400: the SDK reads its error body, the circuit counts nothing', async () => {
    const b = breaker(fresh('openai-400'), { failMax: 1 });
    const client = new OpenAI({ apiKey: 'k', baseURL: upstream.baseURL, fetch: breakerFetch(b) });
    upstream.always(failWith(400));
    const error = await rejection(client.chat.completions.create(ask));
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(String(error.message)).toContain('fake upstream answers 400');
    expect(b.state).toBe('closed');
    expect(b.context.failures).toBe(0);
  });

  it('counts a stream as a success at its end, and a stream cut mid-way as a failure', async () => {
    const b = breaker(fresh('openai-stream'), { failMax: 2 });
    const client = new OpenAI({ apiKey: 'k', baseURL: upstream.baseURL, fetch: breakerFetch(b) });
    let text = '';
    for await (const chunk of await client.chat.completions.create({ ...ask, stream: true })) {
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(text).toBe(upstream.pieces.join(''));

    upstream.always({ kind: 'cut', after: 2 });
    const outcomes: string[] = [];
    b.on('failure', () => outcomes.push('failure'));
    b.on('success', () => outcomes.push('success'));
    const stream = await client.chat.completions.create({ ...ask, stream: true });
    const received: string[] = [];
    const error = await rejection(
      (async () => {
        for await (const chunk of stream) received.push(chunk.choices[0]?.delta.content ?? '');
      })(),
    );
    expect(error).toBeInstanceOf(Error);
    expect(received.join('')).toBe(upstream.pieces.slice(0, 2).join(''));
    expect(outcomes).toEqual(['failure']);
    expect(b.context.failures).toBe(1);
  });

  it('a stream stalled between chunks fails on chunkTimeout and is aborted', async () => {
    const b = breaker(fresh('openai-stall'));
    const client = new OpenAI({
      apiKey: 'k',
      baseURL: upstream.baseURL,
      fetch: breakerFetch(b, { chunkTimeout: 100 }),
    });
    upstream.next({ kind: 'stall', after: 2 });
    const failures: unknown[] = [];
    b.on('failure', ({ error }) => failures.push(error));
    const stream = await client.chat.completions.create({ ...ask, stream: true });
    const error = await rejection(
      (async () => {
        for await (const _ of stream);
      })(),
    );
    expect(failures).toHaveLength(1);
    expect(failures[0]).toBeInstanceOf(ChunkTimeoutError);
    expect(error).toBeInstanceOf(Error);
  });
});

describe('breakerFetch with the Anthropic SDK', () => {
  it('stops the SDK’s retries while open: one upstream request per counted failure, none after', async () => {
    const b = breaker(fresh('anthropic'), { failMax: 2 });
    const sdkFetch = counted(breakerFetch(b));
    const client = new Anthropic({ apiKey: 'k', baseURL: upstream.url, fetch: sdkFetch.fetch });
    upstream.always(failWith(529));
    const error = await rejection(client.messages.create(askClaude));
    // The first request and one retry trip the circuit; the SDK's second retry gets the 503.
    expect(upstream.requests.messages).toBe(2);
    expect(error.status).toBe(503);
    expect(sdkFetch.calls).toBe(3);
    expect(b.state).toBe('open');
    const again = await rejection(client.messages.create(askClaude));
    expect(again).toBeInstanceOf(Anthropic.InternalServerError);
    expect((again.error as { error: { type: string } }).error.type).toBe('circuit_open');
    expect(sdkFetch.calls).toBe(4);
    expect(upstream.requests.messages).toBe(2);
  });

  it('fails a stream that sends no first chunk within firstChunkTimeout', async () => {
    const b = breaker(fresh('anthropic-first'));
    const client = new Anthropic({
      apiKey: 'k',
      baseURL: upstream.url,
      fetch: breakerFetch(b, { firstChunkTimeout: 100 }),
      maxRetries: 0,
    });
    upstream.next({ kind: 'stall', after: 0 });
    const failures: unknown[] = [];
    b.on('failure', ({ error }) => failures.push(error));
    const error = await rejection(
      (async () => {
        for await (const _ of await client.messages.create({ ...askClaude, stream: true }));
      })(),
    );
    expect(error).toBeInstanceOf(Error);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toBeInstanceOf(FirstChunkTimeoutError);
  });

  it('lets the circuit recover through a streamed probe', async () => {
    const b = breaker(fresh('anthropic-recover'), {
      failMax: 1,
      resetTimeout: 50,
      // The probe holds its slot while it streams: a lease of resetTimeout (50 ms) would lapse.
      probeLease: 30_000,
      successThreshold: 1,
    });
    const client = new Anthropic({
      apiKey: 'k',
      baseURL: upstream.url,
      fetch: breakerFetch(b),
      maxRetries: 0,
    });
    upstream.next({ kind: 'cut', after: 1 });
    await rejection(
      (async () => {
        for await (const _ of await client.messages.create({ ...askClaude, stream: true }));
      })(),
    );
    expect(b.state).toBe('open');
    await until(() => b.state === 'halfOpen');
    const stream = client.messages.stream(askClaude);
    expect(await stream.finalText()).toBe(upstream.pieces.join(''));
    expect(b.state).toBe('closed');
  });
});

describe('breakerFetch over a failover route of base URLs', () => {
  let second: FakeLlmServer;
  beforeAll(async () => {
    second = await startFakeLlmServer();
  });
  afterEach(() => second.recover());
  afterAll(() => second.close());

  function routed(options: Parameters<typeof breakerFetch>[1] = {}) {
    const primary = breaker(fresh('primary'));
    const backup = breaker(fresh('backup'));
    const route = failover([
      { breaker: primary, value: upstream.baseURL },
      { breaker: backup, value: second.baseURL },
    ]);
    const sdkFetch = counted(breakerFetch(route, options));
    const client = new OpenAI({ apiKey: 'k', baseURL: upstream.baseURL, fetch: sdkFetch.fetch });
    return { primary, backup, client, sdkFetch };
  }

  it('sends the request to the next base URL when the first answers 500, and a 400 to no other', async () => {
    const { client } = routed();
    upstream.next(failWith(500));
    const [a, b] = [upstream.requests.chat, second.requests.chat];
    const answer = await client.chat.completions.create(ask);
    expect(answer.choices[0]?.message.content).toBe(second.pieces.join(''));
    expect([upstream.requests.chat - a, second.requests.chat - b]).toEqual([1, 1]);

    upstream.next(failWith(400));
    const error = await rejection(client.chat.completions.create(ask));
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(second.requests.chat - b).toBe(1);
  });

  it('fails a stream over when the first base URL stalls before its first chunk', async () => {
    const { client, primary } = routed({ firstChunkTimeout: 500 });
    upstream.next({ kind: 'stall', after: 0 });
    const failures: unknown[] = [];
    primary.on('failure', ({ error }) => failures.push(error));
    let text = '';
    for await (const chunk of await client.chat.completions.create({ ...ask, stream: true })) {
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(text).toBe(second.pieces.join(''));
    expect(failures[0]).toBeInstanceOf(FirstChunkTimeoutError);
  });

  it('when every target fails, answers the last one’s error with x-should-retry: false, and the SDK does not retry', async () => {
    const { client, sdkFetch } = routed();
    upstream.next(failWith(500));
    second.next(failWith(503));
    const error = await rejection(client.chat.completions.create(ask));
    expect(error.status).toBe(503);
    expect(sdkFetch.calls).toBe(1);
  });
});

describe('breakerFetch options', () => {
  it('names a bad option', () => {
    const b = breaker(fresh('options'));
    expect(() => breakerFetch(b, { fetch: 'x' as never })).toThrow(
      /option fetch must be a function/,
    );
    expect(() => breakerFetch(b, { chunkTimeout: -1 })).toThrow(/chunkTimeout/);
    expect(() => breakerFetch(b, 5 as never)).toThrow(/options must be an object, got 5/);
    expect(() => breakerFetch({} as never)).toThrow(/needs a CircuitBreaker or a failover route/);
    const route = failover([{ breaker: b, value: 'ftp://x' }]);
    expect(() => breakerFetch(route)).toThrow(/target 0's value must be a base URL/);
  });
});
