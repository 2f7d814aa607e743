import type { Clock } from '../clock.js';
import {
  type BreakerConfig,
  type BreakerEvent,
  failureRateReached,
  slowCallRateReached,
  type WindowCounts,
} from '../machine.js';
import type { BreakerStore } from '../stores/store.js';
import { bucketOf, firstLiveBucket, WINDOW_BUCKETS } from './buckets.js';

/** What a window needs of its breaker instance. */
export interface WindowHost {
  /** The generation of the local statechart: a window counts one generation's calls. */
  readonly generation: number;
  /** Sends an event to the local statechart (a `WINDOW` event with the counts). */
  send(event: BreakerEvent): boolean;
  /** The store did not answer a flush (reported once until a flush succeeds again). */
  storeError(error: unknown): void;
}

interface Counts {
  calls: number;
  failures: number;
  slow: number;
}

const zero = (): Counts => ({ calls: 0, failures: 0, slow: 0 });

/**
 * One instance's side of the rate rules. Counting an outcome is a few increments: no clock, no
 * store, no statechart. Counts are flushed to the store `windowFlush` ms after the first one not
 * yet flushed (so a timer runs only while counts wait), or at once when this instance's own
 * window crosses a threshold (at most once per `windowFlush`); the store answers with the
 * fleet's totals in the same round trip, and the statechart decides on them (`WINDOW`). When the
 * store fails, or has no window, the instance decides on its own window.
 */
export class LocalWindow {
  readonly #name: string;
  readonly #config: BreakerConfig;
  readonly #window: number;
  readonly #flushMs: number;
  readonly #instance: string;
  readonly #store: BreakerStore;
  readonly #clock: Clock;
  readonly #host: WindowHost;
  #generation = -1;
  /** Counted since the last flush. */
  #pending = zero();
  /** Flushed counts of this instance, by bucket (a ring of one window plus the current). */
  #ring: Counts[] = [];
  #ringBuckets: number[] = [];
  /** The sum of the ring's live buckets as of the last flush. */
  #local = zero();
  #timer: unknown;
  #flushing: Promise<void> | null = null;
  #lastEarly = Number.NEGATIVE_INFINITY;
  /** Reused by the threshold check, which runs on every counted call past `minimumCalls`. */
  readonly #scratch = { calls: 0, failures: 0, slow: 0, failingInstances: 1, slowInstances: 1 };
  #failing = false;
  #disposed = false;

  /**
   * @param instance this instance's id, told to the store when a quorum needs instances apart
   */
  constructor(
    name: string,
    config: BreakerConfig,
    windowFlush: number,
    instance: string,
    store: BreakerStore,
    clock: Clock,
    host: WindowHost,
  ) {
    this.#name = name;
    this.#config = config;
    this.#window = config.window as number;
    this.#flushMs = windowFlush;
    this.#instance = (config.quorum ?? 1) > 1 ? instance : '';
    this.#store = store;
    this.#clock = clock;
    this.#host = host;
  }

  /** Counts one outcome of a call admitted in `closed` under the current `generation`. */
  count(generation: number, failed: boolean, slow: boolean): void {
    if (generation !== this.#generation) this.#restart(generation);
    const pending = this.#pending;
    pending.calls++;
    if (failed) pending.failures++;
    if (slow) pending.slow++;
    if (this.#timer === undefined) {
      this.#timer = this.#clock.setTimeout(() => {
        this.#timer = undefined;
        this.#flushSoon();
      }, this.#flushMs);
    }
    const local = this.#local;
    const calls = local.calls + pending.calls;
    if (calls < (this.#config.minimumCalls ?? 1) || this.#flushing !== null) return;
    const counts = this.#scratch;
    counts.calls = calls;
    counts.failures = local.failures + pending.failures;
    counts.slow = local.slow + pending.slow;
    if (failureRateReached(this.#config, counts) || slowCallRateReached(this.#config, counts)) {
      const now = this.#clock.now();
      if (now - this.#lastEarly < this.#flushMs) return;
      this.#lastEarly = now;
      this.#flushSoon();
    }
  }

  /**
   * Flushes the counts not yet flushed and lets the statechart decide on the totals; settles when
   * done (with a flush already running, after it and one more if counts came meanwhile).
   */
  async flush(): Promise<void> {
    while (this.#flushing !== null) await this.#flushing;
    if (this.#pending.calls === 0 || this.#disposed) return;
    this.#flushing = this.#flushOnce().finally(() => {
      this.#flushing = null;
    });
    await this.#flushing;
  }

  // A flush nobody awaits: whatever goes wrong is reported, never an unhandled rejection.
  #flushSoon(): void {
    this.flush().catch((error: unknown) => {
      if (!this.#disposed) this.#host.storeError(error);
    });
  }

  /** Stops the flush timer; counts not flushed are dropped. */
  dispose(): void {
    this.#disposed = true;
    this.#clearTimer();
  }

  async #flushOnce(): Promise<void> {
    this.#clearTimer();
    const generation = this.#generation;
    // The statechart left the generation these counts belong to: they count no more.
    if (generation !== this.#host.generation) {
      this.#restart(this.#host.generation);
      return;
    }
    const counts = this.#pending;
    this.#pending = zero();
    const at = this.#clock.now();
    this.#record(counts, at);
    let totals: WindowCounts;
    const flushWindow = this.#store.flushWindow;
    if (flushWindow === undefined) {
      totals = this.#localTotals();
    } else {
      try {
        totals = await flushWindow.call(this.#store, this.#name, {
          generation,
          at,
          window: this.#window,
          instance: this.#instance,
          ...counts,
        });
        this.#failing = false;
      } catch (error) {
        // The store did not answer: this instance decides on what it saw itself.
        if (!this.#failing && !this.#disposed) this.#host.storeError(error);
        this.#failing = true;
        totals = this.#localTotals();
      }
    }
    if (this.#disposed || generation !== this.#host.generation) return;
    this.#host.send({ type: 'WINDOW', generation, ...totals, at: this.#clock.now() });
  }

  // A new generation: a closed period starts with an empty window.
  #restart(generation: number): void {
    this.#generation = generation;
    this.#pending = zero();
    this.#ring = [];
    this.#ringBuckets = [];
    this.#local = zero();
    this.#clearTimer();
  }

  // Adds flushed counts to the ring at the bucket of `at`, and sums the buckets still live.
  #record(counts: Counts, at: number): void {
    const bucket = bucketOf(at, this.#window);
    const slot = ((bucket % (WINDOW_BUCKETS + 1)) + WINDOW_BUCKETS + 1) % (WINDOW_BUCKETS + 1);
    if (this.#ringBuckets[slot] !== bucket) {
      this.#ringBuckets[slot] = bucket;
      this.#ring[slot] = zero();
    }
    const held = this.#ring[slot] as Counts;
    held.calls += counts.calls;
    held.failures += counts.failures;
    held.slow += counts.slow;
    const first = firstLiveBucket(at, this.#window);
    const local = zero();
    this.#ringBuckets.forEach((b, i) => {
      const entry = this.#ring[i];
      if (entry === undefined || b < first) return;
      local.calls += entry.calls;
      local.failures += entry.failures;
      local.slow += entry.slow;
    });
    this.#local = local;
  }

  #localTotals(): WindowCounts {
    const { calls, failures, slow } = this.#local;
    return this.#totals(calls, failures, slow);
  }

  #totals(calls: number, failures: number, slow: number): WindowCounts {
    return {
      calls,
      failures,
      slow,
      failingInstances: failures > 0 ? 1 : 0,
      slowInstances: slow > 0 ? 1 : 0,
    };
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
