import { performance } from 'node:perf_hooks';
import { LostRecordError } from '../../record/errors.js';
import { orderOf, type RecordStamp, stampOf, supersedes } from '../../record/order.js';
import type { StoredRecord, StoreFollower } from '../store.js';
import type { Decoded, RecordField, RecordProblem } from './codec.js';
import type { Bounded } from './errors.js';
import type { ChangeFeed } from './feed.js';
import { sequenceKey } from './keys.js';
import { heldText, type StampBatch, type StampCheck } from './node-stamps.js';
import type { ResolvedRedisStoreOptions } from './options.js';
import type { RedisPort } from './port.js';
import type { RecordReader } from './reader.js';

/** Batches of a resync's reads out at once (each one script call for up to 500 breakers). */
const SWEEP_READS_IN_FLIGHT = 4;

/** How a record's problem is told apart from another. */
export const problemText = (problem: RecordProblem) => `${problem.field}: ${problem.problem}`;

/** What gap detection and resync need of their store. */
export interface ResyncHost {
  readonly followers: ReadonlyMap<string, readonly StoreFollower[]>;
  /**
   * The last problem resync reported per name, so that a record nobody rewrites (an idle
   * breaker's) is reported once, not every resyncInterval.
   */
  readonly problems: Map<string, string>;
  readonly feed: ChangeFeed;
  readonly port: RedisPort;
  readonly reader: RecordReader;
  /** Reads the stamps a resync compares: per 500 breakers, per master of a Cluster. */
  readonly stamps: StampCheck;
  readonly bounded: Bounded;
  readonly options: ResolvedRedisStoreOptions;
  /** The decoded record, or `null` after reporting why there is none to use. */
  usable(name: string, decoded: Decoded): StoredRecord | null;
  closed(): boolean;
}

/**
 * Gap detection and resync. Classic change messages are numbered by `${prefix}seq` (standalone
 * Redis), so a lost one shows as a gap; every `resyncInterval` ms one GET of that counter tells
 * whether any was missed. On a gap, a counter that moved without a message, a reconnect, or
 * every `auditInterval` ms, a resync compares the stored version and write id of every followed
 * record with what each breaker holds (one script call per 500 breakers) and hands over only
 * what a breaker lacks.
 *
 * On a Cluster and under sharded pub/sub messages are not numbered (one counter cannot share a
 * slot with every breaker), and every check is such a resync. On standalone Redis one script
 * reads 500 stamps. On a Cluster, where a script's declared keys share one slot, the stamps are
 * compared where they live (`node-stamps.ts`): the followed breakers are grouped by the
 * master of their slot in the client's slot map, and one `compareStamps-1.lua` per master per
 * 500 breakers, sent with the stamps the breakers hold, reads the keys of every slot of its node
 * (Redis 7's `allow-cross-slot-keys`) and answers only the breakers that differ. 2,000 idle
 * breakers on 3 masters cost 6 commands a check (0.6/s at the default 10 s), not 2,000; Redis
 * still reads three keys per breaker inside them. Every record is read at every check, so what
 * a numbered message would reveal (a lost message) and what only reading does (a record lost,
 * cut in half or expired, a change behind the fleet's back) is found within one
 * `resyncInterval`. The script goes to the master over the client's connection to it, and a
 * slot that moved since the map was read, or is moving, makes it fail (a key its node no
 * longer serves, MOVED or ASK, none followed): that batch is read breaker by breaker, each call
 * routed by its own slot, and the client's map is right again for the next check. A server that
 * cannot compile the script (Redis 6) gets that breaker-by-breaker path for good.
 */
export class Resync {
  readonly #host: ResyncHost;
  /** The change counter of the last message seen; `null` until known. */
  #seq: number | null = null;
  /** Change messages seen, to tell whether any arrived while a resync ran. */
  #messages = 0;
  /** Signs of a missed message so far (gaps, reconnects, audits): a resync is owed for each. */
  #gaps = 0;
  /** `#gaps` as of the start of the last resync that read everything it meant to. */
  #healed = 0;
  #sweep: Promise<void> | null = null;
  /** `#gaps` as of the start of the running resync. */
  #sweepFrom = 0;
  #lastSweep = 0;
  #resyncRetry: ReturnType<typeof setTimeout> | undefined;
  #resyncRetryMs = 0;

  constructor(host: ResyncHost) {
    this.#host = host;
  }

  /**
   * Counts a numbered change message; `true` when its number does not follow the last one: a
   * message was lost (or the counter went back with lost data), and a resync is on its way.
   */
  numbered(seq: number): boolean {
    this.#messages++;
    const gap = this.#seq !== null && seq !== this.#seq + 1;
    if (gap) {
      this.#gaps++;
      this.resyncSoon();
    }
    this.#seq = seq;
    return gap;
  }

  /** The subscriber came back after a loss: messages published meanwhile are lost. */
  reconnected(): void {
    this.#gaps++;
    this.resync().catch(() => {});
  }

