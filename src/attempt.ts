import { CallTimeoutError } from './errors.js';
import type { BreakerGate, Ticket } from './gate.js';
import type { Outcome } from './options.js';
import { checkDuration } from './validate.js';

/**
 * A call admitted by the breaker whose outcome its caller reports: streams, fetch wrappers,
 * middleware. Each settle method (`success`, `failure`, `ignore`) acts once; later ones are
 * no-ops. The breaker's `timeout` (or the attempt's) settles it as a failure by itself, and
 * the caller's signal as ignored, so that an attempt whose caller forgets it still ends.
 */
export interface Attempt {
  /** Aborted by the breaker's timeout or the caller's signal. */
  readonly signal: AbortSignal;
  /** Marks the first chunk: a slow-call rule judges a stream by its time to first chunk. Idempotent. */
  firstChunk(): void;
  /**
   * A chunk of the answer arrived: marks the first chunk (as {@link firstChunk}) and, for a call
   * admitted as a half-open probe, renews its lease while chunks flow, so that a healthy stream
   * longer than `probeLease` keeps its probe slot. A renewal extends the lease by a whole lease
   * at most once per half lease: a stream writes at most 2 × its duration / `probeLease` times.
   */
  chunk(): void;
  /**
   * The call's answer is a stream that has just opened (its response headers came): the
   * whole-call `timeout` stops here, since a healthy stream may last longer than any call; the
   * stream's own deadlines (first chunk, gaps between chunks) are the caller's to keep.
   */
  streamOpened(): void;
  /** The call succeeded. */
  success(): void;
  /**
   * The call failed with `error`, classified by the breaker's `classify`; returns the outcome
   * counted (the earlier one when the attempt was already settled).
   */
  failure(error: unknown): Outcome;
  /** The call's outcome says nothing of the upstream: neither counted nor retried. */
  ignore(): void;
}

/** Options of {@link CircuitBreaker.attempt}. */
export interface AttemptOptions {
  /** The caller's signal: its abort aborts the attempt's signal and settles it as ignored. */
  signal?: AbortSignal;
  /** Milliseconds before the attempt's signal aborts and it fails; the breaker's `timeout` by default. */
  timeout?: number;
}

/** A route's early probe of an open circuit: the generation of its open period. */
export const panicProbe: unique symbol = Symbol('statebreaker.panicProbe');

/** Attempt options with a route's panic probe. */
export interface AdmissionOptions extends AttemptOptions {
  [panicProbe]?: number;
}

/** Why an attempt was ignored without an error of its own. */
function stoppedEarly(): Error {
  const error = new Error('the caller stopped the call before it ended');
  error.name = 'AbortError';
  return error;
}

/** Validates an options object's `signal`; `label` names the method. */
export function checkSignal(label: string, signal: unknown): AbortSignal | undefined {
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`${label} option signal must be an AbortSignal`);
  }
  return signal;
}

/**
 * `gate.admit(panic)`, given up when `signal` aborts first (a half-open admission waits on the
 * store): a ticket granted after that is settled as ignored, so that its probe slot is freed.
 */
