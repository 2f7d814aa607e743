import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readBreaker } from '../admin/read.js';
import type { BreakerStore } from '../stores/store.js';
import { hostProblem, isLoopback, TokenCheck } from './access.js';
import { type Asset, loadAssets } from './assets.js';
import { HttpError, SECURITY_HEADERS, sendError, sendJson } from './http.js';
import { LiveBreakers } from './live.js';
import { asHttpError, authorize, isOperatorAction, runAction } from './operator.js';
import { type DashboardOptions, resolveDashboardOptions } from './options.js';
import { readRates } from './rates.js';
import { breakerView } from './wire.js';

/** A running dashboard. */
export interface Dashboard {
  /** Where the page is, e.g. `http://127.0.0.1:8080/`. */
  readonly url: string;
  /** Whether operator actions are allowed (the dashboard was given a token). */
  readonly writable: boolean;
  /** Ends the live streams, stops listening and stops following the store (left open). */
  close(): Promise<void>;
}

interface Context {
  readonly store: BreakerStore;
  readonly assets: ReadonlyMap<string, Asset>;
  readonly live: LiveBreakers;
  readonly token: TokenCheck | undefined;
  loopbackOnly: boolean;
}

const ACTIONS_PATH = '/api/actions/';

function allow(request: IncomingMessage, ...methods: string[]): void {
  if (!methods.includes(request.method ?? '')) {
    throw new HttpError(405, `${request.method} is not allowed here (${methods.join(', ')})`, {
      Allow: methods.join(', '),
    });
  }
}

function serveAsset(request: IncomingMessage, response: ServerResponse, asset: Asset): void {
  allow(request, 'GET', 'HEAD');
  const headers = {
    ...SECURITY_HEADERS,
    'Content-Type': asset.type,
    'Cache-Control': 'no-cache',
    ETag: asset.etag,
  };
  if (request.headers['if-none-match'] === asset.etag) {
    response.writeHead(304, headers).end();
    return;
  }
  response.writeHead(200, { ...headers, 'Content-Length': asset.body.length });
  response.end(request.method === 'HEAD' ? undefined : asset.body);
}

async function route(
  context: Context,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const refused = hostProblem(request, context.loopbackOnly);
  if (refused !== undefined) throw new HttpError(403, refused);
  const target = request.url ?? '/';
  const queryAt = target.indexOf('?');
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  const query = new URLSearchParams(queryAt === -1 ? '' : target.slice(queryAt + 1));

  if (path === '/events') {
    allow(request, 'GET');
    context.live.attach(response);
    return;
  }
  if (path === '/api/breakers') {
    allow(request, 'GET');
    sendJson(response, 200, context.live.snapshot());
    return;
  }
  if (path === '/api/breaker') {
    allow(request, 'GET');
    const name = query.get('name');
    if (name === null) throw new HttpError(400, 'name the breaker: /api/breaker?name=<name>');
    const info = await readBreaker(context.store, name).catch((error: unknown) => {
      throw asHttpError(error);
    });
    const rates = await readRates(context.store, info).catch((error: unknown) => {
      throw asHttpError(error);
    });
    sendJson(response, 200, { now: context.store.clock.now(), breaker: breakerView(info, rates) });
    return;
  }
  if (path === '/api/auth') {
    allow(request, 'POST');
    authorize(request, context.token);
    request.resume();
    response.writeHead(204, SECURITY_HEADERS).end();
    return;
  }
  if (path.startsWith(ACTIONS_PATH)) {
    allow(request, 'POST');
    const action = path.slice(ACTIONS_PATH.length);
    if (!isOperatorAction(action)) {
      throw new HttpError(
        404,
        `no operator action ${JSON.stringify(action)} (actions: forceOpen, disable, reset)`,
      );
    }
    authorize(request, context.token);
    sendJson(response, 200, await runAction(context.store, action, request));
    return;
  }
  const asset = context.assets.get(path);
  if (asset !== undefined) {
    serveAsset(request, response, asset);
    return;
  }
  throw new HttpError(404, `nothing at ${JSON.stringify(path)}`);
}

function handle(context: Context, request: IncomingMessage, response: ServerResponse): void {
  route(context, request, response).catch((error: unknown) => {
    const failure =
      error instanceof HttpError
        ? error
        : new HttpError(500, `the dashboard failed: ${(error as Error)?.message ?? error}`);
    if (response.headersSent) {
      response.destroy();
      return;
    }
    // A body left unread would hold the connection; the client is told to start a new one.
    if (!request.complete) response.setHeader('Connection', 'close');
    sendError(response, failure);
  });
}

function urlHost(host: string, address: string): string {
  // An unspecified address listens everywhere; this machine reaches it on loopback.
  const shown = address === '0.0.0.0' || address === '::' ? '127.0.0.1' : host;
  return shown.includes(':') && !shown.startsWith('[') ? `[${shown}]` : shown;
}

/**
 * Serves the live dashboard of the breakers on `store`: one page with a tile per breaker (state
 * in colour, failures, countdown to half-open, probes in flight, last transitions with reasons,
 * the statechart with the current state highlighted) and a filter, updated from the store's
 * change feed through Server-Sent Events. Everything the page needs is served from the package.
 *
 * With `token`, the page offers force open, disable and reset (after the operator enters the
 * token), each a `POST` that must carry `Authorization: Bearer <token>` and come from the
 * dashboard's own page; without it the dashboard is read-only and refuses every write.
 *
 * @example
 * const dashboard = await startDashboard({ store: new RedisStore(redis), port: 8080 });
 * console.log(`dashboard on ${dashboard.url}`);
 * // ...later: await dashboard.close();
 * @throws TypeError or RangeError naming a bad option.
 * @throws the store's error when it does not answer the first read (`RedisStoreTimeoutError`),
 * or the listen error (`EADDRINUSE`) naming the address.
 */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const { store, host, port, token } = resolveDashboardOptions(options);
  const assets = await loadAssets();
  const live = new LiveBreakers(store, token !== undefined);
  try {
    await live.ready;
  } catch (error) {
    live.close();
    throw error;
  }
  const context: Context = {
    store,
    assets,
    live,
    token: token === undefined ? undefined : new TokenCheck(token),
    loopbackOnly: true,
  };
  const server = createServer((request, response) => handle(context, request, response));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    live.close();
    throw new Error(
      `startDashboard: cannot listen on ${host}:${port}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const address = server.address() as AddressInfo;
  context.loopbackOnly = isLoopback(address.address);
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost(host, address.address)}:${address.port}/`,
    writable: token !== undefined,
    close() {
      closing ??= new Promise<void>((resolve) => {
        live.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
