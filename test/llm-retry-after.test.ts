import { APICallError } from '@ai-sdk/provider';
import { llmRetryAfter } from 'statebreaker/llm';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  answerAsAsked,
  type HttpUpstream,
  respond,
  startHttpUpstream,
} from './support/http-upstream.js';
import { Anthropic, OpenAI, openAIBody, v4ResponseHeaders } from './support/llm-sdk-errors.js';

const MAX_DELAY = 2_147_483_647;

/** A 429 of the OpenAI SDK (v5+ shape) with these response headers. */
const rateLimited = (headers: Record<string, string>) =>
  OpenAI.APIError.generate(
    429,
    openAIBody('slow down', 'requests', 'rate_limit_exceeded'),
    undefined,
    new Headers(headers),
  );
const retryAfterOf = (value: string) => llmRetryAfter(rateLimited({ 'retry-after': value }));
const retryAfterMsOf = (value: string) => llmRetryAfter(rateLimited({ 'retry-after-ms': value }));

describe('llmRetryAfter: seconds and milliseconds', () => {
  it('reads retry-after as seconds, fractions included, rounded up to a whole ms', () => {
    expect(retryAfterOf('2')).toBe(2_000);
    expect(retryAfterOf('1.5')).toBe(1_500);
    expect(retryAfterOf('0.0004')).toBe(1);
    expect(retryAfterOf(' 7 ')).toBe(7_000);
  });

  it('reads retry-after-ms as milliseconds', () => {
    expect(retryAfterMsOf('1500')).toBe(1_500);
    expect(retryAfterMsOf('250.2')).toBe(251);
  });

  it('prefers a valid retry-after-ms to retry-after, and falls back when it is not', () => {
    expect(llmRetryAfter(rateLimited({ 'retry-after-ms': '800', 'retry-after': '5' }))).toBe(800);
    expect(llmRetryAfter(rateLimited({ 'retry-after-ms': 'soon', 'retry-after': '5' }))).toBe(
      5_000,
    );
    // A zero retry-after-ms is valid: it wins, and asks for no wait.
    expect(llmRetryAfter(rateLimited({ 'retry-after-ms': '0', 'retry-after': '5' }))).toBe(
      undefined,
    );
  });

  it('answers undefined for a request to wait nothing', () => {
    expect(retryAfterOf('0')).toBeUndefined();
    expect(retryAfterMsOf('0')).toBeUndefined();
    expect(retryAfterOf('0.0')).toBeUndefined();
  });

  it.each([
    '',
    '  ',
    'soon',
    '-5',
    '+5',
    '1e3',
    '0x10',
    'Infinity',
    'NaN',
    '1.',
    '.5',
    '5 s',
    '2024-01-01T00:00:00Z',
    'Sun, 31 Feb 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 25:49:37 GMT',
    'Sun, 06 Nov 1994 08:49:37 +0100',
  ])('answers undefined for retry-after %j', (value) => {
    expect(retryAfterOf(value)).toBeUndefined();
    expect(retryAfterMsOf(value)).toBeUndefined();
  });

  it('caps what a timer cannot hold', () => {
    expect(retryAfterOf('99999999999')).toBe(MAX_DELAY);
    expect(retryAfterMsOf('99999999999999999999999')).toBe(MAX_DELAY);
  });
});

describe('llmRetryAfter: HTTP dates', () => {
  const date = 'Sun, 06 Nov 1994 08:49:37 GMT';
  const at = Date.UTC(1994, 10, 6, 8, 49, 37);

  afterEach(() => {
    vi.useRealTimers();
  });

  it('counts from the response’s own Date header when it has one', () => {
    const headers = { date, 'retry-after': 'Sun, 06 Nov 1994 08:50:07 GMT' };
    expect(llmRetryAfter(rateLimited(headers))).toBe(30_000);
  });

  it('counts from Date.now() without a Date header, and from it when the Date header is bad', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(at - 12_000);
    expect(retryAfterOf(date)).toBe(12_000);
    const headers = { date: 'yesterday', 'retry-after': date };
    expect(llmRetryAfter(rateLimited(headers))).toBe(12_000);
  });

  it('answers undefined for a date now or past', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(at);
    expect(retryAfterOf(date)).toBeUndefined();
    vi.setSystemTime(at + 60_000);
    expect(retryAfterOf(date)).toBeUndefined();
  });

  it('reads the obsolete RFC 850 and asctime forms as GMT, whatever the local time zone', () => {
    const zone = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(at - 5_000);
      expect(retryAfterOf('Sunday, 06-Nov-94 08:49:37 GMT')).toBe(5_000);
      expect(retryAfterOf('Sun Nov  6 08:49:37 1994')).toBe(5_000);
      expect(retryAfterOf('Sun Nov 16 08:49:37 1994')).toBe(10 * 86_400_000 + 5_000);
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });
});

