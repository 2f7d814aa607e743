import { type Clock, systemClock } from '../clock.js';

/** Answers Redis `TIME`: seconds and microseconds. */
export type ServerTime = () => Promise<ReadonlyArray<string | number>>;

/**
 * Redis server time, as this host's clock plus an offset measured with `TIME`, so that
 * breakers on hosts with skewed clocks agree on `openedAt`, delays and probe leases.
 * Timers are the host's (durations do not depend on the offset) and never keep a process alive.
 */
export class RedisClock implements Clock {
  readonly #hostNow: () => number;
  #offset = 0;
  #roundTrip = Number.POSITIVE_INFINITY;
  #synced = false;

  constructor(hostNow: () => number) {
    this.#hostNow = hostNow;
  }

  now(): number {
    return this.#hostNow() + this.#offset;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    return systemClock.setTimeout(fn, ms);
  }

  clearTimeout(handle: unknown): void {
    systemClock.clearTimeout(handle);
  }

  /** Whether the offset has been measured at least once. */
  get synced(): boolean {
    return this.#synced;
  }

  /** Milliseconds from this host's clock to the server's (last measurement). */
  get offset(): number {
    return this.#offset;
  }

  /** The round trip of the last measurement, in ms: the offset's error is at most half of it. */
  get roundTrip(): number {
    return this.#roundTrip;
  }

  /**
   * Measures the offset `samples` times and keeps the sample with the shortest round trip.
   * The server read its time somewhere between send and receive; the midpoint is the best
   * guess, off by at most half the round trip.
   */
  async sync(time: ServerTime, samples = 1): Promise<void> {
    let best: { offset: number; roundTrip: number } | null = null;
    for (let i = 0; i < samples; i++) {
      const sent = this.#hostNow();
      const [seconds, micros] = await time();
      const received = this.#hostNow();
      const server = Number(seconds) * 1000 + Number(micros) / 1000;
      const roundTrip = received - sent;
      if (best === null || roundTrip < best.roundTrip) {
        best = { offset: Math.round(server - (sent + received) / 2), roundTrip };
      }
    }
    if (best === null) return;
    this.#offset = best.offset;
    this.#roundTrip = best.roundTrip;
    this.#synced = true;
  }
}
