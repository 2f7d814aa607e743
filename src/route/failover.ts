import { type BreakerAttempt, openAttempt, panicProbe } from '../attempt.js';
import { CircuitBreaker } from '../breaker.js';
import { CircuitBreakerError } from '../errors.js';
import { type BreakerGate, gateOf } from '../gate.js';
import { checkName } from '../name.js';
import type { Outcome } from '../options.js';
import type { StreamSource } from '../stream/source.js';
import type { StreamOptions } from '../stream/stream-options.js';
import { checkDuration, describeValue } from '../validate.js';
import { AllTargetsFailedError, rejectedTarget, type TargetAttempt } from './errors.js';
import {
  type FailoverEvent,
  type FailoverReason,
  failedOver,
  failoversFollowed,
  failureReason,
} from './failover-feed.js';
import { RouteScope } from './route-scope.js';
import { RouteStream } from './route-stream.js';

/** One target of a route: a breaker and the value handed to the route's function for it. */
export interface RouteTarget<V> {
  readonly breaker: CircuitBreaker;
  readonly value: V;
}

/** Options of {@link failover}. */
export interface RouteOptions {
  /** Labels the route's events and metrics. Default: the targets' names joined by `>`. */
  name?: string;
  /** Milliseconds for the whole route call (every target tried); besides each breaker's own. */
  timeout?: number;
  /**
   * When every target is open, let the one whose open period ends soonest take one early probe,
   * counted against its `halfOpenMaxCalls` fleet-wide (so the fleet sends it at most that many
   * calls at once). Default `false`: the route rejects with {@link AllTargetsFailedError}.
   */
  panic?: boolean;
}

/** Options of one route call. */
export interface RouteCallOptions {
  /** The caller's signal: aborting it stops the call and every target after it. */
  signal?: AbortSignal;
}

/** A failover route over several breakers; see {@link failover}. */
export interface Route<V> {
  /** The route's name, as its events and metrics carry it. */
  readonly name: string;
  /** The targets, in the order they are tried. */
  readonly targets: ReadonlyArray<RouteTarget<V>>;
  /**
   * Calls `fn` with the first target whose breaker admits the call; moves on to the next when
   * it fails (classified a failure). Rejects with an ignored error at once, with the caller's
   * abort reason, with {@link RouteTimeoutError}, or with {@link AllTargetsFailedError}.
   */
  call<R>(
    fn: (value: V, signal: AbortSignal) => R | PromiseLike<R>,
    options?: RouteCallOptions,
  ): Promise<R>;
  /**
   * Streams `fn`'s chunks from the first target that admits the stream and sends a first
   * chunk; after the first chunk has reached the consumer, an error reaches the consumer.
   */
  stream<T>(
    fn: (value: V, signal: AbortSignal) => StreamSource<T> | Promise<StreamSource<T>>,
    options?: StreamOptions,
  ): AsyncIterable<T>;
  /** Hears the route's failovers; returns the function that unsubscribes. */
  on(event: 'failover', listener: (event: FailoverEvent) => void): () => void;
}

const FN = 'failover()';

/**
 * A route over `targets`, tried in order, each behind its own breaker. A target whose breaker
 * rejects is skipped at once (no call, no wait); a call that fails moves on to the next
 * target; an ignored error (the request is at fault) is thrown to the caller and never tried
 * elsewhere. At most one attempt per target per call. Since breakers are shared, one process's
 * trip sends every process's next call straight to the next target.
 *
 * @example
 * const llm = failover([
 *   { breaker: getCircuitBreaker('openai:gpt-5', { store }), value: openai },
 *   { breaker: getCircuitBreaker('anthropic:sonnet', { store }), value: anthropic },
 * ]);
 * const answer = await llm.call((client, signal) => complete(client, prompt, signal));
 *
 * @throws TypeError or RangeError naming a bad target or option.
 */
export function failover<V>(
  targets: ReadonlyArray<RouteTarget<V>>,
  options?: RouteOptions,
): Route<V> {
  return new FailoverRoute(targets, options);
}

function checkTargets<V>(targets: unknown): ReadonlyArray<RouteTarget<V>> {
  if (!Array.isArray(targets) || targets.length === 0) {
    throw new TypeError(`${FN} needs a non-empty array of targets, got ${describeValue(targets)}`);
  }
  const names = new Set<string>();
  return targets.map((target: unknown, i) => {
    const breaker = (target as { breaker?: unknown } | null)?.breaker;
    if (!(breaker instanceof CircuitBreaker)) {
      throw new TypeError(
        `${FN} target ${i} must be { breaker: CircuitBreaker, value }, got breaker ${describeValue(breaker)}`,
      );
    }
    if (names.has(breaker.name)) {
      throw new RangeError(
        `${FN} target ${i}: breaker "${breaker.name}" is already a target of this route`,
      );
    }
    names.add(breaker.name);
    return Object.freeze({ breaker, value: (target as RouteTarget<V>).value });
  });
}

