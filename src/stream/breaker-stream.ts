import { admitWithin, BreakerAttempt, panicProbe } from '../attempt.js';
import { ChunkTimeoutError, FirstChunkTimeoutError } from '../errors.js';
import type { BreakerGate } from '../gate.js';
import type { Outcome } from '../options.js';
import { describeValue } from '../validate.js';
import { closeSource, iteratorOf, type StreamSource } from './source.js';
import {
  checkStreamOptions,
  type StreamAdmissionOptions,
  type StreamFunction,
  type StreamOptions,
} from './stream-options.js';

const IDLE = 0;
const OPENING = 1;
const RUNNING = 2;
const ENDED = 3;

const DONE: IteratorResult<never> = { done: true, value: undefined };

/** A breaker's stream: each iteration is one admitted call. */
export class BreakerStream<T> implements AsyncIterable<T> {
  readonly #gate: BreakerGate;
  readonly #fn: StreamFunction<T>;
  readonly #options: StreamOptions;
  readonly #panic: number | undefined;

  constructor(gate: BreakerGate, fn: StreamFunction<T>, options?: StreamAdmissionOptions) {
    if (typeof fn !== 'function') {
      throw new TypeError(`stream() needs a function, got ${describeValue(fn)}`);
    }
    this.#gate = gate;
    this.#fn = fn;
    this.#options = checkStreamOptions('stream()', options);
    this.#panic = options?.[panicProbe];
  }

  [Symbol.asyncIterator](): StreamRun<T> {
    const gate = this.#gate;
    const options = this.#options;
    return new StreamRun(
      gate,
      this.#fn,
      options.signal,
      options.firstChunkTimeout ?? gate.firstChunkTimeout ?? gate.timeout,
      options.chunkTimeout ?? gate.chunkTimeout,
      this.#panic,
    );
  }
}

/**
 * One iteration of a stream. Its deadlines cost one timer per stream, not per chunk:
 * a chunk only notes the time, and the timer, when it fires, re-arms for what is left.
 */
export class StreamRun<T> implements AsyncIterator<T> {
  readonly #gate: BreakerGate;
  readonly #fn: StreamFunction<T>;
  readonly #signal: AbortSignal | undefined;
  readonly #firstMs: number | undefined;
  readonly #chunkMs: number | undefined;
  readonly #panic: number | undefined;
  /** Whether a pull can be cut short (a deadline or the caller's signal): then it is raced. */
  readonly #watched: boolean;
  #state = IDLE;
  #opening: Promise<unknown> | undefined;
  #attempt: BreakerAttempt | undefined;
  #source: AsyncIterator<T> | undefined;
  #rejectPending: ((reason: unknown) => void) | undefined;
  #resolvePending: ((result: IteratorResult<T>) => void) | undefined;
  #timer: unknown;
  #started = false;
  #waiting = false;
  #waitingSince = 0;
  /** When a probe's lease is next renewed (breaker clock); Infinity for a non-probe. */
  #renewAt = Number.POSITIVE_INFINITY;
  #closed = false;
  /** The watched pull in flight, and the pulls asked for meanwhile (queued behind it). */
  #current: Promise<IteratorResult<T>> | undefined;
  #queueTail: Promise<IteratorResult<T>> | undefined;
  #queued = 0;
  /**
   * Why the stream was cut while the consumer held a chunk (the caller's abort, a breach): later
   * reads reject with it, so that a cut stream never looks complete; cleared by `return()`.
   */
  #cut: { reason: unknown } | undefined;

  constructor(
    gate: BreakerGate,
    fn: StreamFunction<T>,
    signal: AbortSignal | undefined,
    firstMs: number | undefined,
    chunkMs: number | undefined,
    panic: number | undefined,
  ) {
    this.#gate = gate;
    this.#fn = fn;
    this.#signal = signal;
    this.#firstMs = firstMs;
    this.#chunkMs = chunkMs;
    this.#panic = panic;
    this.#watched = signal !== undefined || firstMs !== undefined || chunkMs !== undefined;
  }

  /** The outcome counted, once the stream is settled; `undefined` before or when not admitted. */
  get outcome(): Outcome | undefined {
    return this.#attempt?.outcome;
  }

  /** Whether a chunk has reached the consumer. */
  get started(): boolean {
    return this.#started;
  }

