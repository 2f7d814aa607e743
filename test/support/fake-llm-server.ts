import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  errorBody,
  frame,
  jsonBody,
  type LlmRoute,
  ROUTE_PATHS,
  type SseEvent,
  streamEvents,
} from './fake-llm-wire.js';

export type { LlmRoute } from './fake-llm-wire.js';

/**
 * How the fake server answers a request.
 * - `ok`: the whole answer, as JSON or as a stream of one event per piece of text.
 * - `status`: that status with the API's error body (and `headers`, e.g. `retry-after`).
 * - `cut`: a stream stops after `after` pieces by closing the connection (a JSON request's
 *   connection closes before any answer).
 * - `stall`: a stream sends its headers and `after` pieces, then nothing until the client goes
 *   (`after: 0` stalls before the first chunk; with `preamble`, after the events that carry no
 *   text, as Anthropic's `message_start` and `content_block_start`); a JSON request is never
 *   answered.
 * - `ok` with `gapMs`: a stream whose pieces come `gapMs` apart (a long, healthy stream).
 */
export type Behaviour =
  | { readonly kind: 'ok'; readonly gapMs?: number }
  | {
      readonly kind: 'status';
      readonly status: number;
      readonly headers?: Readonly<Record<string, string>>;
    }
  | { readonly kind: 'cut'; readonly after: number }
  | { readonly kind: 'stall'; readonly after: number; readonly preamble?: boolean };

/** A 5xx (or any status) with the API's error body. */
export const failWith = (status: number): Behaviour => ({ kind: 'status', status });

/** A 429 with `retry-after` in seconds and, when given, OpenAI's `retry-after-ms`. */
export function rateLimited(retryAfterSeconds: number, retryAfterMs?: number): Behaviour {
  const headers: Record<string, string> = { 'retry-after': String(retryAfterSeconds) };
  if (retryAfterMs !== undefined) headers['retry-after-ms'] = String(retryAfterMs);
  return { kind: 'status', status: 429, headers };
}

/** One request the server received. */
export interface ReceivedRequest {
  readonly route: LlmRoute;
  readonly model: string;
  readonly stream: boolean;
  readonly behaviour: Behaviour['kind'];
}

/** A local HTTP server speaking enough of the OpenAI and Anthropic APIs for the real SDKs. */
export interface FakeLlmServer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** `url` + `/v1`: the `baseURL` of the OpenAI and Anthropic SDKs and AI SDK providers. */
  readonly baseURL: string;
  /** Requests received per route. */
  readonly requests: Readonly<Record<LlmRoute, number>>;
  /** Every request received, in order. */
  readonly log: readonly ReceivedRequest[];
  /** The pieces of text every answer is made of. */
  readonly pieces: readonly string[];
  /** Requests received on every route. */
  total(): number;
  /** From now on, requests on `route` (every route by default) answer this way. */
  always(behaviour: Behaviour, route?: LlmRoute): void;
  /** The next `times` requests on `route` (any by default) answer this way, before `always`. */
  next(behaviour: Behaviour, times?: number, route?: LlmRoute): void;
  /**
   * Requests to `/v1/audio/speech` (text to speech): each answers 1 KiB of `audio/mpeg` at once,
   * then holds the rest of its body until {@link releaseSpeech}.
   */
  readonly speechRequests: number;
  /** Lets every held speech body send its last KiB and end. */
  releaseSpeech(): void;
  /** Answers `ok` again everywhere and forgets queued behaviours (counts stay). */
  recover(): void;
  close(): Promise<void>;
}

const PIECES = ['Hello', ' from', ' the', ' fake', ' upstream'];
const OK: Behaviour = { kind: 'ok' };
const ROUTES = Object.keys(ROUTE_PATHS) as LlmRoute[];

