// The time buckets every window is made of, in one process or across a fleet on a store.

import type { WindowCounts } from '../machine.js';

/**
 * Buckets per window. A count stays in the window for at least `window` ms and at most one
 * bucket (a tenth of the window) longer: a bucket leaves the window once it ended `window` ms
 * ago.
 */
export const WINDOW_BUCKETS = 10;

/** The counts of one instance's flush, and what they are counted under. */
export interface WindowFlush {
  /** The generation the counts belong to: each closed period has a window of its own. */
  readonly generation: number;
  /** The time of the flush on the breaker's clock (ms): it picks the bucket. */
  readonly at: number;
  /** The window's length in ms. */
  readonly window: number;
  /** The flushing instance: the fleet's window knows which instances count in it. */
  readonly instance: string;
  /** The flushing instance's `windowFlush` (ms): how long it may hold counts before a flush. */
  readonly flushMs: number;
  readonly calls: number;
  readonly failures: number;
  readonly slow: number;
}

/** The fleet's totals a flush answers with, and what it learns of the other instances. */
export interface FleetTotals extends WindowCounts {
  /** Instances other than the flusher that flushed counts into the window's live buckets. */
  readonly otherInstances: number;
  /** The longest `windowFlush` among them (ms; 0 when none). */
  readonly otherFlushMs: number;
}

/** The bucket a time falls in. */
export function bucketOf(at: number, window: number): number {
  return Math.floor(at / (window / WINDOW_BUCKETS));
}

/** The oldest bucket still in the window at `at`. */
export function firstLiveBucket(at: number, window: number): number {
  return bucketOf(at, window) - WINDOW_BUCKETS;
}

/** How long a store keeps a window nobody flushes to: past that every bucket has left it. */
export function windowTtl(window: number): number {
  return Math.ceil(window + window / WINDOW_BUCKETS) + 1_000;
}
