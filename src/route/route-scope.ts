import { RouteTimeoutError } from './errors.js';

/** What a scope needs of its route. */
interface ScopedRoute {
  readonly name: string;
  readonly timeout: number | undefined;
  readonly targets: ReadonlyArray<{ readonly breaker: { readonly clock: RouteClock } }>;
}

interface RouteClock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * One route call's signal: the caller's, and the route's deadline (on the first target's
 * clock). No signal and no timer when neither is set.
 */
export class RouteScope {
  readonly signal: AbortSignal | undefined;
  readonly #callerSignal: AbortSignal | undefined;
  readonly #clock: RouteClock | undefined;
  #timer: unknown;
  #onAbort: (() => void) | undefined;

  constructor(route: ScopedRoute, callerSignal: AbortSignal | undefined) {
    this.#callerSignal = callerSignal;
    const timeout = route.timeout;
    if (timeout === undefined) {
      this.signal = callerSignal;
      return;
    }
    const controller = new AbortController();
    this.signal = controller.signal;
    if (callerSignal?.aborted) {
      controller.abort(callerSignal.reason);
      return;
    }
    if (callerSignal !== undefined) {
      this.#onAbort = () => controller.abort(callerSignal.reason);
      callerSignal.addEventListener('abort', this.#onAbort, { once: true });
    }
    const clock = route.targets[0]?.breaker.clock as RouteClock;
    this.#clock = clock;
    this.#timer = clock.setTimeout(() => {
      this.#timer = undefined;
      controller.abort(new RouteTimeoutError(route.name, timeout));
    }, timeout);
  }

  /** Throws the reason when the caller aborted or the route's deadline passed. */
  throwIfAborted(): void {
    if (this.signal?.aborted) throw this.signal.reason;
  }

  /** The error to throw for `error`: the scope's reason once it aborted. */
  reasonFor(error: unknown): unknown {
    return this.signal?.aborted ? this.signal.reason : error;
  }

  /** Stops the deadline's timer (a stream past its first chunk); the caller's signal still counts. */
  stopDeadline(): void {
    if (this.#timer !== undefined) {
      this.#clock?.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  /** Stops the deadline's timer and the caller's listener. */
  end(): void {
    this.stopDeadline();
    if (this.#onAbort !== undefined) {
      this.#callerSignal?.removeEventListener('abort', this.#onAbort);
      this.#onAbort = undefined;
    }
  }
}
