import type { Clock } from '../clock.js';

/**
 * Something with a due time: a breaker whose statechart holds a delayed transition. The
 * scheduler keeps these fields on the object itself, so that a waiting breaker costs one slot
 * in the scheduler's heap and no timer, closure or entry object.
 */
export interface Due {
  /** When the delayed transition falls due, on the scheduler's clock (ms). */
  dueAt: number;
  /** Position in the scheduler's heap; -1 while not scheduled, -2 while deferred. */
  dueSlot: number;
  /** Runs the delayed transition; called once, at or after `dueAt`. */
  fireDue(): void;
}

/**
 * Work done in one turn of the event loop before the scheduler yields. Each due transition also
 * queues its write, which runs in the microtasks right after the slice: a slice of a few
 * milliseconds keeps the whole turn far below a noticeable stall.
 */
export const SLICE_MS = 4;
// How many transitions run between two looks at the time spent.
const CHECK_EVERY = 32;

/** What a scheduler has done so far, for benchmarks. */
export interface SchedulerStats {
  /** Delayed transitions run. */
  fired: number;
  /** The latest a transition ran after its due time (ms, on the scheduler's clock). */
  maxLateMs: number;
  /** Turns of the event loop that ran transitions. */
  slices: number;
  /** The longest slice (ms of real time). */
  maxSliceMs: number;
}

const schedulers = new WeakMap<Clock, Scheduler>();
const DEFERRED = -2;

/**
 * One timer for every delayed transition due on one clock. Breakers register the deadline the
 * statechart's named delay gave (the machine alone says how long); the scheduler only says when
 * it is due, earliest first. When many fall due at once it runs them in slices of
 * {@link SLICE_MS}, yielding to the event loop in between, so that I/O (the writes they cause,
 * calls, store replies) goes on: a due transition may run late by the time the ones due before
 * it take, never by a stall.
 */
export class Scheduler {
  readonly #clock: Clock;
  readonly #heap: Due[] = [];
  #timer: unknown;
  /** The due time the timer is set for (Infinity: no timer). */
  #armedFor = Number.POSITIVE_INFINITY;
  #draining = false;
  /** The clock's time when the running drain began. */
  #drainNow = 0;
  /**
   * Entries scheduled by the running drain at or before its time: they run on the timer the drain
   * sets when it ends, as a timer a delayed transition sets would (an actor's would), and not in
   * the same turn.
   */
  #deferred: Due[] = [];
  readonly stats: SchedulerStats = { fired: 0, maxLateMs: 0, slices: 0, maxSliceMs: 0 };

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** The one scheduler of `clock`. */
  static of(clock: Clock): Scheduler {
    let scheduler = schedulers.get(clock);
    if (scheduler === undefined) {
      scheduler = new Scheduler(clock);
      schedulers.set(clock, scheduler);
    }
    return scheduler;
  }

  /** How many transitions wait. */
  get size(): number {
    return this.#heap.length + this.#deferred.length;
  }

  /** Schedules `entry` at `at` (replacing its earlier due time, if any). */
  schedule(entry: Due, at: number): void {
    if (entry.dueSlot >= 0) this.#remove(entry);
    else if (entry.dueSlot === DEFERRED) this.#undefer(entry);
    entry.dueAt = at;
    if (this.#draining && at <= this.#drainNow) {
      entry.dueSlot = DEFERRED;
      this.#deferred.push(entry);
      return;
    }
    this.#insert(entry);
    if (!this.#draining && at < this.#armedFor) this.#arm();
  }

  #insert(entry: Due): void {
    const heap = this.#heap;
    entry.dueSlot = heap.length;
    heap.push(entry);
    this.#up(entry.dueSlot);
  }

  #undefer(entry: Due): void {
    const at = this.#deferred.indexOf(entry);
    if (at >= 0) this.#deferred.splice(at, 1);
    entry.dueSlot = -1;
  }

  /** Forgets `entry`'s due time; the timer goes when nothing waits. */
  cancel(entry: Due): void {
    if (entry.dueSlot === DEFERRED) this.#undefer(entry);
    if (entry.dueSlot < 0) return;
    this.#remove(entry);
    if (this.#heap.length === 0 && !this.#draining) this.#disarm();
  }

  #arm(): void {
    this.#disarm();
    const first = this.#heap[0];
    if (first === undefined) return;
    const clock = this.#clock;
    this.#armedFor = first.dueAt;
    this.#timer = clock.setTimeout(this.#drain, Math.max(0, first.dueAt - clock.now()));
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
  }

  readonly #drain = (): void => {
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
    const heap = this.#heap;
    const stats = this.stats;
    const clock = this.#clock;
    // Only what was due when the timer fired: a transition the slice itself makes due (a lease
    // expiry whose open period is already over) waits for the next timer, as it would on an
    // actor's own clock.
    const now = clock.now();
    this.#drainNow = now;
    const started = performance.now();
    let ran = 0;
    this.#draining = true;
    try {
      for (let first = heap[0]; first !== undefined && first.dueAt <= now; first = heap[0]) {
        this.#remove(first);
        const late = now - first.dueAt;
        if (late > stats.maxLateMs) stats.maxLateMs = late;
        stats.fired++;
        first.fireDue();
        if (++ran % CHECK_EVERY === 0 && performance.now() - started >= SLICE_MS) break;
      }
    } finally {
      this.#draining = false;
      const deferred = this.#deferred;
      if (deferred.length > 0) {
        this.#deferred = [];
        for (const entry of deferred) this.#insert(entry);
      }
      if (ran > 0) {
        stats.slices++;
        const spent = performance.now() - started;
        if (spent > stats.maxSliceMs) stats.maxSliceMs = spent;
      }
      this.#arm();
    }
  };

  #remove(entry: Due): void {
    const heap = this.#heap;
    const slot = entry.dueSlot;
    entry.dueSlot = -1;
    const last = heap.pop() as Due;
    if (slot === heap.length) return;
    heap[slot] = last;
    last.dueSlot = slot;
    this.#down(slot);
    this.#up(last.dueSlot);
  }

  #up(slot: number): void {
    const heap = this.#heap;
    const entry = heap[slot] as Due;
    while (slot > 0) {
      const parentSlot = (slot - 1) >> 1;
      const parent = heap[parentSlot] as Due;
      if (parent.dueAt <= entry.dueAt) break;
      heap[slot] = parent;
      parent.dueSlot = slot;
      slot = parentSlot;
    }
    heap[slot] = entry;
    entry.dueSlot = slot;
  }

  #down(slot: number): void {
    const heap = this.#heap;
    const entry = heap[slot] as Due;
    const n = heap.length;
    for (;;) {
      const left = 2 * slot + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n && (heap[right] as Due).dueAt < (heap[left] as Due).dueAt) child = right;
      const next = heap[child] as Due;
      if (next.dueAt >= entry.dueAt) break;
      heap[slot] = next;
      next.dueSlot = slot;
      slot = child;
    }
    heap[slot] = entry;
    entry.dueSlot = slot;
  }
}
