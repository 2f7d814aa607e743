import type { ServerResponse } from 'node:http';
import { APICallError } from '@ai-sdk/provider';
import { CallTimeoutError } from 'statebreaker';
import { llmClassify } from 'statebreaker/llm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  answerAsAsked,
  closedPortUrl,
  fetchError,
  type HttpUpstream,
  respond,
  startHttpUpstream,
} from './support/http-upstream.js';
import { Anthropic, OpenAI, openAIBody, v4ResponseHeaders } from './support/llm-sdk-errors.js';

const headers = () => new Headers({ 'content-type': 'application/json', 'x-request-id': 'req_1' });

describe('llmClassify: OpenAI SDK errors (v5+ shape, Headers)', () => {
  const cases: [string, number, Record<string, unknown>, 'ignored' | 'failure'][] = [
    ['bad request', 400, openAIBody('bad', 'invalid_request_error'), 'ignored'],
    [
      'context length exceeded',
      400,
      openAIBody('too long', 'invalid_request_error', 'context_length_exceeded'),
      'ignored',
    ],
    [
      'content policy',
      400,
      openAIBody('refused', 'invalid_request_error', 'content_policy_violation'),
      'ignored',
    ],
    ['bad key', 401, openAIBody('bad key', 'invalid_request_error', 'invalid_api_key'), 'ignored'],
    [
      'forbidden region',
      403,
      openAIBody('no', 'invalid_request_error', 'unsupported_country_region_territory'),
      'ignored',
    ],
    [
      'unknown model',
      404,
      openAIBody('no model', 'invalid_request_error', 'model_not_found'),
      'ignored',
    ],
    ['payload too large', 413, openAIBody('too big', 'invalid_request_error'), 'ignored'],
    ['unprocessable', 422, openAIBody('no', 'invalid_request_error'), 'ignored'],
    ['request timeout', 408, openAIBody('slow', 'server_error'), 'failure'],
    ['conflict (lock timeout)', 409, openAIBody('busy', 'server_error'), 'failure'],
    ['rate limited', 429, openAIBody('slow down', 'requests', 'rate_limit_exceeded'), 'failure'],
    [
      'out of quota',
      429,
      openAIBody('quota', 'insufficient_quota', 'insufficient_quota'),
      'failure',
    ],
    ['server error', 500, openAIBody('oops', 'server_error'), 'failure'],
    ['bad gateway', 502, openAIBody('gateway', 'server_error'), 'failure'],
    ['unavailable', 503, openAIBody('overloaded', 'server_error'), 'failure'],
  ];
  it.each(cases)('%s (%i) is %s', (_, status, body, outcome) => {
    const error = OpenAI.APIError.generate(status, body, undefined, headers());
    expect(error.status).toBe(status);
    expect(llmClassify(error)).toBe(outcome);
  });

  it('reads a context-length or server error raised mid-stream, without a status', () => {
    // Stream.fromSSEResponse: `new APIError(undefined, data.error, undefined, response.headers)`.
    const tooLong = new OpenAI.APIError(
      undefined,
      { message: 'too long', type: 'invalid_request_error', code: 'context_length_exceeded' },
      undefined,
      headers(),
    );
    const broke = new OpenAI.APIError(
      undefined,
      { message: 'oops', type: 'server_error', code: null },
      undefined,
      headers(),
    );
    expect(llmClassify(tooLong)).toBe('ignored');
    expect(llmClassify(broke)).toBe('failure');
  });

  it('reads the content filter code of Azure OpenAI', () => {
    const error = OpenAI.APIError.generate(
      400,
      openAIBody('filtered', 'invalid_request_error', 'content_filter'),
      undefined,
      headers(),
    );
    expect(llmClassify(error)).toBe('ignored');
  });

  it('ignores the parse helpers’ length and content-filter errors', () => {
    expect(llmClassify(new OpenAI.LengthFinishReasonError())).toBe('ignored');
    expect(llmClassify(new OpenAI.ContentFilterFinishReasonError())).toBe('ignored');
  });
});

describe('llmClassify: OpenAI SDK v4 errors (plain-object headers)', () => {
  it.each([
    [400, 'ignored'],
    [401, 'ignored'],
    [429, 'failure'],
    [503, 'failure'],
  ] as const)('%i is %s', (status, outcome) => {
    const error = OpenAI.APIError.generate(
      status,
      openAIBody('x', 'invalid_request_error'),
      undefined,
      v4ResponseHeaders(headers()),
    );
    expect(llmClassify(error)).toBe(outcome);
  });
});

