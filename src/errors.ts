import type { CircuitState } from './state.js';

// Rejections are the hot path of an open circuit; a captured stack costs ~3 µs and says
// nothing the breaker name and state do not.
function withoutStack<T>(build: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return build();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** Thrown by `call()` when the circuit does not admit the call; the function is not called. */
export class CircuitBreakerError extends Error {
  override readonly name = 'CircuitBreakerError';
  /** The breaker's name. */
  readonly breaker: string;
  /** The state that rejected the call. */
  readonly state: CircuitState;
  /** Milliseconds until an open circuit may half-open; `undefined` in other states. */
  readonly retryAfterMs: number | undefined;

  /** Prefer {@link CircuitBreakerError.create}, which skips capturing a stack trace. */
  constructor(breaker: string, state: CircuitState, retryAfterMs?: number) {
    const after = retryAfterMs === undefined ? '' : `; retry after ${retryAfterMs} ms`;
    const why = state === 'halfOpen' ? 'half-open, probe slots taken' : state;
    super(`circuit breaker "${breaker}" is ${why}${after}`);
    this.breaker = breaker;
    this.state = state;
    this.retryAfterMs = retryAfterMs;
  }

  /** Builds the error without a stack trace: rejection stays cheap while the circuit is open. */
  static create(breaker: string, state: CircuitState, retryAfterMs?: number): CircuitBreakerError {
    return withoutStack(() => new CircuitBreakerError(breaker, state, retryAfterMs));
  }
}

/** A call ran longer than the breaker's `timeout`; its signal was aborted and it counts as a failure. */
export class CallTimeoutError extends Error {
  override readonly name: string = 'CallTimeoutError';
  /** The breaker's name. */
  readonly breaker: string;
  /** The `timeout` option in milliseconds. */
  readonly timeoutMs: number;

  constructor(breaker: string, timeoutMs: number) {
    super(`call through circuit breaker "${breaker}" timed out after ${timeoutMs} ms`);
    this.breaker = breaker;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * A stream sent no chunk within `firstChunkTimeout` (or the breaker's `timeout` when that is
 * unset); its signal was aborted and it counts as a failure.
 */
export class FirstChunkTimeoutError extends CallTimeoutError {
  override readonly name: string = 'FirstChunkTimeoutError';

  constructor(breaker: string, timeoutMs: number) {
    super(breaker, timeoutMs);
    this.message = `stream through circuit breaker "${breaker}" sent no first chunk within ${timeoutMs} ms`;
  }
}

/**
 * A stream went longer than `chunkTimeout` without a chunk once it had begun; its signal was
 * aborted and it counts as a failure.
 */
export class ChunkTimeoutError extends CallTimeoutError {
  override readonly name: string = 'ChunkTimeoutError';

  constructor(breaker: string, timeoutMs: number) {
    super(breaker, timeoutMs);
    this.message = `stream through circuit breaker "${breaker}" stalled: no chunk for ${timeoutMs} ms`;
  }
}

/** `call()` on a breaker after its `dispose()`: the function is not called. */
export class BreakerDisposedError extends Error {
  override readonly name = 'BreakerDisposedError';
  /** The breaker's name. */
  readonly breaker: string;

  constructor(breaker: string) {
    super(
      `circuit breaker "${breaker}" is disposed: it no longer follows the fleet, so it admits no call (get a new one with getCircuitBreaker or new CircuitBreaker)`,
    );
    this.breaker = breaker;
  }
}

/**
 * `value` as an `Error`: itself when it is one, else an `Error` with its text as the message
 * and the value as the `cause`, so that listeners can read `error.message` whatever a store
 * rejected with.
 */
export function asError(value: unknown): Error {
  if (value instanceof Error) return value;
  let message: string;
  try {
    message = String(value);
  } catch {
    // An object without a prototype cannot be turned into a string.
    message = typeof value;
  }
  return new Error(message, { cause: value });
}
