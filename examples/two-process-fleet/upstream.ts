// The fake upstream the two processes call: a tiny HTTP server that is down for its first
// requests (503) and answers 200 afterwards, as a service that comes back after an outage.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The running fake upstream. */
export interface FakeUpstream {
  /** Where to call it: `http://127.0.0.1:<port>/`. */
  readonly url: string;
  /** Requests it answered: 503s while down, 200s after. */
  readonly answered: { readonly failed: number; readonly ok: number };
  close(): Promise<void>;
}

/** Starts the fake upstream on a free loopback port; it fails its first `failures` requests. */
export async function startFakeUpstream(failures: number): Promise<FakeUpstream> {
  const answered = { failed: 0, ok: 0 };
  const server = createServer((_request, response) => {
    if (answered.failed < failures) {
      answered.failed++;
      response.writeHead(503, { 'content-type': 'text/plain' }).end('down for maintenance');
    } else {
      answered.ok++;
      response.writeHead(200, { 'content-type': 'text/plain' }).end(`answer #${answered.ok}`);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    answered,
    close: () =>
      new Promise<void>((resolve) => {
        // The callers' keep-alive connections would hold close() open until they time out.
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
