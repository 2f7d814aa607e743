import { performance } from 'node:perf_hooks';
import { type Clock, systemClock } from '../../clock.js';

/** Answers Redis `TIME`: seconds and microseconds. */
export type ServerTime = () => Promise<ReadonlyArray<string | number>>;

// A change of this much between the wall clock and the monotonic clock since the last
// measurement means one of them jumped: NTP stepped the wall clock, or the process was
// suspended (the monotonic clock stops while a VM or laptop sleeps; server time does not).
const STEP_MS = 1_000;

/**
 * Redis server time, so that breakers on hosts with skewed clocks agree on `openedAt`, delays
 * and probe leases. The server's time is read with `TIME`; between readings, elapsed time is
 * measured on this process's monotonic clock (`performance.now()`), never on the wall clock,
 * so a wall clock that steps (NTP, a VM resuming) does not move it. Until the first reading it
 * is the host's wall clock. Timers are the host's (durations do not depend on the offset) and
 * never keep a process alive.
 */
export class RedisClock implements Clock {
  readonly #hostNow: () => number;
  readonly #monotonicNow: () => number;
  /** Server time at `#monotonicBase`. */
  #base: number;
  #monotonicBase: number;
  /** Wall clock minus monotonic clock at the last reading: moves when either one jumps. */
  #wallGap: number;
  #roundTrip = Number.POSITIVE_INFINITY;
  #synced = false;

  /**
   * @param hostNow this host's wall clock, only to start from and to notice steps
   * @param monotonicNow a clock that never steps, in ms (`performance.now()`)
   */
  constructor(hostNow: () => number, monotonicNow: () => number = () => performance.now()) {
    this.#hostNow = hostNow;
    this.#monotonicNow = monotonicNow;
    this.#monotonicBase = monotonicNow();
    this.#base = hostNow();
    this.#wallGap = this.#base - this.#monotonicBase;
  }

  now(): number {
    return Math.round(this.#base + (this.#monotonicNow() - this.#monotonicBase));
  }

  setTimeout(fn: () => void, ms: number): unknown {
    return systemClock.setTimeout(fn, ms);
  }

  clearTimeout(handle: unknown): void {
    systemClock.clearTimeout(handle);
  }

  /** Whether the server's time has been read at least once. */
  get synced(): boolean {
    return this.#synced;
  }

  /** Milliseconds from this host's wall clock to the server's, as of now. */
  get offset(): number {
    return this.now() - this.#hostNow();
  }

  /** The round trip of the last reading, in ms: the clock's error is at most half of it. */
  get roundTrip(): number {
    return this.#roundTrip;
  }

  /**
   * Whether the wall clock and the monotonic clock drifted apart by more than a second since
   * the last reading: a step or a suspend happened, and the server's time should be read again.
   */
  get stepSuspected(): boolean {
    return Math.abs(this.#hostNow() - this.#monotonicNow() - this.#wallGap) > STEP_MS;
  }

  /**
   * Reads the server's time `samples` times and keeps the reading with the shortest round
   * trip. The server read its time somewhere between send and receive; the midpoint is the
   * best guess, off by at most half the round trip.
   */
  async sync(time: ServerTime, samples = 1): Promise<void> {
    let best: { server: number; at: number; roundTrip: number } | null = null;
    for (let i = 0; i < samples; i++) {
      const sent = this.#monotonicNow();
      const [seconds, micros] = await time();
      const received = this.#monotonicNow();
      const server = Number(seconds) * 1000 + Number(micros) / 1000;
      const roundTrip = received - sent;
      if (best === null || roundTrip < best.roundTrip) {
        best = { server, at: (sent + received) / 2, roundTrip };
      }
    }
    if (best === null) return;
    this.#base = best.server;
    this.#monotonicBase = best.at;
    this.#wallGap = this.#hostNow() - this.#monotonicNow();
    this.#roundTrip = best.roundTrip;
    this.#synced = true;
  }
}