export function admitWithin(
  gate: BreakerGate,
  panic: number | undefined,
  signal: AbortSignal | undefined,
): Promise<Ticket> {
  const admitting = gate.admit(panic);
  if (signal === undefined) return admitting;
  return new Promise<Ticket>((resolve, reject) => {
    const onAbort = () => {
      reject(signal.reason);
      admitting.then(
        (late) => {
          if (late.recorded) gate.ignore(late, signal.reason);
        },
        () => undefined,
      );
    };
    signal.addEventListener('abort', onAbort, { once: true });
    admitting.then(
      (ticket) => {
        signal.removeEventListener('abort', onAbort);
        resolve(ticket);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Admits an attempt through `gate`; rejects with `CircuitBreakerError` when not admitted. */
export async function openAttempt(
  gate: BreakerGate,
  options: AdmissionOptions | undefined,
): Promise<BreakerAttempt> {
  const signal = checkSignal('attempt()', options?.signal);
  const timeout =
    options?.timeout === undefined
      ? gate.timeout
      : checkDuration('attempt() option timeout', options.timeout);
  if (signal?.aborted) throw signal.reason;
  const ticket = await admitWithin(gate, options?.[panicProbe], signal);
  const attempt = new BreakerAttempt(gate, ticket, signal, timeout);
  if (signal?.aborted) {
    attempt.ignore();
    throw signal.reason;
  }
  return attempt;
}

/** The attempt: one admitted call, settled once. */
export class BreakerAttempt implements Attempt {
  readonly #gate: BreakerGate;
  readonly #ticket: Ticket;
  readonly #controller = new AbortController();
  readonly #callerSignal: AbortSignal | undefined;
  #timer: unknown;
  #firstChunkAt = -1;
  /** When a probe's lease is next renewed (breaker clock); Infinity for a non-probe. */
  #renewAt = Number.POSITIVE_INFINITY;
  #outcome: Outcome | undefined;
  #onCallerAbort: (() => void) | undefined;

  constructor(
    gate: BreakerGate,
    ticket: Ticket,
    callerSignal: AbortSignal | undefined,
    timeout: number | undefined,
  ) {
    this.#gate = gate;
    this.#ticket = ticket;
    this.#callerSignal = callerSignal;
    if (ticket.probeId !== undefined) this.#renewAt = gate.clock.now() + gate.probeLease / 2;
    if (callerSignal !== undefined) {
      this.#onCallerAbort = () => this.#abortBy(callerSignal.reason, 'ignored');
      callerSignal.addEventListener('abort', this.#onCallerAbort, { once: true });
    }
    if (timeout !== undefined) {
      this.#timer = gate.clock.setTimeout(() => {
        this.#timer = undefined;
        this.#abortBy(new CallTimeoutError(gate.name, timeout), 'failure');
      }, timeout);
    }
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The outcome counted, once settled. */
  get outcome(): Outcome | undefined {
    return this.#outcome;
  }

  /** Whether the call was admitted as a probe (it holds a probe slot until it settles). */
  get probe(): boolean {
    return this.#ticket.probeId !== undefined;
  }

  firstChunk(): void {
    if (this.#firstChunkAt < 0) this.#firstChunkAt = this.#gate.clock.now();
  }

  chunk(): void {
    if (this.#firstChunkAt >= 0 && this.#renewAt === Number.POSITIVE_INFINITY) return;
    const now = this.#gate.clock.now();
    if (this.#firstChunkAt < 0) this.#firstChunkAt = now;
    if (now < this.#renewAt) return;
    const lease = this.#gate.probeLease;
    this.#renewAt = now + lease / 2;
    this.renew(now + lease);
  }

  streamOpened(): void {
    this.#clearTimer();
  }

  success(): void {
    if (!this.#settle('success')) return;
    if (this.#ticket.recorded) this.#gate.succeed(this.#ticket, this.#since());
  }

  failure(error: unknown): Outcome {
    if (this.#outcome !== undefined) return this.#outcome;
    this.#outcome = 'failure';
    this.#release();
    // A disabled circuit records nothing, yet a route still needs to know whether to move on.
    const outcome = this.#ticket.recorded
      ? this.#gate.fail(this.#ticket, error, this.#callerSignal, this.#since())
      : this.#gate.outcomeOf(error, this.#callerSignal);
    this.#outcome = outcome;
    return outcome;
  }

  ignore(): void {
    if (!this.#settle('ignored')) return;
    if (this.#ticket.recorded) this.#gate.ignore(this.#ticket, stoppedEarly());
    // A call its caller gave up on should stop too: the upstream's work is no longer wanted.
    if (!this.#controller.signal.aborted) this.#controller.abort(stoppedEarly());
  }

  /**
   * Settles with `error` as `outcome` (a breach of a deadline, the caller's abort) and aborts
   * the signal with it; a no-op once settled.
   */
  abortWith(error: unknown, outcome: 'failure' | 'ignored'): void {
    this.#abortBy(error, outcome);
  }

  /** Extends the probe's lease to `leaseUntil` (a probe stream whose chunks still flow). */
  renew(leaseUntil: number): void {
    if (this.#outcome === undefined && this.#ticket.probeId !== undefined) {
      this.#gate.renew(this.#ticket, leaseUntil);
    }
  }

  #abortBy(error: unknown, outcome: 'failure' | 'ignored'): void {
    if (this.#outcome !== undefined) return;
    if (outcome === 'failure') this.failure(error);
    else if (this.#settle('ignored') && this.#ticket.recorded)
      this.#gate.ignore(this.#ticket, error);
    if (!this.#controller.signal.aborted) this.#controller.abort(error);
  }

  #settle(outcome: Outcome): boolean {
    if (this.#outcome !== undefined) return false;
    this.#outcome = outcome;
    this.#release();
    return true;
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) {
      this.#gate.clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #release(): void {
    this.#clearTimer();
    if (this.#onCallerAbort !== undefined) {
      this.#callerSignal?.removeEventListener('abort', this.#onCallerAbort);
      this.#onCallerAbort = undefined;
    }
  }

  // The slow-call rule judges by time to first chunk: shift the admission time by the time
  // since the first chunk, so that "now - since" is the time to first chunk.
  #since(): number {
    const since = this.#ticket.since;
    if (this.#firstChunkAt < 0) return since;
    return since + (this.#gate.clock.now() - this.#firstChunkAt);
  }
}
