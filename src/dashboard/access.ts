import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/** Whether an address or host name is this machine's loopback. */
export function isLoopback(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (bare === 'localhost' || bare.endsWith('.localhost')) return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) return bare === '::1' || bare.startsWith('::ffff:127.');
  return false;
}

/** The host name of a `Host` header or an origin's authority, without the port. */
function hostName(authority: string): string {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    return end === -1 ? authority : authority.slice(0, end + 1);
  }
  const colon = authority.lastIndexOf(':');
  return colon === -1 ? authority : authority.slice(0, colon);
}

/**
 * Why a request's `Host` is refused, or `undefined`. A dashboard on loopback answers only to
 * loopback names: another site whose name a DNS rebinding points at 127.0.0.1 is refused, so
 * a page on it cannot read the dashboard either.
 */
export function hostProblem(request: IncomingMessage, loopbackOnly: boolean): string | undefined {
  const host = request.headers.host;
  if (host === undefined || host === '') return 'the request has no Host header';
  if (loopbackOnly && !isLoopback(hostName(host).toLowerCase())) {
    return `Host ${JSON.stringify(host)} is not a loopback name: this dashboard listens on loopback only`;
  }
  return undefined;
}

/**
 * Why a write is refused as cross-origin, or `undefined`: a browser names the page that sent
 * the request in `Origin` (and `Sec-Fetch-Site`); only the dashboard's own page may write.
 * Clients that are not browsers send neither and are judged by the token alone.
 */
export function crossOriginProblem(request: IncomingMessage): string | undefined {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return `cross-origin request refused (Sec-Fetch-Site: ${site})`;
  }
  const origin = request.headers.origin;
  if (origin === undefined) return undefined;
  let authority: string;
  try {
    authority = new URL(origin).host;
  } catch {
    return `cross-origin request refused (Origin ${JSON.stringify(origin)})`;
  }
  if (authority.toLowerCase() !== (request.headers.host ?? '').toLowerCase()) {
    return `cross-origin request refused (Origin ${JSON.stringify(origin)})`;
  }
  return undefined;
}

/** Checks bearer tokens against the dashboard's own. */
export class TokenCheck {
  // Digests of equal length, compared in constant time: neither the token's content nor its
  // length shows in how long a refusal takes.
  readonly #digest: Buffer;

  constructor(token: string) {
    this.#digest = digest(token);
  }

  /** Whether the request carries `Authorization: Bearer <the token>`. */
  accepts(request: IncomingMessage): boolean {
    const header = request.headers.authorization;
    if (header === undefined) return false;
    const match = /^Bearer ([^\s]+)$/i.exec(header.trim());
    const offered = digest(match?.[1] ?? '');
    return timingSafeEqual(offered, this.#digest) && match !== null;
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
