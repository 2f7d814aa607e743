import type { BreakerObserver } from '../breaker-observer.js';
import type { TransitionReason } from '../machine.js';
import type { CircuitState } from '../state.js';

/** How an admitted call ended, as the metrics name it. */
export type CallKind = 'successful' | 'failed' | 'ignored';

/** The kinds of admitted calls, in the order the metrics list them. */
export const CALL_KINDS: readonly CallKind[] = ['successful', 'failed', 'ignored'];

/**
 * Where one breaker name's durations of one kind of call go. Untimed calls are not reported one
 * by one: the kind's call count says how many calls there were, and the recorder counts those it
 * has not seen with the duration it recorded last (those before its first with that first).
 */
export interface DurationRecorder {
  /** Records `seconds` for the timed call that brought the kind's count to `calls`. */
  record(seconds: number, calls: number): void;
  /** Counts the calls up to `calls` it has not seen with the duration recorded last. */
  settle(calls: number): void;
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
 * the process has had, until the name has had no live breaker for the exporter's idle time.
 */
export class NameTotals<R extends DurationRecorder = DurationRecorder> {
  successful = 0;
  failed = 0;
  ignored = 0;
  rejected = 0;
  readonly transitions = new Map<string, TransitionTotal>();
  /** Store errors by error class. */
  readonly storeErrors = new Map<string, number>();
  /** Live breakers of this name that this exporter follows. */
  live = 0;

  constructor(
    readonly name: string,
    /** The duration recorders by kind, or null when calls are not timed. */
    readonly durations: Readonly<Record<CallKind, R>> | null,
  ) {}

  /** Brings each duration recorder up to its kind's call count (before reading it). */
  settle(): void {
    const durations = this.durations;
    if (durations === null) return;
    for (const kind of CALL_KINDS) durations[kind].settle(this[kind]);
  }

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
 * faster than 0.1 ms outside its sample) costs one increment: the recorder counts it later with
 * the duration last recorded for its name and kind (see {@link DurationRecorder}), so that the
 * histogram counts every call and its buckets are a sample of them.
 */
export class TotalsObserver implements BreakerObserver {
  readonly timed: boolean;

  constructor(readonly totals: NameTotals) {
    this.timed = totals.durations !== null;
  }

  successful(durationMs: number | undefined): void {
    const totals = this.totals;
    const calls = ++totals.successful;
    if (durationMs !== undefined && totals.durations !== null) {
      totals.durations.successful.record(durationMs / 1000, calls);
    }
  }

  failed(durationMs: number | undefined): void {
    const totals = this.totals;
    const calls = ++totals.failed;
    if (durationMs !== undefined && totals.durations !== null) {
      totals.durations.failed.record(durationMs / 1000, calls);
    }
  }

  ignored(durationMs: number | undefined): void {
    const totals = this.totals;
    const calls = ++totals.ignored;
    if (durationMs !== undefined && totals.durations !== null) {
      totals.durations.ignored.record(durationMs / 1000, calls);
    }
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
