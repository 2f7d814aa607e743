import type { Clock } from '../clock.js';
import {
  type BreakerConfig,
  type BreakerEvent,
  failureRateReached,
  slowCallRateReached,
  type WindowCounts,
} from '../machine.js';
import type { BreakerStore } from '../stores/store.js';
import { bucketOf, type FleetTotals, firstLiveBucket, WINDOW_BUCKETS } from './buckets.js';

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

// What a rate decision waits for beyond the other instances' flush period: their flush's round
// trip (twice the deciding flush's own) and this much for timers that fire late.
const DECISION_GRACE_MS = 20;

/**
 * One instance's side of the rate rules. Counting an outcome is a few increments: no clock, no
 * store, no statechart. Counts are flushed to the store `windowFlush` ms after the first one not
 * yet flushed (so a timer runs only while counts wait), at once for the first count of a closed
 * period (so that the fleet's window knows this instance counts), and at once when this
 * instance's own window crosses a threshold (at most once per `windowFlush`); the store answers
 * with the fleet's totals in the same round trip, and the statechart decides on them (`WINDOW`).
 *
 * Totals that reach a threshold while other instances count are not decided on at once: those
 * instances may hold calls they counted before the crossing for up to their `windowFlush`. The
 * decision waits that long (plus twice the flush's round trip and a grace) and reads the fleet's
 * totals again, without this instance's counts since the crossing (they wait for the next
 * flush). So a decision counts every call any instance counted before the crossing. An instance
 * alone in the window decides at once; so does an explicit {@link flush} (`settled()`). When the
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
  /** Whether this instance flushed counts in the current generation. */
  #joined = false;
  /** The timer of a rate decision waiting for the other instances' flushes. */
  #decision: unknown;
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
    this.#instance = instance;
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
    if (!this.#joined) {
      this.#joined = true;
      this.#flushSoon();
      return;
    }
    if (this.#timer === undefined) {
      this.#timer = this.#clock.setTimeout(() => {
        this.#timer = undefined;
        // Counts since a crossing wait for its decision, which flushes them after.
        if (this.#decision === undefined) this.#flushSoon();
      }, this.#flushMs);
    }
    const local = this.#local;
    const calls = local.calls + pending.calls;
    if (
      calls < (this.#config.minimumCalls ?? 1) ||
      this.#flushing !== null ||
      this.#decision !== undefined
    ) {
      return;
    }
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
   * Flushes the counts not yet flushed and lets the statechart decide on the totals at once (a
   * decision waiting for other instances is taken now); settles when done (with a flush already
   * running, after it and one more if counts came meanwhile).
   */
  flush(): Promise<void> {
    return this.#run(true);
  }

  async #run(explicit: boolean): Promise<void> {
    while (this.#flushing !== null) await this.#flushing;
    if (this.#disposed) return;
    const step =
      this.#pending.calls > 0
        ? this.#flushOnce(explicit)
        : explicit && this.#decision !== undefined
          ? this.#decide()
          : null;
    if (step === null) return;
    this.#flushing = step.finally(() => {
      this.#flushing = null;
    });
    await this.#flushing;
  }

  // A flush nobody awaits: whatever goes wrong is reported, never an unhandled rejection.
  #flushSoon(): void {
    this.#run(false).catch((error: unknown) => {
      if (!this.#disposed) this.#host.storeError(error);
    });
  }

  /** Stops the flush timer; counts not flushed are dropped. */
  dispose(): void {
    this.#disposed = true;
    this.#clearTimer();
    this.#clearDecision();
  }

  async #flushOnce(explicit: boolean): Promise<void> {
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
    const fleet = await this.#fleetTotals(generation, at, counts);
    if (this.#disposed || generation !== this.#host.generation) return;
    if (explicit) this.#clearDecision();
    if (explicit || fleet === null || fleet.otherInstances === 0 || !this.#reaches(fleet)) {
      this.#send(generation, fleet ?? this.#localTotals());
      return;
    }
    if (this.#decision !== undefined) return;
    // Other instances count too, and may hold calls counted before this crossing: decide once
    // each of them has flushed, on the totals then.
    const roundTrip = this.#clock.now() - at;
    const wait = Math.max(this.#flushMs, fleet.otherFlushMs) + 2 * roundTrip + DECISION_GRACE_MS;
    this.#awaitDecision(wait, roundTrip, true);
  }

  // Decides once `wait` ms have passed. A timer that fires more than the grace late means this
  // process's event loop stalled: flushes of other instances that fell due meanwhile went out in
  // the same turn as this read, and Redis may serve either first. One more wait of their round
  // trip lets them land before the decision reads the totals.
  #awaitDecision(wait: number, roundTrip: number, first: boolean): void {
    const due = this.#clock.now() + wait;
    this.#decision = this.#clock.setTimeout(() => {
      this.#decision = undefined;
      const late = this.#clock.now() - due;
      if (first && late > DECISION_GRACE_MS) {
        this.#awaitDecision(2 * roundTrip + DECISION_GRACE_MS, roundTrip, false);
        return;
      }
      this.#decideSoon();
    }, wait);
  }

  // The totals of the fleet after adding `counts`; `null` when the store has no window or failed
  // (reported once until a flush succeeds again): the instance then decides on its own window.
  async #fleetTotals(generation: number, at: number, counts: Counts): Promise<FleetTotals | null> {
    const flushWindow = this.#store.flushWindow;
    if (flushWindow === undefined) return null;
    try {
      const totals = await flushWindow.call(this.#store, this.#name, {
        generation,
        at,
        window: this.#window,
        instance: this.#instance,
        flushMs: this.#flushMs,
        ...counts,
      });
      this.#failing = false;
      return totals;
    } catch (error) {
      if (!this.#failing && !this.#disposed) this.#host.storeError(error);
      this.#failing = true;
      return null;
    }
  }

  #decideSoon(): void {
    if (this.#disposed) return;
    const run = async () => {
      while (this.#flushing !== null) await this.#flushing;
      if (this.#disposed) return;
      this.#flushing = this.#decide().finally(() => {
        this.#flushing = null;
      });
      await this.#flushing;
      // The counts held while the decision waited.
      if (this.#pending.calls > 0 && this.#timer === undefined) this.#flushSoon();
    };
    run().catch((error: unknown) => {
      if (!this.#disposed) this.#host.storeError(error);
    });
  }

  // The decision a crossing waited for: the fleet's totals as they are now, this instance's
  // counts since the crossing left out.
  async #decide(): Promise<void> {
    this.#clearDecision();
    const generation = this.#generation;
    if (generation !== this.#host.generation) return;
    const fleet = await this.#fleetTotals(generation, this.#clock.now(), zero());
    if (this.#disposed || generation !== this.#host.generation) return;
    this.#send(generation, fleet ?? this.#localTotals());
  }

  #send(generation: number, totals: WindowCounts): void {
    const { calls, failures, slow, failingInstances, slowInstances } = totals;
    this.#host.send({
      type: 'WINDOW',
      generation,
      calls,
      failures,
      slow,
      failingInstances,
      slowInstances,
      at: this.#clock.now(),
    });
  }

  #reaches(totals: WindowCounts): boolean {
    return failureRateReached(this.#config, totals) || slowCallRateReached(this.#config, totals);
  }

  // A new generation: a closed period starts with an empty window.
  #restart(generation: number): void {
    this.#generation = generation;
    this.#pending = zero();
    this.#ring = [];
    this.#ringBuckets = [];
    this.#local = zero();
    this.#joined = false;
    this.#clearTimer();
    this.#clearDecision();
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

  #clearDecision(): void {
    if (this.#decision === undefined) return;
    this.#clock.clearTimeout(this.#decision);
    this.#decision = undefined;
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
