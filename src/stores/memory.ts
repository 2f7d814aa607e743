import { type Clock, systemClock } from '../clock.js';
import type { WindowCounts } from '../machine.js';
import { freezeRecord } from '../record/freeze.js';
import { nextVersionProblem } from '../record/order.js';
import type { FleetTotals, WindowFlush } from '../window/buckets.js';
import { WindowTable } from '../window/window-table.js';
import {
  asFollower,
  type BreakerStore,
  type CompareAndSetResult,
  type RecordEntry,
  type StoredRecord,
  type StoreFollower,
  type StoreWatcher,
  type WindowRead,
} from './store.js';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** The clock breakers on this store decide with; the system clock by default. */
  clock?: Clock;
}

/**
 * The embedded default store: records live in this process, so breakers of one name in one
 * process share one statechart. The change feed is delivered on a microtask, as a remote
 * store's would arrive later than the write that caused it.
 */
export class MemoryStore implements BreakerStore {
  readonly clock: Clock;
  readonly #records = new Map<string, StoredRecord>();
  // One follower per name is the rule (one breaker instance per name and store): kept as itself,
  // and as a set only when more follow, so that each breaker does not pay for a set of one.
  readonly #listeners = new Map<string, StoreFollower | Set<StoreFollower>>();
  readonly #watchers = new Set<StoreWatcher>();
  readonly #windows = new Map<string, WindowTable>();

  constructor(options: MemoryStoreOptions = {}) {
    this.clock = options.clock ?? systemClock;
  }

  peek(name: string): StoredRecord | null {
    return this.#records.get(name) ?? null;
  }

  async load(name: string): Promise<StoredRecord | null> {
    return this.peek(name);
  }

  async compareAndSet(
    name: string,
    expectedVersion: number,
    record: StoredRecord,
    expectedWriteId?: string,
    // No fence needed: a retry built on the conflict's answer runs before another writer of
    // this process can (the answer and the retry are one chain of microtasks, no I/O between).
    _fence?: string,
  ): Promise<CompareAndSetResult> {
    const current = this.#records.get(name) ?? null;
    const currentVersion = current?.version ?? 0;
    if (
      currentVersion !== expectedVersion ||
      (expectedWriteId !== undefined && current?.snapshot.writeId !== expectedWriteId)
    ) {
      return { ok: false, current, currentVersion };
    }
    const problem = nextVersionProblem(expectedVersion, record.version);
    if (problem !== undefined) throw new RangeError(problem);
    // Kept and handed out by reference: frozen, so that no reader writes into the store's
    // record or into the context of the actor that wrote it (a write, never a success in closed).
    freezeRecord(record);
    this.#records.set(name, record);
    const listeners = this.#listeners.get(name);
    if (listeners !== undefined || this.#watchers.size > 0) {
      queueMicrotask(() => {
        // Those following when it is delivered: one that unsubscribed meanwhile hears nothing.
        const now = this.#listeners.get(name);
        if (now instanceof Set) for (const follower of now) follower.record(record);
        else now?.record(record);
        for (const watcher of this.#watchers) watcher.record(name, record);
      });
    }
    return { ok: true, record };
  }

  subscribe(
    name: string,
    listener: StoreFollower | ((record: StoredRecord) => void),
    onProblem?: (error: Error) => void,
  ): () => void {
    const follower = asFollower(listener, onProblem);
    const listeners = this.#listeners.get(name);
    if (listeners === undefined) this.#listeners.set(name, follower);
    else if (listeners instanceof Set) listeners.add(follower);
    else if (listeners !== follower) this.#listeners.set(name, new Set([listeners, follower]));
    // Spent once called: called again, it must not end a later subscription of the same follower.
    let active = true;
    return () => {
      if (active) this.unsubscribe(name, follower);
      active = false;
    };
  }

  /** Stops `follower` (as given to `subscribe`) following `name`. */
  unsubscribe(name: string, follower: StoreFollower): void {
    const listeners = this.#listeners.get(name);
    if (listeners === follower) {
      this.#listeners.delete(name);
    } else if (listeners instanceof Set && listeners.delete(follower) && listeners.size === 1) {
      this.#listeners.set(name, listeners.values().next().value as StoreFollower);
    }
  }

  async *listRecords(): AsyncIterable<RecordEntry> {
    // A copy: the caller may write while it iterates.
    for (const [name, record] of [...this.#records]) yield { name, record };
  }

  async readRecord(name: string): Promise<RecordEntry | null> {
    const record = this.#records.get(name);
    return record === undefined ? null : { name, record };
  }

  watchAll(watcher: StoreWatcher): () => void {
    // A wrapper per call, so that one watcher subscribed twice is two subscriptions.
    const own: StoreWatcher = { record: (name, record) => watcher.record(name, record) };
    this.#watchers.add(own);
    return () => {
      this.#watchers.delete(own);
    };
  }

  async flushWindow(name: string, flush: WindowFlush): Promise<FleetTotals> {
    let table = this.#windows.get(name);
    if (table === undefined) {
      table = new WindowTable();
      this.#windows.set(name, table);
    }
    const totals = table.flush(flush);
    if (table.empty) this.#windows.delete(name);
    return totals;
  }

  async readWindow(name: string, read: WindowRead): Promise<WindowCounts> {
    const table = this.#windows.get(name);
    const totals = table?.flush({
      ...read,
      instance: '',
      flushMs: 0,
      calls: 0,
      failures: 0,
      slow: 0,
    });
    if (table?.empty) this.#windows.delete(name);
    return totals ?? { calls: 0, failures: 0, slow: 0, failingInstances: 0, slowInstances: 0 };
  }

  /** Forgets every record and window (for tests). */
  clear(): void {
    this.#records.clear();
    this.#windows.clear();
  }
}

/** The process-wide store breakers use when no `store` option is given. */
export const defaultStore = new MemoryStore();