describe('llmClassify: Anthropic SDK errors', () => {
  const cases: [number, string, 'ignored' | 'failure'][] = [
    [400, 'invalid_request_error', 'ignored'],
    [401, 'authentication_error', 'ignored'],
    [402, 'billing_error', 'ignored'],
    [403, 'permission_error', 'ignored'],
    [404, 'not_found_error', 'ignored'],
    [413, 'request_too_large', 'ignored'],
    [429, 'rate_limit_error', 'failure'],
    [500, 'api_error', 'failure'],
    [504, 'timeout_error', 'failure'],
    [529, 'overloaded_error', 'failure'],
  ];
  it.each(cases)('%i %s is %s', (status, type, outcome) => {
    const error = Anthropic.APIError.generate(status, Anthropic.body(type), undefined, headers());
    expect(error.type).toBe(type);
    expect(llmClassify(error)).toBe(outcome);
  });

  it.each([
    ['overloaded_error', 'failure'],
    ['api_error', 'failure'],
    ['rate_limit_error', 'failure'],
    ['invalid_request_error', 'ignored'],
  ] as const)('reads a %s event of a stream (no status) as %s', (type, outcome) => {
    expect(llmClassify(Anthropic.streamError(Anthropic.body(type), headers()))).toBe(outcome);
  });
});

describe('llmClassify: aborts and timeouts', () => {
  it('counts connection errors and the SDKs’ own timeouts as failures', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const cause = new TypeError('fetch failed', { cause: refused });
    for (const sdk of [OpenAI, Anthropic]) {
      expect(llmClassify(new sdk.APIConnectionError({ cause }))).toBe('failure');
      expect(llmClassify(new sdk.APIConnectionTimeoutError())).toBe('failure');
    }
  });

  it('ignores an abort by a signal the breaker did not hand out', () => {
    for (const sdk of [OpenAI, Anthropic]) {
      expect(llmClassify(new sdk.APIUserAbortError())).toBe('ignored');
    }
    const controller = new AbortController();
    controller.abort();
    expect(llmClassify(controller.signal.reason)).toBe('ignored');
    expect(llmClassify(OpenAI.userAbortError(controller.signal))).toBe('ignored');
  });

  it('counts an abort whose reason is a timeout as a failure', () => {
    const timedOut = new AbortController();
    timedOut.abort(new DOMException('The operation timed out.', 'TimeoutError'));
    expect(llmClassify(OpenAI.userAbortError(timedOut.signal))).toBe('failure');
    const breakerTimeout = new AbortController();
    breakerTimeout.abort(new CallTimeoutError('llm', 1_000));
    expect(llmClassify(OpenAI.userAbortError(breakerTimeout.signal))).toBe('failure');
    expect(llmClassify(new CallTimeoutError('llm', 1_000))).toBe('failure');
  });
});