function checkOptions(options: unknown): { name?: string; timeout?: number; panic: boolean } {
  if (options === undefined) return { panic: false };
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`${FN} options must be an object, got ${describeValue(options)}`);
  }
  const given = options as RouteOptions;
  for (const key of Object.keys(given)) {
    if (key !== 'name' && key !== 'timeout' && key !== 'panic') {
      throw new TypeError(`unknown ${FN} option ${JSON.stringify(key)}`);
    }
  }
  if (given.panic !== undefined && typeof given.panic !== 'boolean') {
    throw new TypeError(`${FN} option panic must be a boolean, got ${describeValue(given.panic)}`);
  }
  const checked: { name?: string; timeout?: number; panic: boolean } = {
    panic: given.panic === true,
  };
  if (given.name !== undefined) checked.name = checkName(given.name, `${FN} option name`);
  if (given.timeout !== undefined) {
    checked.timeout = checkDuration(`${FN} option timeout`, given.timeout);
  }
  return checked;
}

/** What a route's call and stream share: its targets, deadline and failovers. */
export class FailoverRoute<V> implements Route<V> {
  readonly name: string;
  readonly targets: ReadonlyArray<RouteTarget<V>>;
  /** The route's `timeout`. */
  readonly timeout: number | undefined;
  readonly panic: boolean;
  readonly #gates: readonly BreakerGate[];
  // The fast path's reads, held in fields of their own.
  readonly #firstGate: BreakerGate;
  readonly #firstValue: V;
  readonly #plain: boolean;
  #listeners: Set<(event: FailoverEvent) => void> | null = null;

  constructor(targets: ReadonlyArray<RouteTarget<V>>, options: RouteOptions | undefined) {
    this.targets = Object.freeze(checkTargets<V>(targets));
    const checked = checkOptions(options);
    this.name = checked.name ?? this.targets.map((t) => t.breaker.name).join('>');
    this.timeout = checked.timeout;
    this.panic = checked.panic;
    this.#gates = this.targets.map((t) => t.breaker[gateOf]());
    this.#firstGate = this.#gates[0] as BreakerGate;
    this.#firstValue = (this.targets[0] as RouteTarget<V>).value;
    this.#plain = this.timeout === undefined;
  }

  /** The gate of target `i`. */
  gate(i: number): BreakerGate {
    return this.#gates[i] as BreakerGate;
  }

