import type { BreakerEvent } from '../machine.js';

/**
 * The most unconfirmed events kept per breaker. Only a conflict replays them, onto a record
 * another instance wrote; while the store is away a busy breaker makes thousands, and replaying
 * them all would hold the event loop for seconds when it returns. Past this bound the oldest
 * are dropped: their effect stays in the local snapshot, which is written as it is when nobody
 * else wrote meanwhile, and the fleet's newer record wins over it when somebody did.
 */
export const MAX_PENDING = 256;

const OPERATOR_EVENTS: ReadonlySet<BreakerEvent['type']> = new Set([
  'FORCE_OPEN',
  'DISABLE',
  'RESET',
]);

interface Entry {
  readonly seq: number;
  readonly event: BreakerEvent;
}

/**
 * The events this instance applied that no confirmed write holds yet, each with a sequence
 * number, so that a write knows which of them it carried and an answer that arrives twice (the
 * reply and the feed message) confirms them once.
 */
export class PendingEvents {
  #entries: Entry[] = [];
  #next = 1;
  #confirmed = 0;

  /** How many events are pending. */
  get size(): number {
    return this.#entries.length;
  }

  /** The sequence number of the newest event pushed. */
  get lastSeq(): number {
    return this.#next - 1;
  }

  /** Adds an event; returns its sequence number. */
  push(event: BreakerEvent): number {
    if (this.#entries.length >= MAX_PENDING) this.#entries.shift();
    const seq = this.#next++;
    this.#entries.push({ seq, event });
    return seq;
  }

  /** Drops every event up to `seq`: a write that carried them landed. */
  confirmUpTo(seq: number): void {
    if (seq > this.#confirmed) this.#confirmed = seq;
    let drop = 0;
    while (drop < this.#entries.length && (this.#entries[drop] as Entry).seq <= seq) drop++;
    if (drop > 0) this.#entries.splice(0, drop);
  }

  /** Whether event `seq` is in a confirmed write (`true`), dropped (`false`) or still pending. */
  fate(seq: number): boolean | undefined {
    if (this.#entries.some((entry) => entry.seq === seq)) return undefined;
    return seq <= this.#confirmed;
  }

  /**
   * Applies the events again in order (onto an adopted record) and keeps those that still
   * change something; an event the adopted record makes a no-op (a probe with no slot left)
   * must not come back at a later replay.
   */
  /**
   * Whether an operator's event (`FORCE_OPEN`, `DISABLE`, `RESET`) is pending: its write must
   * land whatever the fleet's write rate, so it is written with a fence.
   */
  get holdsOperatorEvent(): boolean {
    return this.#entries.some(({ event }) => OPERATOR_EVENTS.has(event.type));
  }

  replay(apply: (event: BreakerEvent) => boolean): void {
    const entries = this.#entries;
    this.#entries = [];
    for (const entry of entries) if (apply(entry.event)) this.#entries.push(entry);
  }
}
