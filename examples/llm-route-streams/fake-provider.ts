// A stand-in for an OpenAI-compatible provider: a local HTTP server that streams chat
// completions as server-sent events, so that the real `openai` SDK can talk to it offline.
// Tell it to be up, down (503 to every request) or dropping (the connection closed unanswered).
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type ProviderMode = 'up' | 'down' | 'drop';

/** A running fake provider. */
export interface FakeProvider {
  /** The `baseURL` to give the OpenAI SDK: `http://127.0.0.1:<port>/v1`. */
  readonly baseURL: string;
  /** Requests it received. */
  readonly requests: number;
  /** How it answers from now on. */
  mode: ProviderMode;
  close(): Promise<void>;
}

const WORDS = ['Circuit', ' breakers', ' fail', ' fast', '.'];

function chunk(model: string, delta: object, finish: string | null): string {
  const body = {
    id: 'chatcmpl-fake',
    object: 'chat.completion.chunk',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  };
  return `data: ${JSON.stringify(body)}\n\n`;
}

function streamAnswer(response: ServerResponse, model: string): void {
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const events = [
    chunk(model, { role: 'assistant', content: '' }, null),
    ...WORDS.map((word) => chunk(model, { content: word }, null)),
    chunk(model, {}, 'stop'),
    'data: [DONE]\n\n',
  ];
  const next = () => {
    const event = events.shift();
    if (event === undefined) response.end();
    else if (!response.destroyed) response.write(event, () => setTimeout(next, 5));
  };
  next();
}

/** Starts a fake provider on a free loopback port, up. */
export async function startFakeProvider(): Promise<FakeProvider> {
  let requests = 0;
  const state = { mode: 'up' as ProviderMode };
  const server = createServer(async (request, response) => {
    let body = '';
    for await (const part of request) body += part;
    requests++;
    if (request.url !== '/v1/chat/completions') {
      response.writeHead(404).end();
    } else if (state.mode === 'drop') {
      request.socket.destroy();
    } else if (state.mode === 'down') {
      const error = { message: 'the fake provider is down', type: 'server_error', code: null };
      response.writeHead(503, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error }));
    } else {
      const { model } = JSON.parse(body) as { model: string };
      streamAnswer(response, model);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    get requests() {
      return requests;
    },
    get mode() {
      return state.mode;
    },
    set mode(mode: ProviderMode) {
      state.mode = mode;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