  call<R>(
    fn: (value: V, signal: AbortSignal) => R | PromiseLike<R>,
    options?: RouteCallOptions,
  ): Promise<R> {
    if (typeof fn !== 'function') {
      return Promise.reject(
        new TypeError(`route.call() needs a function, got ${describeValue(fn)}`),
      );
    }
    // The common case, the first target closed, is the breaker's own fast path: as cheap as it.
    const gate = this.#firstGate;
    if (options === undefined && this.#plain && gate.fastPath) {
      return gate.callFirst(fn, this.#firstValue, this);
    }
    return this.#call(fn, options?.signal, 0, []);
  }

  stream<T>(
    fn: (value: V, signal: AbortSignal) => StreamSource<T> | Promise<StreamSource<T>>,
    options?: StreamOptions,
  ): AsyncIterable<T> {
    return new RouteStream(this, fn, options);
  }

  on(event: 'failover', listener: (event: FailoverEvent) => void): () => void {
    if (event !== 'failover') throw new TypeError(`a route has no event ${describeValue(event)}`);
    if (typeof listener !== 'function') {
      throw new TypeError(`listener for "failover" must be a function, got ${typeof listener}`);
    }
    this.#listeners ??= new Set();
    this.#listeners.add(listener);
    return () => {
      this.#listeners?.delete(listener);
    };
  }

  /** Tells listeners and the metrics that the route left target `from` for `to`. */
  leave(from: number, to: number | null, reason: FailoverReason): void {
    const listeners = this.#listeners;
    if ((listeners === null || listeners.size === 0) && !failoversFollowed()) return;
    const breaker = (this.targets[from] as RouteTarget<V>).breaker;
    const event: FailoverEvent = {
      route: this.name,
      from: breaker.name,
      to: to === null ? null : (this.targets[to] as RouteTarget<V>).breaker.name,
      reason,
      state: breaker.state,
    };
    failedOver(event);
    if (listeners === null) return;
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        // A listener's bug must not break the route nor cost the caller its answer.
        process.emitWarning(`statebreaker: a "failover" listener threw: ${String(error)}`);
      }
    }
  }

  /**
   * After every target was tried: the target a panic probe may go to (every target rejected
   * while open, and the route allows it), the one whose open period ends soonest; else -1.
   */
  panicTarget(attempts: readonly TargetAttempt[]): number {
    if (!this.panic || attempts.length !== this.targets.length) return -1;
    let best = -1;
    let soonest = Number.POSITIVE_INFINITY;
    for (let i = 0; i < attempts.length; i++) {
      const attempt = attempts[i] as TargetAttempt;
      if (attempt.state !== 'open' || attempt.retryAfterMs === undefined) return -1;
      if (attempt.retryAfterMs < soonest) {
        soonest = attempt.retryAfterMs;
        best = i;
      }
    }
    return best;
  }

  /** The generation of target `i`'s open period, for its panic probe. */
  panicGeneration(i: number): number {
    return (this.targets[i] as RouteTarget<V>).breaker.context.generation;
  }

  /** The next target after `i` for a call whose attempts so far are `attempts`. */
  nextAfter(i: number, attempts: readonly TargetAttempt[]): number | null {
    if (i + 1 < this.targets.length) return i + 1;
    const panic = this.panicTarget(attempts);
    return panic < 0 ? null : panic;
  }

  /** @internal The first target's call failed on the fast path, counted as `outcome`. */
  afterFirst<W, R>(
    fn: (value: W, signal: AbortSignal) => R | PromiseLike<R>,
    error: unknown,
    outcome: Outcome,
  ): Promise<R> {
    if (outcome !== 'failure') return Promise.reject(error);
    const breaker = (this.targets[0] as RouteTarget<V>).breaker;
    const attempts: TargetAttempt[] = [{ name: breaker.name, state: breaker.state, error }];
    this.leave(0, this.nextAfter(0, attempts), failureReason(error));
    return this.#call(
      fn as unknown as (value: V, signal: AbortSignal) => R,
      undefined,
      1,
      attempts,
    );
  }

  async #call<R>(
    fn: (value: V, signal: AbortSignal) => R | PromiseLike<R>,
    callerSignal: AbortSignal | undefined,
    from: number,
    attempts: TargetAttempt[],
  ): Promise<R> {
    if (callerSignal !== undefined && !(callerSignal instanceof AbortSignal)) {
      throw new TypeError('route.call() option signal must be an AbortSignal');
    }
    const scope = new RouteScope(this, callerSignal);
    try {
      for (let i = from; i <= this.targets.length; i++) {
        let index = i;
        let panicGeneration: number | undefined;
        if (i === this.targets.length) {
          // Every target tried: a panic probe, or the end.
          index = this.panicTarget(attempts);
          if (index < 0) break;
          panicGeneration = this.panicGeneration(index);
        }
        scope.throwIfAborted();
        const target = this.targets[index] as RouteTarget<V>;
        let attempt: BreakerAttempt;
        try {
          attempt = await openAttempt(this.gate(index), {
            ...(scope.signal === undefined ? {} : { signal: scope.signal }),
            ...(panicGeneration === undefined ? {} : { [panicProbe]: panicGeneration }),
          });
        } catch (error) {
          if (!(error instanceof CircuitBreakerError)) throw scope.reasonFor(error);
          if (panicGeneration !== undefined) break;
          attempts.push(rejectedTarget(target.breaker.name, error));
          this.leave(index, this.nextAfter(index, attempts), 'rejected');
          continue;
        }
        let result: R;
        try {
          result = await runAttempt(attempt, () => fn(target.value, attempt.signal));
        } catch (error) {
          const outcome: Outcome = attempt.failure(error);
          scope.throwIfAborted();
          if (outcome !== 'failure') throw error;
          const thrown = attempt.signal.aborted ? attempt.signal.reason : error;
          attempts.push({ name: target.breaker.name, state: target.breaker.state, error: thrown });
          if (panicGeneration !== undefined) break;
          this.leave(index, this.nextAfter(index, attempts), failureReason(thrown));
          continue;
        }
        attempt.success();
        return result;
      }
      throw new AllTargetsFailedError(this.name, attempts);
    } finally {
      scope.end();
    }
  }
}

/** Runs `call` and settles as soon as the attempt's signal aborts, even if `call` ignores it. */
export function runAttempt<R>(attempt: BreakerAttempt, call: () => R | PromiseLike<R>): Promise<R> {
  const signal = attempt.signal;
  return new Promise<R>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const done = () => signal.removeEventListener('abort', onAbort);
    let pending: R | PromiseLike<R>;
    try {
      pending = call();
    } catch (error) {
      done();
      reject(error);
      return;
    }
    Promise.resolve(pending).then(
      (value) => {
        done();
        resolve(value);
      },
      (error: unknown) => {
        done();
        reject(error);
      },
    );
  });
}
