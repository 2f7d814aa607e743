import type { Attempt } from '../attempt.js';
import type { Clock } from '../clock.js';
import { ChunkTimeoutError, FirstChunkTimeoutError } from '../errors.js';
import { checkDuration } from '../validate.js';
import { type Classify, settleWith } from './settle.js';

/** The stream rules an integration watches an upstream's stream with. */
export interface StreamRules {
  /** Milliseconds from the request until the first chunk; unset: no deadline. */
  firstChunkTimeout?: number | undefined;
  /** The longest wait in milliseconds for the next chunk once one came; unset: no deadline. */
  chunkTimeout?: number | undefined;
}

/** `options`' stream rules, validated; `label` names the function for error messages. */
export function checkStreamRules(label: string, options: StreamRules | undefined): StreamRules {
  const rules: StreamRules = {};
  if (options?.firstChunkTimeout !== undefined) {
    rules.firstChunkTimeout = checkDuration(
      `${label} option firstChunkTimeout`,
      options.firstChunkTimeout,
    );
  }
  if (options?.chunkTimeout !== undefined) {
    rules.chunkTimeout = checkDuration(`${label} option chunkTimeout`, options.chunkTimeout);
  }
  return rules;
}

/** What a watched stream settles and aborts. */
export interface StreamWatch<T> {
  readonly attempt: Attempt;
  /** The breaker's name, for the deadline errors. */
  readonly breaker: string;
  readonly clock: Clock;
  readonly classify: Classify;
  /** Aborted with the deadline error on a breach, so that the upstream stops sending. */
  readonly abort: (reason: unknown) => void;
  /**
   * The caller's signal: its abort settles the attempt as `classify` judges the reason (the AI
   * SDK's own chunk timeout aborts with a `TimeoutError`, a failure; a user's abort is ignored).
   */
  readonly signal?: AbortSignal | undefined;
  /**
   * Called once the attempt settles, before it does; `ended` is false when the stream goes on
   * (an in-band error value settled it).
   */
  readonly settling?: (ended: boolean) => void;
  /** Whether `value` counts as a chunk; every value does by default. */
  readonly isChunk?: (value: T) => boolean;
  /**
   * Whether `value` completes the answer (the AI SDK's `finish` part): the stream is a success
   * once it is read, even if the consumer stops reading before the stream's own end.
   */
  readonly isLast?: (value: T) => boolean;
  /** The error an in-band error value carries (the AI SDK's `{ type: 'error' }` part). */
  readonly errorOf?: (value: T) => { error: unknown } | undefined;
}

/**
 * Deadlines of a watched stream: armed only while the watcher waits on the upstream (the time a
 * consumer holds a chunk does not count), the first one counted from `startedAt`.
 */
class Deadlines {
  #timer: unknown;
  constructor(
    readonly clock: Clock,
    readonly onBreach: (error: Error) => void,
  ) {}
  arm(ms: number | undefined, error: () => Error): void {
    this.clear();
    if (ms === undefined) return;
    this.#timer = this.clock.setTimeout(
      () => {
        this.#timer = undefined;
        this.onBreach(error());
      },
      Math.max(0, ms),
    );
  }
  clear(): void {
    if (this.#timer === undefined) return;
    this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * `source` with the stream rules applied, settling `watch.attempt` once: a success only when the
 * stream ends normally; a failure on a breach of a deadline (which also aborts the upstream),
 * an error while reading, or an in-band error value judged a failure; ignored when the consumer
 * cancels. `startedAt` (on `watch.clock`) is when the request was sent.
 */
export function watchStream<T>(
  source: ReadableStream<T>,
  watch: StreamWatch<T>,
  rules: StreamRules,
  startedAt: number,
): ReadableStream<T> {
  const { attempt, breaker, clock } = watch;
  const reader = source.getReader();
  let settled = false;
  let started = false;
  let breach: Error | undefined;
  let stopped: { reason: unknown } | undefined;
  const settle = (how: () => void, ended = true) => {
    if (settled) return;
    settled = true;
    deadlines.clear();
    signal?.removeEventListener('abort', onAbort);
    watch.settling?.(ended);
    how();
  };
  const deadlines = new Deadlines(clock, (error) => {
    breach = error;
    settle(() => attempt.failure(error));
    watch.abort(error);
    reader.cancel(error).catch(() => undefined);
  });
  const signal = watch.signal;
  // The caller gave up (or the AI SDK's own deadline passed): settle, and stop reading even from
  // a source that does not heed its signal.
  const onAbort = () => {
    const reason: unknown = signal?.reason;
    stopped = { reason };
    settle(() => settleWith(attempt, reason, watch.classify));
    reader.cancel(reason).catch(() => undefined);
  };
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  const armFor = () => {
    if (settled) return;
    if (!started) {
      const ms = rules.firstChunkTimeout;
      const left = ms === undefined ? undefined : ms - (clock.now() - startedAt);
      deadlines.arm(left, () => new FirstChunkTimeoutError(breaker, ms as number));
    } else {
      const ms = rules.chunkTimeout;
      deadlines.arm(ms, () => new ChunkTimeoutError(breaker, ms as number));
    }
  };
  return new ReadableStream<T>(
    {
      async pull(controller) {
        armFor();
        let next: ReadableStreamReadResult<T>;
        try {
          next = await reader.read();
        } catch (error) {
          const reason = breach ?? (stopped === undefined ? error : stopped.reason);
          settle(() => settleWith(attempt, reason, watch.classify));
          controller.error(reason);
          return;
        }
        deadlines.clear();
        if (breach !== undefined || stopped !== undefined) {
          controller.error(breach ?? stopped?.reason);
          return;
        }
        if (next.done) {
          settle(() => attempt.success());
          controller.close();
          return;
        }
        const value = next.value;
        // Chunks that flow renew a probe's lease (throttled by the attempt).
        if (started || (watch.isChunk?.(value) ?? true)) {
          started = true;
          attempt.chunk();
        }
        const inBand = watch.errorOf?.(value);
        if (inBand !== undefined) {
          settle(() => settleWith(attempt, inBand.error, watch.classify), false);
        } else if (watch.isLast?.(value) === true) {
          settle(() => attempt.success(), false);
        }
        controller.enqueue(value);
      },
      cancel(reason) {
        settle(() => attempt.ignore());
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * The first-chunk deadline while a stream is being opened (the request sent, its response not
 * yet there): on a breach, `onBreach` gets the `FirstChunkTimeoutError`. `clear()` stops it once
 * the stream is open; {@link watchStream} then keeps the rest of the same deadline.
 */
export function openingDeadline(
  clock: Clock,
  ms: number | undefined,
  breaker: string,
  onBreach: (error: FirstChunkTimeoutError) => void,
): { readonly breach: FirstChunkTimeoutError | undefined; clear(): void } {
  let breach: FirstChunkTimeoutError | undefined;
  let timer: unknown;
  if (ms !== undefined) {
    timer = clock.setTimeout(() => {
      timer = undefined;
      breach = new FirstChunkTimeoutError(breaker, ms);
      onBreach(breach);
    }, ms);
  }
  return {
    get breach() {
      return breach;
    },
    clear() {
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
    },
  };
}
