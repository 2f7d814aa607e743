import { performance } from 'node:perf_hooks';
import type { Cluster } from 'ioredis';

// When the slot map is read again after a sharded subscriber's error, besides at once.
const REFRESH_AGAIN_MS = [1_000, 5_000];
// While a master is down ioredis replaces its subscriber and says `subscribersReady` every few
// tens of milliseconds: the feed hears of it at most this often (and once after the last).
const RECONNECTED_EVERY_MS = 500;

/** A sharded subscription as the watch sees it. */
export interface WatchedShard {
  /** Slot maps the Cluster client had read when its SSUBSCRIBE went out (see `stamp`). */
  readonly sentAt: number;
  /** Whether the SSUBSCRIBE was answered (acknowledged or refused). */
  readonly answered: boolean;
  /** Counts it as made. */
  release(): void;
}

/** What the watch tells the feed and asks of it. */
export interface ShardWatchTarget {
  /** The feed's subscriptions. */
  shards(): Iterable<WatchedShard>;
  /** The subscriptions were made again after a loss: messages published meanwhile are gone. */
  reconnected(): void;
}

/**
 * Follows ioredis's sharded subscribers (one connection per master, `shardedSubscribers`) of
 * one Cluster client through failovers and reshardings, where ioredis alone falls short:
 *
 * - A subscriber lost (its node failed) or moved (the slots changed hands): once ioredis has read
 *   the new slot map (`refresh`) and subscribed every channel again on its masters, it says
 *   `subscribersReady`. Messages published meanwhile are lost: the feed is told, at most every
 *   half second while ioredis keeps trying a dead master, and once after its last attempt.
 * - An SSUBSCRIBE that met MOVED is never answered by ioredis, which reads the slot map and
 *   subscribes it again: one sent before that map counts as made at its `subscribersReady`.
 *   (At start-up `subscribersReady` follows the first map, before any SSUBSCRIBE sent after it
 *   is answered: those are left to their answer.)
 * - A node that gives a slot away ends its subscriptions with a SUNSUBSCRIBE nobody asked for,
 *   which ioredis reports as a node error (a reply it did not expect) and does not act on; nor
 *   does it read its slot map again unless told to (`slotsRefreshInterval`). The watch reads it
 *   on such an error, at once and again later (the node asked may not know the new owner yet:
 *   the cluster bus spreads it within about a second), and on `refresh()`. Other node errors
 *   (a dead node's refused connections) ioredis handles itself, with a backoff the watch leaves
 *   alone.
 */
export class ShardWatch {
  readonly #connection: Cluster;
  readonly #target: ShardWatchTarget;
  #slotMaps = 0;
  #lost = false;
  #timers: ReturnType<typeof setTimeout>[] = [];
  #lastTold = Number.NEGATIVE_INFINITY;
  #telling: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(connection: Cluster, target: ShardWatchTarget) {
    this.#connection = connection;
    this.#target = target;
    connection.on('refresh', () => {
      this.#slotMaps++;
    });
    connection.on('-subscriber', () => {
      this.#lost = true;
    });
    connection.on('nodeError', (error: unknown) => {
      if (!/sunsubscribe/i.test(String(error))) return;
      this.#lost = true;
      this.#refreshSoon();
    });
    connection.on('subscribersReady', () => this.#onReady());
  }

  /** The `sentAt` of an SSUBSCRIBE sent now. */
  stamp(): number {
    // A Cluster that is not ready queues the command until it has read the next slot map.
    return this.#connection.status === 'ready' ? this.#slotMaps : this.#slotMaps + 1;
  }

  /** Reads the slot map again (one CLUSTER SLOTS). */
  refresh(): void {
    if (!this.#stopped) this.#connection.refreshSlotsCache();
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers = [];
    clearTimeout(this.#telling);
  }

  #onReady(): void {
    if (this.#stopped) return;
    let stuck = false;
    for (const shard of this.#target.shards()) {
      if (shard.answered || shard.sentAt >= this.#slotMaps) continue;
      stuck = true;
      shard.release();
    }
    if (!(this.#lost || stuck)) return;
    this.#lost = false;
    this.#tell();
  }

  #tell(): void {
    if (this.#telling !== undefined) return;
    const wait = this.#lastTold + RECONNECTED_EVERY_MS - performance.now();
    const tell = () => {
      this.#telling = undefined;
      if (this.#stopped) return;
      this.#lastTold = performance.now();
      this.#target.reconnected();
    };
    if (wait <= 0) {
      tell();
      return;
    }
    this.#telling = setTimeout(tell, wait);
    this.#telling.unref();
  }

  #refreshSoon(): void {
    this.refresh();
    if (this.#timers.length > 0 || this.#stopped) return;
    this.#timers = REFRESH_AGAIN_MS.map((ms) => {
      const timer = setTimeout(() => {
        this.#timers = this.#timers.filter((t) => t !== timer);
        this.refresh();
      }, ms);
      timer.unref();
      return timer;
    });
  }
}
