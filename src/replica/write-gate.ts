import type { BreakerStore } from '../stores/store.js';

/**
 * Compare-and-sets (and first reads of a record) a process keeps in flight at once on one store. A burst of transitions (a
 * provider outage opening thousands of breakers within a second, their open periods ending
 * together) would otherwise send every write at once: the last replies then come later than
 * the store's timeout although the store answers each one in microseconds, and the process
 * reports its own store degraded. Paced, each write's timeout covers its own round trip. The
 * same holds for the first reads of thousands of breakers created at once.
 */
export const WRITES_IN_FLIGHT = 64;

/** A place in the gate's queue. */
export interface Ticket {
  /** Lets the write go; `null` once it went or was dropped. */
  resolve: (() => void) | null;
  /** Whether the gate let it go (it then holds a place until `leave`). */
  granted: boolean;
}

/**
 * The writes of one store, at most {@link WRITES_IN_FLIGHT} out at once, in order, except
 * that a write someone waits for (a probe's admission) goes before the queued ones.
 */
export class WriteGate {
  #inFlight = 0;
  #queue: Ticket[] = [];
  #head = 0;
  #urgent: Ticket[] = [];

  /** A ticket to wait on, or `null` when the write may go at once. */
  enter(urgent: boolean): Ticket | null {
    if (this.#inFlight < WRITES_IN_FLIGHT) {
      this.#inFlight++;
      return null;
    }
    const ticket: Ticket = { resolve: null, granted: false };
    (urgent ? this.#urgent : this.#queue).push(ticket);
    return ticket;
  }

  /** Moves a waiting ticket ahead of the others (someone now waits for its write). */
  hurry(ticket: Ticket): void {
    // The same ticket in both queues: whichever meets it first lets it go, the other skips it.
    if (ticket.resolve !== null) this.#urgent.push(ticket);
  }

  /** A write that went out ended; the next queued one goes. */
  leave(): void {
    for (;;) {
      const next = this.#urgent.shift() ?? this.#next();
      if (next === undefined) {
        this.#inFlight--;
        return;
      }
      const resolve = next.resolve;
      if (resolve === null) continue;
      next.resolve = null;
      next.granted = true;
      resolve();
      return;
    }
  }

  /** Runs `request` (a first read of a record) in its turn. */
  async run<T>(request: () => Promise<T>): Promise<T> {
    const ticket = this.enter(false);
    if (ticket !== null) {
      await new Promise<void>((resolve) => {
        ticket.resolve = resolve;
      });
    }
    try {
      return await request();
    } finally {
      this.leave();
    }
  }

  /** Wakes a ticket's writer without letting its write go (the writer stopped). */
  drop(ticket: Ticket): void {
    const resolve = ticket.resolve;
    ticket.resolve = null;
    resolve?.();
  }

  #next(): Ticket | undefined {
    const queue = this.#queue;
    if (this.#head >= queue.length) return undefined;
    const next = queue[this.#head++];
    // Compact now and then rather than shift (a burst queues tens of thousands).
    if (this.#head > 1024 && this.#head * 2 > queue.length) {
      this.#queue = queue.slice(this.#head);
      this.#head = 0;
    }
    return next;
  }
}

const gates = new WeakMap<BreakerStore, WriteGate>();

/** The gate of `store`; `undefined` for an embedded store, which answers in the same turn. */
export function writeGateOf(store: BreakerStore): WriteGate | undefined {
  if (store.peek !== undefined) return undefined;
  let gate = gates.get(store);
  if (gate === undefined) {
    gate = new WriteGate();
    gates.set(store, gate);
  }
  return gate;
}