/** Starts a fake LLM server on a loopback port the kernel picks. */
export async function startFakeLlmServer(): Promise<FakeLlmServer> {
  const requests: Record<LlmRoute, number> = { chat: 0, responses: 0, messages: 0 };
  const log: ReceivedRequest[] = [];
  const standing = new Map<LlmRoute, Behaviour>();
  const queue: { behaviour: Behaviour; route: LlmRoute | undefined }[] = [];

  const behaviourFor = (route: LlmRoute): Behaviour => {
    const index = queue.findIndex((entry) => entry.route === undefined || entry.route === route);
    if (index >= 0) return (queue.splice(index, 1)[0] as (typeof queue)[number]).behaviour;
    return standing.get(route) ?? OK;
  };

  const heldSpeech: ServerResponse[] = [];
  let speechRequests = 0;
  const server = createServer((request, response) => {
    if (request.method === 'POST' && request.url?.split('?')[0] === '/v1/audio/speech') {
      speechRequests++;
      request.resume();
      response.writeHead(200, { 'content-type': 'audio/mpeg' });
      response.write(Buffer.alloc(1024, 1));
      heldSpeech.push(response);
      return;
    }
    const route = ROUTES.find((r) => request.url?.split('?')[0] === ROUTE_PATHS[r]);
    if (request.method !== 'POST' || route === undefined) {
      sendJson(response, 404, { error: { message: `no route ${request.method} ${request.url}` } });
      return;
    }
    readJson(request).then((body) => {
      requests[route]++;
      const model = typeof body.model === 'string' ? body.model : 'unknown';
      const stream = body.stream === true;
      const behaviour = behaviourFor(route);
      log.push({ route, model, stream, behaviour: behaviour.kind });
      answer(route, model, stream, behaviour, response);
    }, response.destroy.bind(response));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    baseURL: `${url}/v1`,
    requests,
    log,
    pieces: PIECES,
    total: () => requests.chat + requests.responses + requests.messages,
    get speechRequests() {
      return speechRequests;
    },
    releaseSpeech() {
      for (const response of heldSpeech.splice(0)) response.end(Buffer.alloc(1024, 2));
    },
    always(behaviour, route) {
      for (const r of route === undefined ? ROUTES : [route]) standing.set(r, behaviour);
    },
    next(behaviour, times = 1, route) {
      for (let i = 0; i < times; i++) queue.push({ behaviour, route });
    },
    recover() {
      standing.clear();
      queue.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
}

// The headers every answer carries, as the real APIs send an id per request.
function commonHeaders(route: LlmRoute): Record<string, string> {
  return route === 'messages' ? { 'request-id': 'req_fake' } : { 'x-request-id': 'req_fake' };
}

function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

function answer(
  route: LlmRoute,
  model: string,
  stream: boolean,
  behaviour: Behaviour,
  response: ServerResponse,
): void {
  const headers = commonHeaders(route);
  if (behaviour.kind === 'status') {
    sendJson(response, behaviour.status, errorBody(route, behaviour.status), {
      ...headers,
      ...behaviour.headers,
    });
    return;
  }
  if (!stream) {
    if (behaviour.kind === 'cut') response.socket?.destroy();
    // A stalled JSON request is never answered: the client's timeout or abort ends it.
    else if (behaviour.kind === 'ok')
      sendJson(response, 200, jsonBody(route, model, PIECES), headers);
    return;
  }
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    ...headers,
  });
  response.flushHeaders();
  const { head, body, tail } = streamEvents(route, model, PIECES);
  // The head's events carry no text; the body's event i carries piece i.
  const stopAt = behaviour.kind === 'ok' ? body.length : Math.min(behaviour.after, body.length);
  if (behaviour.kind === 'stall' && stopAt === 0 && behaviour.preamble !== true) return;
  const events: SseEvent[] = [...head, ...body.slice(0, stopAt)];
  if (behaviour.kind === 'ok') events.push(...tail);
  const gapMs = behaviour.kind === 'ok' ? (behaviour.gapMs ?? 0) : 0;
  writeEach(response, events, head.length, head.length + stopAt, gapMs, () => {
    if (behaviour.kind === 'ok') response.end();
    else if (behaviour.kind === 'cut') response.socket?.destroy();
    // stall: the response stays open until the client goes or the server closes.
  });
}

// One write per event, each on its own turn of the event loop, so that the client reads the
// events as separate chunks, as it does from a real upstream; with `gapMs`, the events from
// `paceFrom` to `paceUntil` (the pieces of text) come that far apart.
function writeEach(
  response: ServerResponse,
  events: readonly SseEvent[],
  paceFrom: number,
  paceUntil: number,
  gapMs: number,
  done: () => void,
): void {
  let index = 0;
  const step = () => {
    if (response.destroyed) return;
    const event = events[index++];
    if (event === undefined) {
      done();
      return;
    }
    response.write(frame(event));
    if (gapMs > 0 && index >= paceFrom && index < paceUntil) setTimeout(step, gapMs);
    else setImmediate(step);
  };
  step();
}
