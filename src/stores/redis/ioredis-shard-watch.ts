import { performance } from 'node:perf_hooks';
import type { Cluster } from 'ioredis';

// Waits between the rounds that read the slot map and subscribe a lost channel again (the first
// round comes at once), the last one repeated until a node acknowledges the channel. The node
// asked for the map may not know a move yet (the cluster bus spreads it within about a second,
// more under load), so a round can come too early; only an acknowledgement ends the rounds.
const RESUBSCRIBE_AGAIN_MS = [250, 1_000, 2_000, 5_000, 10_000];
// While a master is down ioredis replaces its subscriber and says `subscribersReady` every few
// tens of milliseconds: the feed hears of it at most this often (and once after the last).
const RECONNECTED_EVERY_MS = 500;
// How ioredis 5 reports a SUNSUBSCRIBE it did not ask for: a reply it cannot match to a command,
// `… Last reply: sunsubscribe,<channel>,<count>`.
const ENDED_CHANNEL = /Last reply: sunsubscribe,([\s\S]*),\d+$/;

/** A sharded subscription as the watch sees it. */
export interface WatchedShard {
  readonly channel: string;
  /** Slot maps the Cluster client had read when its SSUBSCRIBE went out (see `stamp`). */
  readonly sentAt: number;
  /** Whether the SSUBSCRIBE was answered (acknowledged or refused). */
  readonly answered: boolean;
  /** Counts it as made. */
  release(): void;
  /** A later SSUBSCRIBE of the channel was acknowledged: answered, and made. */
  confirm(): void;
}

/** What the watch tells the feed and asks of it. */
export interface ShardWatchTarget {
  /** The feed's subscriptions. */
  shards(): Iterable<WatchedShard>;
  /** The subscription of `channel`, while the feed holds one. */
  shard(channel: string): WatchedShard | undefined;
  /** The subscriptions were made again after a loss: messages published meanwhile are gone. */
  reconnected(): void;
}

/**
 * Whether a node error of ioredis is a SUNSUBSCRIBE nobody asked for: `null` when it is not,
 * else the channel it ended (`undefined` when the error does not say).
 */
export function endedChannel(error: unknown): string | null | undefined {
  const text = error instanceof Error ? error.message : String(error);
  if (!/sunsubscribe/i.test(text)) return null;
  return ENDED_CHANNEL.exec(text)?.[1];
}

/**
 * Follows ioredis's sharded subscribers (one connection per master, `shardedSubscribers`) of
 * one Cluster client through failovers and reshardings, where ioredis alone falls short:
 *
 * - A subscriber lost (its node failed) or moved (the slots changed hands): once ioredis has read
 *   the new slot map (`refresh`) and subscribed every channel again on its masters, it says
 *   `subscribersReady`. Messages published meanwhile are lost: the feed is told, at most every
 *   half second while ioredis keeps trying a dead master, and once after its last attempt.
 * - A node that gives a slot away ends its subscriptions with a SUNSUBSCRIBE nobody asked for;
 *   so does a node told again that a slot it holds is its own (Redis 7.0 on
 *   `CLUSTER SETSLOT <slot> NODE <itself>`, as a resharding tool may send to every master).
 *   ioredis reports it as a node error and does not act on it; nor does it subscribe anything
 *   again after reading a slot map that looks unchanged (the node asked did not know the move
 *   yet, or the slot never moved). The watch subscribes each channel ended so again itself,
 *   after reading the slot map, in rounds until a node acknowledges it (see
 *   `RESUBSCRIBE_AGAIN_MS`); the feed is then told, as after a loss.
 * - An SSUBSCRIBE that met MOVED is never answered by ioredis, which reads the slot map and
 *   subscribes it again only if the map changed: one sent before that map counts as made at its
 *   `subscribersReady`, and is subscribed again in rounds too, until acknowledged. (At start-up
 *   `subscribersReady` follows the first map, before any SSUBSCRIBE sent after it is answered:
 *   those are left to their answer.)
 * - Other node errors (a dead node's refused connections) ioredis handles itself, with a backoff
 *   the watch leaves alone.
 */
export class ShardWatch {
  readonly #connection: Cluster;
  readonly #target: ShardWatchTarget;
  #slotMaps = 0;
  #lost = false;
  /** Channels to subscribe again until a node acknowledges them. */
  readonly #unconfirmed = new Set<string>();
  #rounds = 0;
  #nextRound: ReturnType<typeof setTimeout> | undefined;
  #lastTold = Number.NEGATIVE_INFINITY;
  #telling: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(connection: Cluster, target: ShardWatchTarget) {
    this.#connection = connection;
    this.#target = target;
    connection.on('refresh', () => {
      this.#slotMaps++;
      this.#onSlotMap();
    });
    connection.on('-subscriber', () => {
      this.#lost = true;
    });
    connection.on('nodeError', (error: unknown) => {
      const channel = endedChannel(error);
      if (channel === null) return;
      this.#resubscribe(channel === undefined ? this.#held() : [channel]);
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
    clearTimeout(this.#nextRound);
    this.#nextRound = undefined;
    this.#unconfirmed.clear();
    clearTimeout(this.#telling);
  }

  #held(): string[] {
    return [...this.#target.shards()].map((shard) => shard.channel);
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

  // An SSUBSCRIBE sent before this map and still unanswered most likely met MOVED, and a map
  // that looked unchanged to ioredis leaves it so: subscribed again until acknowledged.
  #onSlotMap(): void {
    if (this.#stopped) return;
    const stuck: string[] = [];
    for (const shard of this.#target.shards()) {
      if (!shard.answered && shard.sentAt < this.#slotMaps) stuck.push(shard.channel);
    }
    if (stuck.length > 0) this.#resubscribe(stuck);
  }

  #resubscribe(channels: Iterable<string>): void {
    if (this.#stopped) return;
    for (const channel of channels) this.#unconfirmed.add(channel);
    if (this.#nextRound === undefined) this.#round();
  }

  // One round: reads the slot map (or waits for the read under way: a read asked for meanwhile
  // is none), then sends SSUBSCRIBE of every channel still unconfirmed to the master the map
  // names. A stale map sends it to the old owner, whose MOVED ioredis drops: the next round
  // tries again. Subscribing an acknowledged channel again is harmless (Redis acknowledges it).
  #round(): void {
    this.#nextRound = undefined;
    if (this.#stopped) return;
    for (const channel of this.#unconfirmed) {
      if (this.#target.shard(channel) === undefined) this.#unconfirmed.delete(channel);
    }
    if (this.#unconfirmed.size === 0) {
      this.#rounds = 0;
      return;
    }
    const channels = [...this.#unconfirmed];
    this.#connection.refreshSlotsCache(() => {
      for (const channel of channels) {
        if (this.#stopped || !this.#unconfirmed.has(channel)) continue;
        if (this.#target.shard(channel) === undefined) continue;
        this.#connection.ssubscribe(channel).then(
          () => this.#confirmed(channel),
          () => {},
        );
      }
    });
    const wait = RESUBSCRIBE_AGAIN_MS[Math.min(this.#rounds, RESUBSCRIBE_AGAIN_MS.length - 1)];
    this.#rounds++;
    this.#nextRound = setTimeout(() => this.#round(), wait);
    this.#nextRound.unref();
  }

  #confirmed(channel: string): void {
    if (this.#stopped || !this.#unconfirmed.delete(channel)) return;
    this.#target.shard(channel)?.confirm();
    if (this.#unconfirmed.size > 0) return;
    clearTimeout(this.#nextRound);
    this.#nextRound = undefined;
    this.#rounds = 0;
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
}
