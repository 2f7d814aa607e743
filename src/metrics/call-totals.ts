import type { BreakerObserver } from '../breaker-observer.js';
import type { TransitionReason } from '../machine.js';
import type { CircuitState } from '../state.js';

/** How an admitted call ended, as the metrics name it. */
export type CallKind = 'successful' | 'failed' | 'ignored';

/** The kinds of admitted calls, in the order the metrics list them. */
export const CALL_KINDS: readonly CallKind[] = ['successful', 'failed', 'ignored'];

/** Where one breaker name's durations of one kind of call go. */
export interface DurationRecorder {
  /** Records `seconds` as the duration of `weight` calls (a sampled call stands for several). */
  record(seconds: number, weight: number): void;
  /** Records one more call of the duration recorded last; `false` (nothing done) before any. */
  repeat(): boolean;
}

/** The transitions of one name with one `from`, `to` and `reason`. */
export interface TransitionTotal {
  readonly from: CircuitState;
  readonly to: CircuitState;
  readonly reason: TransitionReason;
  count: number;
}

/**
 * What one exporter has counted for one breaker name, summed over every breaker of that name
 * the process has had: kept after the breakers are disposed, since counters never go back.
 */
export class NameTotals {
  successful = 0;
  failed = 0;
  ignored = 0;
  rejected = 0;
  readonly transitions = new Map<string, TransitionTotal>();
  /** Store errors by error class. */
  readonly storeErrors = new Map<string, number>();

  constructor(
    readonly name: string,
    /** The duration recorders by kind, or null when calls are not timed. */
    readonly durations: Readonly<Record<CallKind, DurationRecorder>> | null,
  ) {}

  /** Zeroes the counts (the durations are the recorders' own). */
  reset(): void {
    this.successful = this.failed = this.ignored = this.rejected = 0;
    this.transitions.clear();
    this.storeErrors.clear();
  }
}

/**
 * The class of an error, for a label: its constructor's name, never its message, so that the
 * label's values stay few.
 */
export function errorClass(error: unknown): string {
  if (typeof error !== 'object' || error === null) return typeof error;
  const ctor: unknown = (error as { constructor?: unknown }).constructor;
  const name = typeof ctor === 'function' ? ctor.name : '';
  return name === '' ? 'Object' : name;
}

/**
 * Counts one breaker's events into the totals of its name. A call the breaker did not time (one
 * faster than 0.1 ms outside its sample) counts with the duration last recorded for its name
 * and kind, and those before the first with that first, so that the histogram counts every call
 * and its buckets are a sample of them.
 */
export class TotalsObserver implements BreakerObserver {
  readonly timed: boolean;
  /** Per kind (successful, failed, ignored): the calls untimed before the first timed one. */
  readonly #before = new Float64Array(3);

  constructor(readonly totals: NameTotals) {
    this.timed = totals.durations !== null;
  }

  successful(durationMs: number | undefined): void {
    const totals = this.totals;
    totals.successful++;
    if (totals.durations !== null) this.#time(totals.durations.successful, 0, durationMs);
  }

  failed(durationMs: number | undefined): void {
    const totals = this.totals;
    totals.failed++;
    if (totals.durations !== null) this.#time(totals.durations.failed, 1, durationMs);
  }

  ignored(durationMs: number | undefined): void {
    const totals = this.totals;
    totals.ignored++;
    if (totals.durations !== null) this.#time(totals.durations.ignored, 2, durationMs);
  }

  #time(recorder: DurationRecorder, kind: number, durationMs: number | undefined): void {
    // No number travels for an untimed call: a double passed on would be allocated per call.
    if (durationMs === undefined) {
      if (!recorder.repeat()) this.#before[kind] = (this.#before[kind] as number) + 1;
      return;
    }
    const weight = (this.#before[kind] as number) + 1;
    this.#before[kind] = 0;
    recorder.record(durationMs / 1000, weight);
  }

  rejected(): void {
    this.totals.rejected++;
  }

  transition(from: CircuitState, to: CircuitState, reason: TransitionReason): void {
    const key = `${from} ${to} ${reason}`;
    const total = this.totals.transitions.get(key);
    if (total === undefined) this.totals.transitions.set(key, { from, to, reason, count: 1 });
    else total.count++;
  }

  storeError(error: unknown): void {
    const errors = this.totals.storeErrors;
    const name = errorClass(error);
    errors.set(name, (errors.get(name) ?? 0) + 1);
  }
}

/** The totals of every breaker name one exporter has met, created on first meeting. */
export class TotalsByName {
  readonly #byName = new Map<string, NameTotals>();

  constructor(
    readonly durationsFor: (name: string) => Readonly<Record<CallKind, DurationRecorder>> | null,
  ) {}

  of(name: string): NameTotals {
    let totals = this.#byName.get(name);
    if (totals === undefined) {
      totals = new NameTotals(name, this.durationsFor(name));
      this.#byName.set(name, totals);
    }
    return totals;
  }

  values(): IterableIterator<NameTotals> {
    return this.#byName.values();
  }
}