  /** Stops a pending retry. */
  stop(): void {
    clearTimeout(this.#resyncRetry);
    this.#resyncRetry = undefined;
  }

  /**
   * Compares every followed record with what its breakers hold and hands each breaker what it
   * lacks: a newer record, or a `LostRecordError` when Redis holds less than it had (flushed,
   * evicted, restored from an old dump). One script call per 500 breakers (per master per 500 on
   * a Cluster) reads versions and write ids; only records that differ are read whole. Runs on a
   * gap in the numbered change messages, on reconnect and every `auditInterval` ms; exposed for
   * tests and operators. Never rejects: what it cannot read, the next resync or write heals.
   */
  async resync(): Promise<void> {
    if (this.#host.closed() || this.#host.followers.size === 0) return;
    const wanted = this.#gaps;
    // A resync that started after every sign asked for serves; one that started before is
    // awaited, and another started after it.
    while (this.#sweep !== null) {
      const from = this.#sweepFrom;
      await this.#sweep;
      if (from >= wanted) return;
    }
    if (this.#host.closed() || this.#host.followers.size === 0) return;
    this.#sweepFrom = this.#gaps;
    this.#sweep = this.#sweepAll().finally(() => {
      this.#sweep = null;
    });
    await this.#sweep;
  }

  // Whether change messages are numbered: one counter cannot share a slot with every breaker
  // on a Cluster, and a store hears only the breakers it follows under sharded pub/sub.
  get #numbered(): boolean {
    return this.#host.feed.known === 'numbered';
  }

