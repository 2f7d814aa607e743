import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A real HTTP server on a free loopback port, answering as `handle` says. */
export interface HttpUpstream {
  readonly url: string;
  close(): Promise<void>;
}

export async function startHttpUpstream(
  handle: (request: IncomingMessage, response: ServerResponse) => void,
): Promise<HttpUpstream> {
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback URL where nothing listens: a port just taken and given back. */
export async function closedPortUrl(): Promise<string> {
  const upstream = await startHttpUpstream(() => undefined);
  await upstream.close();
  return upstream.url;
}

/** What a fetch to `url` rejects with; fails the test if it resolves. */
export async function fetchError(url: string, init?: RequestInit): Promise<unknown> {
  try {
    const response = await fetch(url, init);
    await response.body?.cancel();
  } catch (error) {
    return error;
  }
  throw new Error(`fetch ${url} resolved, expected it to reject`);
}

/** A real fetch `Response` with this status and headers, from a server running {@link answerAsAsked}. */
export async function respond(
  upstream: HttpUpstream,
  status: number,
  headers: Record<string, string> = {},
): Promise<Response> {
  const query = new URLSearchParams({ status: String(status), headers: JSON.stringify(headers) });
  return fetch(`${upstream.url}?${query}`);
}

/** A handler that answers with the status and headers its query names (see {@link respond}). */
export function answerAsAsked(request: IncomingMessage, response: ServerResponse): void {
  const query = new URL(request.url ?? '/', 'http://localhost').searchParams;
  const headers = JSON.parse(query.get('headers') ?? '{}') as Record<string, string>;
  response.writeHead(Number(query.get('status') ?? 200), headers);
  response.end(JSON.stringify({ error: { message: 'as asked' } }));
}