describe('llmClassify: real fetch errors and Responses', () => {
  let upstream: HttpUpstream;
  let resetter: HttpUpstream;
  let hanging: HttpUpstream;
  const held: ServerResponse[] = [];
  beforeAll(async () => {
    upstream = await startHttpUpstream(answerAsAsked);
    resetter = await startHttpUpstream((request) => request.socket.resetAndDestroy());
    hanging = await startHttpUpstream((_, response) => held.push(response));
  });
  afterAll(async () => {
    for (const response of held) response.destroy();
    await Promise.all([upstream.close(), resetter.close(), hanging.close()]);
  });

  it('counts a refused connection as a failure', async () => {
    const error = await fetchError(await closedPortUrl());
    expect(error).toBeInstanceOf(TypeError);
    expect((error as { cause?: { code?: string } }).cause?.code).toBe('ECONNREFUSED');
    expect(llmClassify(error)).toBe('failure');
  });

  it('counts a reset connection as a failure', async () => {
    const error = await fetchError(resetter.url);
    expect(error).toBeInstanceOf(TypeError);
    expect(['ECONNRESET', 'UND_ERR_SOCKET']).toContain(
      (error as { cause?: { code?: string } }).cause?.code,
    );
    expect(llmClassify(error)).toBe('failure');
    // The same error wrapped by an SDK, and by the application around the SDK.
    const sdkError = new OpenAI.APIConnectionError({ cause: error as Error });
    expect(llmClassify(new Error('summary failed', { cause: sdkError }))).toBe('failure');
  });

  it('counts AbortSignal.timeout() as a failure and a plain abort as ignored', async () => {
    const timedOut = await fetchError(hanging.url, { signal: AbortSignal.timeout(50) });
    expect((timedOut as Error).name).toBe('TimeoutError');
    expect(llmClassify(timedOut)).toBe('failure');
    const controller = new AbortController();
    const pending = fetchError(hanging.url, { signal: controller.signal });
    controller.abort();
    const aborted = await pending;
    expect((aborted as Error).name).toBe('AbortError');
    expect(llmClassify(aborted)).toBe('ignored');
  });

  it.each([
    [400, 'ignored'],
    [401, 'ignored'],
    [403, 'ignored'],
    [404, 'ignored'],
    [413, 'ignored'],
    [422, 'ignored'],
    [408, 'failure'],
    [409, 'failure'],
    [429, 'failure'],
    [500, 'failure'],
    [503, 'failure'],
    [529, 'failure'],
  ] as const)('reads a wrapped Response %i as %s', async (status, outcome) => {
    const response = await respond(upstream, status);
    await response.body?.cancel();
    expect(response.status).toBe(status);
    expect(llmClassify(new Error(`HTTP ${status}`, { cause: response }))).toBe(outcome);
    expect(llmClassify(Object.assign(new Error(`HTTP ${status}`), { response }))).toBe(outcome);
  });

  it('counts an error around a 2xx Response (an unreadable answer) as a failure', async () => {
    const response = await respond(upstream, 200);
    await response.body?.cancel();
    expect(llmClassify(new Error('no JSON in the answer', { cause: response }))).toBe('failure');
  });
});

describe('llmClassify: what it does not know, and odd shapes', () => {
  it('counts unknown errors as failures, like a breaker without classify', () => {
    for (const error of [new Error('boom'), 'a string', 42, null, undefined, {}]) {
      expect(llmClassify(error)).toBe('failure');
    }
  });

  it('reads only whole-number HTTP statuses', () => {
    for (const status of ['400', 400.5, 0, 99, 600, Number.NaN]) {
      expect(llmClassify({ status })).toBe('failure');
    }
    expect(llmClassify({ status: 400 })).toBe('ignored');
  });

  it('takes the outermost status', () => {
    const badRequest = OpenAI.APIError.generate(400, openAIBody('x', 'y'), undefined, headers());
    const unavailable = OpenAI.APIError.generate(503, openAIBody('x', 'y'), undefined, headers());
    expect(llmClassify(Object.assign(new Error('outer'), { status: 429, cause: badRequest }))).toBe(
      'failure',
    );
    expect(
      llmClassify(Object.assign(new Error('outer'), { status: 400, cause: unavailable })),
    ).toBe('ignored');
    expect(llmClassify(new Error('outer', { cause: badRequest }))).toBe('ignored');
  });

  it('stops on a cause that points back at its error', () => {
    const error = new Error('loop');
    error.cause = error;
    expect(llmClassify(error)).toBe('failure');
    const abort = new DOMException('aborted', 'AbortError');
    const loop = new Error('a', { cause: new Error('b', { cause: abort }) });
    (abort as { cause?: unknown }).cause = loop;
    expect(llmClassify(loop)).toBe('ignored');
  });

  it('counts an error whose fields throw as a failure instead of throwing', () => {
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('no reading me');
        },
      },
    );
    expect(llmClassify(hostile)).toBe('failure');
  });
});

describe('llmClassify: the AI SDK’s APICallError (the real class)', () => {
  const apiCallError = (statusCode: number) =>
    new APICallError({ message: 'x', url: 'u', requestBodyValues: {}, statusCode });

  it('reads its statusCode', () => {
    expect(llmClassify(apiCallError(400))).toBe('ignored');
    expect(llmClassify(apiCallError(401))).toBe('ignored');
    expect(llmClassify(apiCallError(429))).toBe('failure');
    expect(llmClassify(apiCallError(500))).toBe('failure');
  });
});
