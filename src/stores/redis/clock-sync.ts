import type { RedisClock, ServerTime } from './clock.js';

// Offset samples at first sync: the shortest round trip gives the tightest bound.
const FIRST_SYNC_SAMPLES = 3;

/** When the store reads the server's time: first, before a write when in doubt, periodically. */
export class ClockSync {
  readonly #clock: RedisClock;
  readonly #time: ServerTime;
  #syncing: Promise<void> | null = null;
  #suspect = false;

  /** @param time reads `TIME`, bounded by the store's timeout */
  constructor(clock: RedisClock, time: ServerTime) {
    this.#clock = clock;
    this.#time = time;
  }

  /** Reads the server's time a few times, once at start. */
  start(): void {
    this.sync(FIRST_SYNC_SAMPLES).catch(() => {});
  }

  /** Settles once the server's time has been read. */
  whenSynced(): Promise<void> {
    if (this.#clock.synced) return Promise.resolve();
    return this.#syncing ?? this.sync(FIRST_SYNC_SAMPLES);
  }

  /**
   * Before a write with a deadline on server time: never before the clock has been read, and
   * read again after a failure or when the wall clock jumped (a suspended process, say).
   */
  async fresh(): Promise<void> {
    await this.whenSynced();
    if (this.#suspect || this.#clock.stepSuspected) {
      this.#suspect = false;
      await this.sync(1);
    }
  }

  /** A write failed: the next one reads the server's time first. */
  suspect(): void {
    this.#suspect = true;
  }

  sync(samples: number): Promise<void> {
    if (this.#syncing !== null) return this.#syncing;
    this.#syncing = this.#clock.sync(this.#time, samples).finally(() => {
      this.#syncing = null;
    });
    return this.#syncing;
  }
}
