import { panicProbe } from '../attempt.js';
import { CircuitBreakerError } from '../errors.js';
import { BreakerStream, type StreamRun } from '../stream/breaker-stream.js';
import type { StreamSource } from '../stream/source.js';
import {
  checkStreamOptions,
  type StreamAdmissionOptions,
  type StreamOptions,
} from '../stream/stream-options.js';
import { describeValue } from '../validate.js';
import { AllTargetsFailedError, rejectedTarget, type TargetAttempt } from './errors.js';
import type { FailoverRoute, RouteTarget } from './failover.js';
import { failureReason } from './failover-feed.js';
import { RouteScope } from './route-scope.js';

type RouteStreamFunction<V, T> = (
  value: V,
  signal: AbortSignal,
) => StreamSource<T> | Promise<StreamSource<T>>;

/** A route's stream: each iteration fails over until a first chunk arrives. */
export class RouteStream<V, T> implements AsyncIterable<T> {
  readonly #route: FailoverRoute<V>;
  readonly #fn: RouteStreamFunction<V, T>;
  readonly #options: StreamOptions;

  constructor(route: FailoverRoute<V>, fn: RouteStreamFunction<V, T>, options?: StreamOptions) {
    if (typeof fn !== 'function') {
      throw new TypeError(`route.stream() needs a function, got ${describeValue(fn)}`);
    }
    this.#route = route;
    this.#fn = fn;
    this.#options = checkStreamOptions('route.stream()', options);
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return new RouteStreamRun(this.#route, this.#fn, this.#options);
  }
}

class RouteStreamRun<V, T> implements AsyncIterator<T> {
  readonly #route: FailoverRoute<V>;
  readonly #fn: RouteStreamFunction<V, T>;
  readonly #options: StreamOptions;
  #run: StreamRun<T> | undefined;
  #scope: RouteScope | undefined;
  #opening: Promise<IteratorResult<T>> | undefined;
  #ended = false;

  constructor(route: FailoverRoute<V>, fn: RouteStreamFunction<V, T>, options: StreamOptions) {
    this.#route = route;
    this.#fn = fn;
    this.#options = options;
  }

  next(): Promise<IteratorResult<T>> {
    const run = this.#run;
    if (run !== undefined) return run.next().then(this.#passed, this.#failed);
    if (this.#ended) return Promise.resolve({ done: true, value: undefined });
    const opening = this.#opening;
    // A second pull while the stream opens waits for it and then reads on: the first chunk is
    // the first pull's alone.
    if (opening !== undefined) return opening.then(this.#again, this.#again);
    this.#opening = this.#open();
    return this.#opening;
  }

  return(value?: unknown): Promise<IteratorResult<T>> {
    this.#ended = true;
    this.#scope?.end();
    const run = this.#run;
    if (run !== undefined) return run.return(value);
    return Promise.resolve({ done: true, value: value as T });
  }

  readonly #again = (): Promise<IteratorResult<T>> => this.next();

  readonly #passed = (result: IteratorResult<T>): IteratorResult<T> => {
    if (result.done === true) this.#finish();
    return result;
  };

  readonly #failed = (error: unknown): never => {
    this.#finish();
    throw error;
  };

  #finish(): void {
    this.#ended = true;
    this.#scope?.end();
  }

  async #open(): Promise<IteratorResult<T>> {
    const route = this.#route;
    const options = this.#options;
    const scope = new RouteScope(route, options.signal);
    this.#scope = scope;
    const attempts: TargetAttempt[] = [];
    const count = route.targets.length;
    try {
      for (let i = 0; i <= count; i++) {
        let index = i;
        let panicGeneration: number | undefined;
        if (i === count) {
          index = route.panicTarget(attempts);
          if (index < 0) break;
          panicGeneration = route.panicGeneration(index);
        }
        scope.throwIfAborted();
        if (this.#ended) return { done: true, value: undefined };
        const target = route.targets[index] as RouteTarget<V>;
        const perTarget: StreamAdmissionOptions = {};
        if (scope.signal !== undefined) perTarget.signal = scope.signal;
        if (options.firstChunkTimeout !== undefined) {
          perTarget.firstChunkTimeout = options.firstChunkTimeout;
        }
        if (options.chunkTimeout !== undefined) perTarget.chunkTimeout = options.chunkTimeout;
        if (panicGeneration !== undefined) perTarget[panicProbe] = panicGeneration;
        const fn = this.#fn;
        const run = new BreakerStream<T>(
          route.gate(index),
          (signal) => fn(target.value, signal),
          perTarget,
        )[Symbol.asyncIterator]();
        let first: IteratorResult<T>;
        try {
          first = await run.next();
        } catch (error) {
          if (error instanceof CircuitBreakerError) {
            if (panicGeneration !== undefined) break;
            attempts.push(rejectedTarget(target.breaker.name, error));
            route.leave(index, route.nextAfter(index, attempts), 'rejected');
            continue;
          }
          scope.throwIfAborted();
          if (run.outcome !== 'failure') throw error;
          attempts.push({ name: target.breaker.name, state: target.breaker.state, error });
          if (panicGeneration !== undefined) break;
          route.leave(index, route.nextAfter(index, attempts), failureReason(error));
          continue;
        }
        if (this.#ended) {
          // The consumer stopped while the stream was opening.
          await run.return();
          return { done: true, value: undefined };
        }
        // From here on the consumer has the stream: no more failover, only the caller's signal.
        scope.stopDeadline();
        if (first.done === true) {
          this.#finish();
          return first;
        }
        this.#run = run;
        return first;
      }
      throw new AllTargetsFailedError(route.name, attempts);
    } catch (error) {
      this.#finish();
      throw error;
    }
  }
}
