import { bucketOf, type FleetTotals, firstLiveBucket, type WindowFlush } from './buckets.js';

interface Bucket {
  readonly generation: number;
  readonly bucket: number;
  calls: number;
  failures: number;
  slow: number;
  readonly failing: Set<string>;
  readonly slowing: Set<string>;
  /** The instances that flushed counts into the bucket, with their flush period. */
  readonly present: Map<string, number>;
}

/**
 * One breaker's fleet window in memory: the counts every instance flushed, per generation and
 * time bucket. What `flushWindow-2.lua` keeps in a Redis hash, for the `MemoryStore`.
 */
export class WindowTable {
  readonly #buckets = new Map<string, Bucket>();

  /** Whether no bucket is left (every one left the window). */
  get empty(): boolean {
    return this.#buckets.size === 0;
  }

  /**
   * Adds an instance's counts to the bucket of `flush.at`, drops buckets that left the window,
   * and returns the window's totals for the flush's generation.
   */
  flush(flush: WindowFlush): FleetTotals {
    const { generation, window, instance } = flush;
    const bucket = bucketOf(flush.at, window);
    const key = `${generation}:${bucket}`;
    let entry = this.#buckets.get(key);
    // A flush of nothing (a read) leaves no bucket behind.
    const adds = flush.calls > 0 || flush.failures > 0 || flush.slow > 0;
    if (entry === undefined && adds) {
      entry = {
        generation,
        bucket,
        calls: 0,
        failures: 0,
        slow: 0,
        failing: new Set(),
        slowing: new Set(),
        present: new Map(),
      };
      this.#buckets.set(key, entry);
    }
    if (entry !== undefined) {
      entry.calls += flush.calls;
      entry.failures += flush.failures;
      entry.slow += flush.slow;
      if (instance !== '' && flush.failures > 0) entry.failing.add(instance);
      if (instance !== '' && flush.slow > 0) entry.slowing.add(instance);
      if (instance !== '' && flush.calls > 0) entry.present.set(instance, flush.flushMs);
    }
    const first = firstLiveBucket(flush.at, window);
    let calls = 0;
    let failures = 0;
    let slow = 0;
    const failing = new Set<string>();
    const slowing = new Set<string>();
    const others = new Set<string>();
    let otherFlushMs = 0;
    for (const [name, held] of this.#buckets) {
      if (held.bucket < first) {
        this.#buckets.delete(name);
        continue;
      }
      if (held.generation !== generation) continue;
      calls += held.calls;
      failures += held.failures;
      slow += held.slow;
      for (const id of held.failing) failing.add(id);
      for (const id of held.slowing) slowing.add(id);
      for (const [id, flushMs] of held.present) {
        if (id === instance) continue;
        others.add(id);
        otherFlushMs = Math.max(otherFlushMs, flushMs);
      }
    }
    return {
      calls,
      failures,
      slow,
      failingInstances: failing.size,
      slowInstances: slowing.size,
      otherInstances: others.size,
      otherFlushMs,
    };
  }
}
