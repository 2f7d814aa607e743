import { checkStore } from '../admin/read.js';
import type { BreakerStore } from '../stores/store.js';
import { describeValue } from '../validate.js';

/** Options of {@link startDashboard}. */
export interface DashboardOptions {
  /**
   * The store the fleet's breakers share (a `RedisStore`; a `MemoryStore` shows the breakers of
   * this process). It must be able to list and follow every breaker (`listRecords`, `watchAll`).
   * It stays the caller's to close.
   */
  store: BreakerStore;
  /**
   * The address to listen on. Default `127.0.0.1`: only this machine can connect. Any other
   * address exposes the page (read-only without a token) to whoever can reach it.
   */
  host?: string | undefined;
  /** The TCP port. Default 8080; 0 picks a free one (read it from the `url`). */
  port?: number | undefined;
  /**
   * The operator token. With it the page offers force open, disable and reset, and every write
   * request must carry it (`Authorization: Bearer <token>`); without it the dashboard is
   * read-only and refuses every write. Visible ASCII, no spaces; use a long random one.
   * `undefined` (an unset environment variable, say) is no token.
   */
  token?: string | undefined;
}

export interface ResolvedDashboardOptions {
  readonly store: BreakerStore;
  readonly host: string;
  readonly port: number;
  readonly token: string | undefined;
}

const TOKEN = /^[\x21-\x7e]+$/;
const MIN_TOKEN_LENGTH = 16;
const OPTIONS = new Set(['store', 'host', 'port', 'token']);

/** @throws TypeError or RangeError naming the option and the value. */
export function resolveDashboardOptions(options: unknown): ResolvedDashboardOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`startDashboard: options must be an object, got ${describeValue(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!OPTIONS.has(key)) {
      throw new TypeError(
        `startDashboard: unknown option ${JSON.stringify(key)} (options: ${[...OPTIONS].join(', ')})`,
      );
    }
  }
  const { store, host = '127.0.0.1', port = 8080, token } = options as DashboardOptions;
  const checked = checkStore(store, 'startDashboard');
  if (checked.listRecords === undefined || checked.watchAll === undefined) {
    throw new TypeError(
      'startDashboard: option store must be able to list and follow every breaker (listRecords and watchAll), as MemoryStore and RedisStore do',
    );
  }
  if (typeof host !== 'string') {
    throw new TypeError(`startDashboard: option host must be a string, got ${describeValue(host)}`);
  }
  if (host.trim() === '') throw new RangeError('startDashboard: option host must not be empty');
  if (typeof port !== 'number') {
    throw new TypeError(`startDashboard: option port must be a number, got ${describeValue(port)}`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new RangeError(
      `startDashboard: option port must be an integer from 0 to 65535, got ${describeValue(port)}`,
    );
  }
  if (token !== undefined) checkToken(token, 'startDashboard: option token');
  return { store: checked, host, port, token };
}

/**
 * Refuses a token the dashboard cannot take (never quoting it).
 * @param who names it in the message: `startDashboard: option token`, `--token`.
 * @throws TypeError or RangeError saying what is wrong with it.
 */
export function checkToken(token: unknown, who: string): string {
  if (typeof token !== 'string') {
    throw new TypeError(`${who} must be a string, got ${describeValue(token)}`);
  }
  if (!TOKEN.test(token)) {
    throw new RangeError(
      token === ''
        ? `${who} must not be empty (leave it out for a read-only dashboard)`
        : `${who} must be visible ASCII characters without spaces (it travels in an HTTP header)`,
    );
  }
  // Nothing limits guesses: a token must be too long to guess.
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new RangeError(
      `${who} must be at least ${MIN_TOKEN_LENGTH} characters (a long random one, e.g. openssl rand -hex 32), got ${token.length}`,
    );
  }
  return token;
}