  next(): Promise<IteratorResult<T>> {
    const state = this.#state;
    if (state === RUNNING) {
      // A pull in flight on the watched path: queue behind it, so each gets its own chunk.
      if (this.#resolvePending !== undefined) return this.#queue();
      return this.#pull();
    }
    if (state === IDLE) return this.#open();
    if (state === OPENING) return (this.#opening as Promise<unknown>).then(() => this.next());
    const cut = this.#cut;
    return cut === undefined ? Promise.resolve(DONE) : Promise.reject(cut.reason);
  }

  return(value?: unknown): Promise<IteratorResult<T>> {
    const state = this.#state;
    this.#state = ENDED;
    this.#cut = undefined;
    if (state === RUNNING || state === OPENING) this.#stop();
    return Promise.resolve({ done: true, value: value as T });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #queue(): Promise<IteratorResult<T>> {
    this.#queued++;
    const run = (): Promise<IteratorResult<T>> => {
      if (--this.#queued === 0) this.#queueTail = undefined;
      return this.next();
    };
    const after = this.#queueTail ?? (this.#current as Promise<IteratorResult<T>>);
    const queued = after.then(run, run);
    this.#queueTail = queued;
    return queued;
  }

  #open(): Promise<IteratorResult<T>> {
    this.#state = OPENING;
    const opened = this.#admitAndCall();
    this.#opening = opened.then(
      () => undefined,
      () => undefined,
    );
    return opened.then(() => this.next());
  }

  async #admitAndCall(): Promise<void> {
    const gate = this.#gate;
    const signal = this.#signal;
    if (signal?.aborted) {
      this.#state = ENDED;
      throw signal.reason;
    }
    let attempt: BreakerAttempt;
    try {
      const ticket = await admitWithin(gate, this.#panic, signal);
      // A stream has no deadline as a whole: its deadlines are the first chunk's and the gaps'.
      attempt = new BreakerAttempt(gate, ticket, signal, undefined);
    } catch (error) {
      this.#state = ENDED;
      throw error;
    }
    this.#attempt = attempt;
    if (attempt.probe) this.#renewAt = gate.clock.now() + gate.probeLease / 2;
    if (this.#state === ENDED || signal?.aborted) {
      // The consumer stopped, or the caller aborted, while the stream was being admitted.
      this.#state = ENDED;
      attempt.abortWith(signal?.reason, 'ignored');
      if (signal?.aborted) throw signal.reason;
      return;
    }
    if (this.#watched) {
      attempt.signal.addEventListener('abort', () => this.#aborted(), { once: true });
      if (this.#firstMs !== undefined) this.#arm(this.#firstMs);
    }
    let source: unknown;
    let pending: StreamSource<T> | Promise<StreamSource<T>> | undefined;
    try {
      pending = this.#fn(attempt.signal);
      source = this.#watched ? await this.#race(Promise.resolve(pending)) : await pending;
    } catch (error) {
      // Cut (a breach, the caller's abort) while `fn` was still opening: whatever it opens
      // late is closed then.
      if (pending !== undefined && attempt.signal.aborted) {
        Promise.resolve(pending).then(closeSource, () => undefined);
      }
      this.#failed(error);
    }
    if (this.#state === ENDED) {
      // The consumer stopped while `fn` was opening the stream: close what it opened.
      closeSource(source);
      return;
    }
    try {
      this.#source = iteratorOf<T>(source, 'stream()');
    } catch (error) {
      // The caller's code is at fault, not the upstream: counted nowhere.
      this.#state = ENDED;
      this.#clearTimer();
      attempt.ignore();
      throw error;
    }
    this.#state = RUNNING;
  }

  #pull(): Promise<IteratorResult<T>> {
    const source = this.#source as AsyncIterator<T>;
    if (this.#chunkMs !== undefined && this.#started) {
      this.#waitingSince = this.#gate.clock.now();
      this.#waiting = true;
      if (this.#timer === undefined) this.#arm(this.#chunkMs);
    }
    let next: Promise<IteratorResult<T>>;
    try {
      next = source.next();
    } catch (error) {
      return Promise.reject(error).catch(this.#onError);
    }
    if (!this.#watched) return next.then(this.#onResult, this.#onError);
    // One promise the breach can reject, settled straight from the source's answer.
    const pending = new Promise<IteratorResult<T>>(this.#hold);
    this.#current = pending;
    next.then(this.#onWatchedResult, this.#onWatchedError);
    return pending;
  }

  // One executor for every pull: no closure per chunk.
  readonly #hold = (
    resolve: (result: IteratorResult<T>) => void,
    reject: (reason: unknown) => void,
  ): void => {
    this.#resolvePending = resolve;
    this.#rejectPending = reject;
  };

  readonly #onWatchedResult = (result: IteratorResult<T>): void => {
    const resolve = this.#resolvePending;
    const reject = this.#rejectPending;
    this.#resolvePending = undefined;
    this.#rejectPending = undefined;
    if (resolve === undefined || reject === undefined) return;
    try {
      resolve(this.#onResult(result));
    } catch (error) {
      reject(error);
    }
  };

  readonly #onWatchedError = (error: unknown): void => {
    const reject = this.#rejectPending;
    this.#resolvePending = undefined;
    this.#rejectPending = undefined;
    if (reject === undefined) return;
    try {
      this.#onError(error);
    } catch (thrown) {
      reject(thrown);
    }
  };

  readonly #onResult = (result: IteratorResult<T>): IteratorResult<T> => {
    if (this.#state === ENDED) return DONE;
    this.#waiting = false;
    if (result.done === true) {
      this.#state = ENDED;
      this.#clearTimer();
      (this.#attempt as BreakerAttempt).success();
      return result;
    }
    if (!this.#started) {
      this.#started = true;
      (this.#attempt as BreakerAttempt).firstChunk();
      if (this.#firstMs !== undefined) this.#clearTimer();
    }
    if (this.#renewAt !== Number.POSITIVE_INFINITY) this.#renew();
    return result;
  };

  readonly #onError = (error: unknown): never => {
    if (this.#state !== ENDED) this.#failed(error);
    throw error;
  };

  // A probe whose chunks flow keeps its slot: its lease is extended by a full lease at most
  // once per half lease, so a stream of any length writes at most 2 × duration / lease times.
  #renew(): void {
    const now = this.#gate.clock.now();
    if (now < this.#renewAt) return;
    const lease = this.#gate.probeLease;
    this.#renewAt = now + lease / 2;
    (this.#attempt as BreakerAttempt).renew(now + lease);
  }

  /** An error of the upstream, before or during the stream: classified like a call's. */
  #failed(error: unknown): never {
    const attempt = this.#attempt as BreakerAttempt;
    const aborted = attempt.signal.aborted;
    this.#state = ENDED;
    this.#clearTimer();
    if (!aborted) attempt.failure(error);
    // After a breach or the caller's abort the upstream's own error says less than the reason.
    throw aborted ? attempt.signal.reason : error;
  }

  /** Races `promise` against the attempt's signal. */
  #race<X>(promise: Promise<X>): Promise<X> {
    return new Promise<X>((resolve, reject) => {
      this.#rejectPending = reject;
      promise.then(resolve, reject);
    });
  }

  /** The attempt's signal aborted: a deadline, the caller, or the consumer stopping. */
  #aborted(): void {
    const reason: unknown = (this.#attempt as BreakerAttempt).signal.reason;
    const reject = this.#rejectPending;
    // Cut from outside (not by the consumer's return(), nor an error a pull already threw) while
    // no pull was pending: the next read must say so.
    if (this.#state !== ENDED && reject === undefined) this.#cut = { reason };
    this.#state = ENDED;
    this.#clearTimer();
    this.#rejectPending = undefined;
    this.#resolvePending = undefined;
    reject?.(reason);
    this.#close();
  }

  /** The consumer stopped early: ignored, and the upstream is asked to stop. */
  #stop(): void {
    this.#clearTimer();
    const attempt = this.#attempt;
    if (attempt === undefined) return;
    attempt.ignore();
    this.#close();
  }

  #close(): void {
    const source = this.#source;
    if (this.#closed || source === undefined) return;
    this.#closed = true;
    // Not awaited: a source that ignores its signal could hold the consumer forever.
    try {
      source.return?.()?.then(undefined, () => undefined);
    } catch {
      // The source's own cleanup failed; the stream is over either way.
    }
  }

  #arm(ms: number): void {
    this.#timer = this.#gate.clock.setTimeout(this.#onTimer, ms);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) {
      this.#gate.clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    if (this.#state === ENDED) return;
    const attempt = this.#attempt as BreakerAttempt;
    const gate = this.#gate;
    if (!this.#started) {
      attempt.abortWith(new FirstChunkTimeoutError(gate.name, this.#firstMs as number), 'failure');
      return;
    }
    // The consumer holds a chunk: its time is not the upstream's; the next pull re-arms.
    if (!this.#waiting) return;
    const chunkMs = this.#chunkMs as number;
    const idle = gate.clock.now() - this.#waitingSince;
    if (idle >= chunkMs) attempt.abortWith(new ChunkTimeoutError(gate.name, chunkMs), 'failure');
    else this.#arm(chunkMs - idle);
  };
}