describe('llmRetryAfter: where the headers are', () => {
  it('looks headers up without regard to case, in every shape they come in', () => {
    const shapes: [string, unknown][] = [
      ['Headers', new Headers({ 'Retry-After': '3' })],
      ['plain object as sent', { 'Retry-After': '3' }],
      ['plain object upper-cased', { 'RETRY-AFTER': '3' }],
      ['openai-node v4 Proxy', v4ResponseHeaders(new Headers({ 'Retry-After': '3' }))],
      ['Map', new Map([['Retry-After', '3']])],
      ['Node IncomingHttpHeaders with an array', { 'retry-after': ['3', '9'] }],
      ['a number value', { 'retry-after': 3 }],
    ];
    for (const [shape, headers] of shapes) {
      expect(llmRetryAfter({ status: 429, headers }), shape).toBe(3_000);
    }
    expect(llmRetryAfter({ status: 429, headers: { 'Retry-After-Ms': '40' } })).toBe(40);
  });

  it('reads the SDKs’ errors: OpenAI v4 and v5+, Anthropic', () => {
    const v4 = OpenAI.APIError.generate(
      429,
      openAIBody('slow down', 'requests'),
      undefined,
      v4ResponseHeaders(new Headers({ 'retry-after-ms': '1200', 'retry-after': '2' })),
    );
    expect(llmRetryAfter(v4)).toBe(1_200);
    const anthropic = Anthropic.APIError.generate(
      529,
      Anthropic.body('overloaded_error'),
      undefined,
      new Headers({ 'retry-after': '4' }),
    );
    expect(llmRetryAfter(anthropic)).toBe(4_000);
  });

  it('reads an SDK error wrapped by the application', () => {
    expect(
      llmRetryAfter(new Error('summary failed', { cause: rateLimited({ 'retry-after': '6' }) })),
    ).toBe(6_000);
  });

  it('answers undefined when no response speaks of retrying', () => {
    expect(llmRetryAfter(rateLimited({}))).toBeUndefined();
    expect(llmRetryAfter(new OpenAI.APIConnectionError({}))).toBeUndefined();
    expect(llmRetryAfter(new OpenAI.APIConnectionTimeoutError())).toBeUndefined();
    for (const error of [new Error('x'), 'x', null, undefined, { headers: 'retry-after: 5' }]) {
      expect(llmRetryAfter(error)).toBeUndefined();
    }
  });

  it('lets the nearest response that names a retry decide, even when its value is unusable', () => {
    const inner = rateLimited({ 'retry-after': '6' });
    const outerSilent = Object.assign(new Error('outer'), { headers: new Headers(), cause: inner });
    expect(llmRetryAfter(outerSilent)).toBe(6_000);
    const outerBad = Object.assign(new Error('outer'), {
      headers: new Headers({ 'retry-after': 'later' }),
      cause: inner,
    });
    expect(llmRetryAfter(outerBad)).toBeUndefined();
  });

  it('answers undefined instead of throwing when reading the headers throws', () => {
    const headers = {
      get() {
        throw new Error('no reading me');
      },
    };
    expect(llmRetryAfter({ status: 429, headers })).toBeUndefined();
  });
});

describe('llmRetryAfter: real Responses', () => {
  let upstream: HttpUpstream;
  beforeAll(async () => {
    upstream = await startHttpUpstream(answerAsAsked);
  });
  afterAll(() => upstream.close());

  it('reads a 429 with retry-after from a real server, wrapped as cause or response', async () => {
    const response = await respond(upstream, 429, { 'Retry-After': '7' });
    await response.body?.cancel();
    expect(llmRetryAfter(new Error('429', { cause: response }))).toBe(7_000);
    expect(llmRetryAfter(Object.assign(new Error('429'), { response }))).toBe(7_000);
  });

  it('reads an HTTP date against the server’s Date header', async () => {
    const now = Date.now();
    const response = await respond(upstream, 503, {
      Date: new Date(now).toUTCString(),
      'Retry-After': new Date(now + 45_000).toUTCString(),
    });
    await response.body?.cancel();
    expect(llmRetryAfter(new Error('503', { cause: response }))).toBe(45_000);
  });

  it('reads retry-after-ms over retry-after from a real server', async () => {
    const response = await respond(upstream, 429, { 'retry-after-ms': '350', 'retry-after': '1' });
    await response.body?.cancel();
    expect(llmRetryAfter({ response })).toBe(350);
  });
});

describe('llmRetryAfter: the AI SDK’s APICallError (the real class)', () => {
  it('reads its responseHeaders, a plain object', () => {
    const error = new APICallError({
      message: 'x',
      url: 'u',
      requestBodyValues: {},
      statusCode: 429,
      responseHeaders: { 'retry-after': '12' },
    });
    expect(llmRetryAfter(error)).toBe(12_000);
  });
});
