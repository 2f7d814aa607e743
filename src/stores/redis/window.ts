import type { WindowCounts } from '../../machine.js';
import type { FleetTotals, WindowFlush } from '../../window/buckets.js';
import type { WindowRead } from '../store.js';
import type { RedisClock } from './clock.js';
import type { ClockSync } from './clock-sync.js';
import type { Bounded } from './errors.js';
import { windowFlushKey, windowKey } from './keys.js';
import { fleetTotals, flushWindowArgs, windowCounts } from './script-args.js';
import type { RedisScripts } from './scripts.js';

// A flush lands until its store's timeout and this much more (the server's clock may be read at a
// coarser grain than the store's, ioredis-mock's to the second), and its id key lives this much
// longer still: a resend that passes the deadline finds the key, and one after it is refused.
const FLUSH_GRACE_MS = 1_000;

/** What the fleet's windows on Redis need of their store. */
export interface WindowHost {
  readonly prefix: string;
  readonly timeout: number;
  readonly clock: RedisClock;
  readonly clockSync: ClockSync;
  readonly scripts: RedisScripts;
  readonly bounded: Bounded;
}

/** The fleet's windows on Redis: `${prefix}{name}:window`, flushed and read by `flushWindow-2.lua`. */
export class RedisWindows {
  readonly #host: WindowHost;
  /** Flush ids: unique to this store, numbered. */
  readonly #flushPrefix = `${Math.random().toString(36).slice(2, 10)}.`;
  #flushes = 0;

  constructor(host: WindowHost) {
    this.#host = host;
  }

  /** Adds an instance's counts and answers the fleet's totals (see `RedisStore.flushWindow`). */
  async flush(name: string, flush: WindowFlush): Promise<FleetTotals> {
    const { prefix, timeout, clock, scripts, bounded } = this.#host;
    // On server time, as a write's deadline: a flush this store gave up on must not land later.
    await this.#host.clockSync.whenSynced();
    const flushId = `${this.#flushPrefix}${(++this.#flushes).toString(36)}`;
    const args = flushWindowArgs(
      windowKey(prefix, name),
      windowFlushKey(prefix, name, flushId),
      flush,
      clock.now() + timeout + FLUSH_GRACE_MS,
      timeout + 2 * FLUSH_GRACE_MS,
    );
    return fleetTotals(await bounded(scripts.flushWindow(...args), 'flushWindow'));
  }

  /**
   * The fleet's totals for a generation, adding nothing: the flush script run past its deadline,
   * which only reads (and drops buckets that left the window).
   */
  async read(name: string, read: WindowRead): Promise<WindowCounts> {
    const { prefix, scripts, bounded } = this.#host;
    const nothing = { ...read, calls: 0, failures: 0, slow: 0, instance: '', flushMs: 0 };
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
