import { type CallKind, type DurationRecorder, NameTotals } from './call-totals.js';

/**
 * How long a breaker name's series stay after its last live breaker is disposed, by default:
 * 10 minutes, many scrapes, so that its last counts are read; dynamic names (per tenant, per
 * model) then stop costing memory, as metric libraries drop label sets left unused.
 */
export const DEFAULT_IDLE_TIMEOUT = 600_000;

/**
 * The most names without a live breaker kept at once: beyond it the longest idle go first, so
 * that a burst of short-lived names cannot grow the exporter's memory within one idle time.
 */
export const IDLE_NAMES_MAX = 1_000;

/**
 * The totals of every breaker name one exporter follows, created on first meeting. A name with
 * no live breaker left is dropped `idleTimeout` ms later (or sooner, when more than
 * {@link IDLE_NAMES_MAX} names are idle; never with an `idleTimeout` of `Infinity`); a breaker of that name made afterwards starts from
 * zero, which Prometheus's `rate()` and OpenTelemetry's cumulative counters read as a restart.
 * Nothing runs on a timer: names are dropped when a breaker is followed or released, and before
 * the totals are read.
 */
export class TotalsByName<R extends DurationRecorder = DurationRecorder> {
  readonly #byName = new Map<string, NameTotals<R>>();
  /** Names with no live breaker, in the order they became idle, with when. */
  readonly #idle = new Map<string, number>();

  constructor(
    readonly durationsFor: (name: string) => Readonly<Record<CallKind, R>> | null,
    readonly idleTimeout: number,
    readonly now: () => number = Date.now,
  ) {}

  /** A live breaker of `name` is followed: the totals it counts into. */
  attach(name: string): NameTotals<R> {
    let totals = this.#byName.get(name);
    if (totals === undefined) {
      totals = new NameTotals(name, this.durationsFor(name));
      this.#byName.set(name, totals);
    }
    totals.live++;
    this.#idle.delete(name);
    this.sweep();
    return totals;
  }

  /** A followed breaker of `name` was disposed. */
  release(name: string): void {
    const totals = this.#byName.get(name);
    if (totals === undefined || totals.live === 0) return;
    totals.live--;
    if (totals.live === 0) this.#idle.set(name, this.now());
    this.sweep();
  }

  /** Drops the names idle for `idleTimeout`, and the longest idle beyond the cap. */
  sweep(): void {
    if (this.#idle.size === 0) return;
    const now = this.now();
    const timeout = this.idleTimeout;
    // Infinity is the user's word that every name stays: no cap either.
    if (timeout === Number.POSITIVE_INFINITY) return;
    for (const [name, since] of this.#idle) {
      if (this.#idle.size <= IDLE_NAMES_MAX && now - since < timeout) break;
      this.#idle.delete(name);
      this.#byName.delete(name);
    }
  }

  /** Every name's totals, idle ones past their time dropped first. */
  values(): IterableIterator<NameTotals<R>> {
    this.sweep();
    return this.#byName.values();
  }

  /** Whether `name`'s totals are kept (live, or idle within its time), idle ones dropped first. */
  holds(name: string): boolean {
    this.sweep();
    return this.#byName.has(name);
  }

  /** How many names are kept, live or idle. */
  get size(): number {
    return this.#byName.size;
  }
}
