import type { WindowCounts } from '../../machine.js';
import type { WindowFlush } from '../../window/buckets.js';
import type { WindowRead } from '../store.js';
import type { RedisClock } from './clock.js';
import type { Bounded } from './errors.js';
import { windowFlushKey, windowKey } from './keys.js';
import { flushWindowArgs, windowCounts } from './script-args.js';
import type { RedisScripts } from './scripts.js';

// A flush lands until its store's timeout and this much more (the server's clock may be read at a
// coarser grain than the store's, ioredis-mock's to the second), and its id key lives this much
// longer still: a resend that passes the deadline finds the key, and one after it is refused.
const FLUSH_GRACE_MS = 1_000;

/** What the window's flushes need of their store. */
export interface WindowHost {
  readonly scripts: RedisScripts;
  readonly prefix: string;
  readonly timeout: number;
  readonly clock: RedisClock;
  readonly bounded: Bounded;
  /** Resolves once Redis server time has been read. */
  whenSynced(): Promise<void>;
}

/** The rate rules' shared window of a Redis store: `${prefix}{name}:window`. */
export class WindowFlushes {
  readonly #host: WindowHost;
  /** Flush ids: unique to this store, numbered. */
  readonly #flushPrefix = `${Math.random().toString(36).slice(2, 10)}.`;
  #flushes = 0;

  constructor(host: WindowHost) {
    this.#host = host;
  }

  /** Adds an instance's counts and returns the fleet's totals, in one script call. */
  async flush(name: string, flush: WindowFlush): Promise<WindowCounts> {
    const { scripts, prefix, timeout, clock, bounded } = this.#host;
    // On server time, as a write's deadline: a flush this store gave up on must not land later.
    await this.#host.whenSynced();
    const flushId = `${this.#flushPrefix}${(++this.#flushes).toString(36)}`;
    const reply = await bounded(
      scripts.flushWindow(
        ...flushWindowArgs(
          windowKey(prefix, name),
          windowFlushKey(prefix, name, flushId),
          flush,
          clock.now() + timeout + FLUSH_GRACE_MS,
          timeout + 2 * FLUSH_GRACE_MS,
        ),
      ),
      'flushWindow',
    );
    return windowCounts(reply);
  }

  /**
   * The fleet's totals for a generation, adding nothing: the flush script run past its deadline,
   * which only reads (and drops buckets that left the window).
   */
  async read(name: string, read: WindowRead): Promise<WindowCounts> {
    const { scripts, prefix, bounded } = this.#host;
    const nothing = { ...read, calls: 0, failures: 0, slow: 0, instance: '' };
    const args = flushWindowArgs(
      windowKey(prefix, name),
      windowFlushKey(prefix, name, 'read'),
      nothing,
      0,
      1,
    );
    return windowCounts(await bounded(scripts.flushWindow(...args), 'readWindow'));
  }
}