  async #sweepAll(): Promise<void> {
    const from = this.#sweepFrom;
    const messages = this.#messages;
    this.#lastSweep = performance.now();
    let complete = true;
    const fail = () => {
      complete = false;
    };
    // Subscribed before reading: any change after the read arrives through the feed. A feed that
    // is not back in time does not stop the read (it heals what it can), but the gap stays owed.
    await this.#host.bounded(this.#host.feed.ready(), 'resync').catch(fail);
    const names = [...this.#host.followers.keys()];
    // The counter is read first on the same connection: every change after that value reaches
    // this store as a numbered message.
    const counter = this.#numbered
      ? this.#host.bounded(this.#host.port.get(sequenceKey(this.#host.options.prefix)), 'resync')
      : Promise.resolve(null);
    counter.catch(fail);
    // A few batches out at once, each sent when one comes back: sent all at once, the reads of
    // many breakers (a gap met in a burst of writes) queue on the connection ahead of the store's
    // own compare-and-sets, past their timeout and their own, and their replies are judged in
    // one long turn of the event loop. On a Cluster a batch is one master's (see node-stamps).
    const batches = this.#host.stamps.batches(names);
    let next = 0;
    const reads = async () => {
      while (next < batches.length) {
        const batch = batches[next++] as StampBatch;
        await this.batch(batch).catch(fail);
      }
    };
    const inFlight = Math.min(SWEEP_READS_IN_FLIGHT, batches.length);
    await Promise.all(Array.from({ length: inFlight }, reads));
    const raw = await counter.catch(() => null);
    // What cannot be read now stays owed: tried again after a pause that starts at the store's
    // timeout and doubles up to resyncInterval, so a brief slowdown costs a moment, not a whole
    // interval, and a long outage queues no stream of reads for ioredis to send on reconnect.
    if (!complete) {
      this.#retryResync();
      return;
    }
    this.#resyncRetryMs = 0;
    this.#healed = Math.max(this.#healed, from);
    // Count from the counter read, unless messages came meanwhile (the gap check has judged
    // them). After lost data the counter went back, and counting goes on from there.
    if (this.#numbered && this.#messages === messages) this.#seq = raw === null ? 0 : Number(raw);
  }

  /**
   * Runs a read of records and, when the store does not know the change counter yet, reads it
   * just before on the same connection: every change after that value reaches this store as a
   * numbered message, so counting can start from it without missing one.
   */
  async counted<T>(read: () => Promise<T>): Promise<T> {
    if (!this.#numbered || this.#seq !== null) return read();
    const counter = this.#host.port.get(sequenceKey(this.#host.options.prefix));
    const [raw, result] = await Promise.all([counter, read()]);
    this.#seq ??= raw === null ? 0 : Number(raw);
    return result;
  }

  // The periodic check: one GET of the change counter tells whether any message was missed; on a
  // Cluster, a resync (one script per master per 500 breakers).
  async check(): Promise<void> {
    if (this.#host.closed() || this.#host.followers.size === 0) return;
    const audit = performance.now() - this.#lastSweep >= this.#host.options.auditInterval;
    if (!this.#numbered || audit) this.#gaps++;
    this.#host.feed.refreshRoutes();
    if (this.#gaps > this.#healed) return this.resync();
    const raw = await this.#host.bounded(
      this.#host.port.get(sequenceKey(this.#host.options.prefix)),
      'resync',
    );
    const stored = raw === null ? 0 : Number(raw);
    if (this.#seq === null) {
      // Nothing counted yet: what was loaded is current; count from here.
      this.#seq = stored;
      return;
    }
    // Moved without a message reaching us (or went back with lost data). A message still on its
    // way is not lost: a resync only when the messages stop short.
    if (stored === this.#seq) return;
    const caughtUp = () => this.#seq !== null && this.#seq >= stored;
    // Messages that keep coming are a burst being worked through: waited for as long as they
    // come, and judged lost once none has come for the store's timeout. Each look reads the
    // messages already waiting first (a busy process's timer fires before it reads its sockets).
    if (stored > this.#seq) {
      const timeout = this.#host.options.timeout;
      let quietSince = performance.now();
      for (let seen = this.#messages; ; seen = this.#messages) {
        await new Promise((resolve) => setTimeout(() => setImmediate(resolve), 20).unref());
        if (caughtUp()) return;
        const now = performance.now();
        if (this.#messages !== seen) quietSince = now;
        else if (now - quietSince > timeout) break;
      }
    }
    this.#gaps++;
    await this.resync();
  }

  resyncSoon(): void {
    setImmediate(() => this.resync().catch(() => {}));
  }

  /**
   * Compares the records of `batch` with what their followers hold and hands each what it
   * lacks. Only the records whose stamp differs are read whole.
   */
  async batch(batch: StampBatch): Promise<void> {
    const { names } = batch;
    // What each follower held when the read was sent: a stored record older than that means
    // Redis lost data; one that a follower got from the feed after the read is no sign of it.
    const held = names.map((name) =>
      (this.#host.followers.get(name) ?? []).map((follower) => follower.stamp?.() ?? null),
    );
    const texts = names.map((name, i) => heldText(held[i] ?? [], this.#host.problems.has(name)));
    const stamps = await this.#host.bounded(this.#host.stamps.stamps(batch, texts), 'resync');
    const differing: number[] = [];
    // A breaker the read left out holds what is stored.
    for (const [i, stored] of stamps) {
      const same = (held[i] ?? []).every((stamp) =>
        stored === null ? stamp === null : stamp !== null && orderOf(stored, stamp) === 'same',
      );
      if (!same || this.#host.problems.has(names[i] as string)) differing.push(i);
    }
    differing.sort((a, b) => a - b);
    if (differing.length === 0) return;
    const decoded = await this.#host.bounded(
      this.#host.reader.readMany(differing.map((i) => names[i] as string)),
      'resync',
    );
    differing.forEach((i, k) => {
      this.#resynced(names[i] as string, decoded[k] ?? { record: null }, held[i] ?? []);
    });
  }

  // Hands each follower what it lacks, judged against what it held when the read was sent.
  #resynced(name: string, decoded: Decoded, held: readonly (RecordStamp | null)[]): void {
    const followers = this.#host.followers.get(name);
    if (followers === undefined) return;
    const { problem } = decoded;
    const seen = Math.max(0, ...held.map((stamp) => stamp?.version ?? 0));
    // Half a record (one key evicted or expired) is lost data, not garbage: the breakers holding
    // it write it back at once.
    if (problem?.missing && seen > 0) {
      this.#host.problems.delete(name);
      this.#lost(name, problem.field, 0, held);
      return;
    }
    if (problem !== undefined && this.#host.problems.get(name) === problemText(problem)) return;
    const record = this.#host.usable(name, decoded);
    if (problem !== undefined) return;
    if (record === null) {
      this.#lost(name, 'version', 0, held);
      return;
    }
    const stored = stampOf(record);
    followers.forEach((follower, i) => {
      const stamp = held[i] ?? null;
      if (supersedes(stored, stamp)) follower.record(record);
      else if (stamp !== null && orderOf(stored, stamp) === 'older') {
        follower.problem?.(
          new LostRecordError(
            name,
            this.#host.reader.keys(name).version,
            stored.version,
            stamp.version,
          ),
        );
      }
    });
  }

  #lost(
    name: string,
    field: RecordField,
    storedVersion: number,
    held: readonly (RecordStamp | null)[],
  ): void {
    const key = this.#host.reader.keys(name)[field];
    (this.#host.followers.get(name) ?? []).forEach((follower, i) => {
      const stamp = held[i] ?? null;
      const seen = stamp?.version ?? 0;
      if (seen <= storedVersion) return;
      // An idle record that expired was not lost: nothing is owed back.
      if (storedVersion === 0 && stamp?.lapses === true) follower.lapsed?.(stamp);
      else follower.problem?.(new LostRecordError(name, key, storedVersion, seen));
    });
  }

  #retryResync(): void {
    if (this.#resyncRetry !== undefined || this.#host.closed()) return;
    this.#resyncRetryMs = Math.min(
      Math.max(this.#host.options.timeout, this.#resyncRetryMs * 2),
      this.#host.options.resyncInterval,
    );
    this.#resyncRetry = setTimeout(() => {
      this.#resyncRetry = undefined;
      if (this.#gaps > this.#healed) this.resync().catch(() => {});
    }, this.#resyncRetryMs);
    this.#resyncRetry.unref();
  }
}
