import { type Attempt, type AttemptOptions, openAttempt } from './attempt.js';
import { BreakerCore, lendInternals } from './breaker-core.js';
import { buildGate, builtGate, setStreamDeadlines } from './breaker-gate.js';
import { BreakerHooks } from './breaker-hooks.js';
import type { BreakerObserver } from './breaker-observer.js';
import { BreakerWindow } from './breaker-window.js';
import { CallTimer, Timing, timingFor } from './call-timing.js';
import type { Clock } from './clock.js';
import { BreakerDisposedError, type CircuitBreakerError } from './errors.js';
import { type BreakerEventMap, type BreakerListener, Emitter } from './events.js';
import { frozenContext } from './frozen-context.js';
import { type BreakerGate, type FirstTargetFailed, gateOf } from './gate.js';
import { instanceId } from './instance-id.js';
import { breakerCreated, breakerDisposed } from './live-breakers.js';
import type { BreakerConfig, BreakerContext } from './machine.js';
import { checkName } from './name.js';
import { type BreakerOptions, type Outcome, resolveOptions } from './options.js';
import { type Protect, protectFor } from './protect.js';
import { recordError } from './record-error.js';
import { Replica } from './replica/replica.js';
import { NEVER_ABORTED } from './run-call.js';
import { callSlow } from './slow-call.js';
import { CircuitState } from './state.js';
import { defaultStore } from './stores/memory.js';
import type { BreakerStore } from './stores/store.js';
import { BreakerStream } from './stream/breaker-stream.js';
import type { StreamFunction, StreamOptions } from './stream/stream-options.js';
import type { WindowRates } from './window/window-rates.js';

export type { Protect } from './protect.js';

/** Options of one call. */
export interface CallOptions {
  /** The caller's signal: aborting it aborts the call, which then counts as ignored. */
  signal?: AbortSignal;
}

let instanceCounter = 0;

/**
 * A circuit breaker whose every decision is made by the XState statechart `breakerMachine`,
 * shared by every breaker of the same name on the same store.
 *
 * @example
 * const breaker = new CircuitBreaker('openai', { timeout: 20_000 });
 * const reply = await breaker.call((signal) => fetch(url, { signal }));
 */
export class CircuitBreaker {
  // Private fields behind getters: a reassigned name would change the events but not the keys.
  readonly #name: string;
  readonly #store: BreakerStore;
  readonly #clock: Clock;
  readonly #replica: Replica;
  readonly #events = new Emitter();
  readonly #hooks: BreakerHooks;
  /** Which calls are timed: none, every one (a listener wants durations), or a sample. */
  #timing: Timing = Timing.Off;
  /** The clock reads around timed calls; built when the timing changes. */
  #timer: CallTimer | undefined;
  readonly #retryAfter: ((error: unknown) => number | undefined) | undefined;
  /** This breaker instance, as a quorum tells instances apart. */
  readonly #instance = `${instanceId}.${(++instanceCounter).toString(36)}`;
  /** The rate rules' window; only with a rate rule on. */
  readonly #window: BreakerWindow | undefined;
  /** `slowCallDuration`, when calls are timed for the slow-call rule. */
  readonly #slowMs: number | undefined;
  readonly #timeout: number | undefined;
  readonly #classify: ((error: unknown) => Outcome) | undefined;
  #protect: Protect | undefined;
  #disposed = false;

  /**
   * @throws TypeError or RangeError when the name or an option is invalid, naming it.
   */
  constructor(name: string, options?: BreakerOptions) {
    this.#name = checkName(name);
    const resolved = resolveOptions(options);
    this.#store = resolved.store ?? defaultStore;
    this.#clock = resolved.clock ?? this.#store.clock;
    this.#timeout = resolved.timeout;
    this.#classify = resolved.classify;
    setStreamDeadlines(this, resolved.firstChunkTimeout, resolved.chunkTimeout);
    this.#hooks = new BreakerHooks(this.name, this.#events);
    this.#replica = new Replica(
      this.name,
      resolved.config,
      this.store,
      this.clock,
      resolved.inspect,
      this.#hooks,
    );
    this.#retryAfter = resolved.retryAfter;
    const { config, windowFlush } = resolved;
    this.#slowMs = config.slowCallDuration;
    this.#window =
      windowFlush === undefined
        ? undefined
        : new BreakerWindow(
            this.name,
            config,
            windowFlush,
            this.#instance,
            this.store,
            this.clock,
            this.#replica,
            this.#events,
          );
    const replica = this.#replica;
    // The replica itself, not a closure over it: an idle breaker pays for no function.
    breakerCreated(this, replica);
  }

  /** The breaker's name: breakers of one name on one store share one statechart. Read-only. */
  get name(): string {
    return this.#name;
  }

  /** The store that holds the statechart's snapshots. Read-only. */
  get store(): BreakerStore {
    return this.#store;
  }

  /** The clock the breaker decides with. Read-only. */
  get clock(): Clock {
    return this.#clock;
  }

  /** The breaker's current top-level state. */
  get state(): CircuitState {
    return this.#replica.state;
  }

  /**
   * This instance's configuration, which governs its decisions: a frozen view. It is set by the
   * options at construction and checked against the shared record; it is never changed later.
   */
  get config(): BreakerConfig {
    return this.#replica.config;
  }

  /**
   * The statechart's current context (counters, `openedAt`, probe leases, generation): a frozen
   * copy, since only the statechart's events change it.
   */
  get context(): Readonly<BreakerContext> {
    // A copy per read rather than a cached one: an idle breaker pays no field for it.
    return frozenContext(this.#replica.context);
  }

  /**
   * With a rate rule: the fleet's failure and slow-call rates over the window, in percent, as
   * of the last flush (at most `windowFlush` ms old while calls flow), -1 below `minimumCalls`
   * or for a rule not configured; an empty window after the circuit trips or is reset. Without
   * a rate rule, `undefined`.
   */
  get rates(): WindowRates | undefined {
    return this.#window?.rates();
  }

  /**
   * Whether the store failed to answer and the breaker decides alone until it answers again
   * (between the `degraded` and `recovered` events).
   */
  get degraded(): boolean {
    return this.#replica.degraded;
  }

  /** Settles once the breaker has read its shared record and written its pending changes. */
  async settled(): Promise<void> {
    await this.#replica.ready;
    // Counts not yet flushed are changes too: the fleet's totals may trip the circuit.
    await this.#window?.flush();
    await this.#replica.settled();
  }

  /**
   * Calls `fn` if the circuit admits it, and records the outcome.
   *
   * `fn` receives an `AbortSignal` that aborts on the breaker's `timeout` or the caller's
   * `signal`. Rejects with {@link CircuitBreakerError} without calling `fn` while the circuit
   * is open, forced open, or half-open with every probe slot taken; otherwise settles as `fn`
   * does (or with `CallTimeoutError`).
   */
  async call<T>(
    fn: (signal: AbortSignal) => T | PromiseLike<T>,
    options?: CallOptions,
  ): Promise<T> {
    if (typeof fn !== 'function') {
      throw new TypeError(`call() needs a function, got ${fn === null ? 'null' : typeof fn}`);
    }
    const replica = this.#replica;
    if (!replica.loaded) await replica.ready;
    if (this.#disposed) throw new BreakerDisposedError(this.name);
    const signal = options?.signal;
    const state = replica.state;
    if (state === 'closed' && this.#timeout === undefined && signal === undefined) {
      const generation = replica.generation;
      const started = this.#timing === Timing.Off ? -1 : (this.#timer as CallTimer).start();
      const since = this.#slowMs === undefined ? 0 : this.clock.now();
      let result: T;
      try {
        result = await fn(NEVER_ABORTED);
      } catch (error) {
        recordError(this.#core(), error, generation, undefined, undefined, started, since);
        throw error;
      }
      this.#recordSuccess(generation, undefined, started, since);
      return result;
    }
    // Rejecting here, not in #callSlow, spares an async frame, the adoption of its rejected
    // promise and a round of unhandled-rejection bookkeeping.
    if ((state === 'open' || state === 'forcedOpen') && signal === undefined) {
      throw this.#hooks.rejected(state, this.#replica, this.clock);
    }
    return callSlow(this.#core(), fn, signal, state);
  }

  /** The duration of a timed call (`undefined` for an untimed one). */
  #clockStop(started: number): number | undefined {
    return started < 0 ? undefined : (this.#timer as CallTimer).stop(started);
  }

  // The observer loops on the call path are indexed: a for-of iterator is not always optimized
  // away, and would cost an allocation per call.
  #recordSuccess(
    generation: number,
    probeId: string | undefined,
    started: number,
    since: number,
  ): void {
    const replica = this.#replica;
    if (this.#window !== undefined && probeId === undefined) {
      this.#window.count(generation, false, since, this.#slowMs);
    }
    // A success in closed with no failures counted is a no-op of the machine: not sent, so that
    // neither the fast path nor a call with a timeout or signal wakes the actor for nothing.
    if (
      probeId !== undefined ||
      replica.failures !== 0 ||
      replica.streak !== 0 ||
      replica.state !== 'closed'
    ) {
      replica.send(
        probeId === undefined
          ? { type: 'SUCCESS', generation, at: this.clock.now() }
          : { type: 'SUCCESS', generation, probeId, at: this.clock.now() },
      );
    }
    const observers = this.#hooks.observers;
    const heard = this.#events.has('success');
    if (observers === null && !heard) return;
    const durationMs = this.#clockStop(started);
    if (observers !== null) {
      for (let i = 0; i < observers.length; i++) observers[i]?.successful(durationMs);
    }
    if (heard) this.#events.emit('success', { name: this.name, durationMs });
  }

  /**
   * Wraps `fn` so that every call goes through the breaker; the wrapper has `fn`'s parameters,
   * `name` and `length`, and resolves to its result. Also a TypeScript 5 method decorator: `@breaker.protect`.
   * Bound to the breaker, since a standard decorator is called without `this`.
   */
  get protect(): Protect {
    // Built on first use, so that a breaker that never protects anything pays nothing.
    if (this.#protect === undefined) this.#protect = protectFor(this);
    return this.#protect;
  }

  /**
   * Admits a call whose outcome the caller reports (a fetch wrapper, a middleware); rejects
   * with {@link CircuitBreakerError} when the circuit does not admit it. See {@link Attempt}.
   */
  attempt(options?: AttemptOptions): Promise<Attempt> {
    return openAttempt(this[gateOf](), options);
  }

  /**
   * Streams `fn`'s chunks through the breaker: admitted like a call when the consumer first
   * asks for a chunk; `firstChunkTimeout` and `chunkTimeout` breaches abort `fn`'s signal and
   * count as failures; a success only when the stream ends; a consumer that stops early is
   * ignored. A stream never iterated calls nothing.
   */
  stream<T>(fn: StreamFunction<T>, options?: StreamOptions): AsyncIterable<T> {
    return new BreakerStream(this[gateOf](), fn, options);
  }

  /** @internal The breaker's admission and recording, for attempts, streams and routes. */
  [gateOf](): BreakerGate {
    // Built on first use: a breaker that never streams pays nothing for it.
    return builtGate(this) ?? buildGate(this, this.#core());
  }

  // The private members the gate, the slow path and error recording need (breaker-core.ts), kept
  // off the public surface: lent once to every core, which holds only its breaker.
  static {
    lendInternals<CircuitBreaker>({
      replica: (b) => b.#replica,
      timeout: (b) => b.#timeout,
      classify: (b) => b.#classify,
      retryAfter: (b) => b.#retryAfter,
      events: (b) => b.#events,
      hooks: (b) => b.#hooks,
      instance: (b) => b.#instance,
      window: (b) => b.#window,
      slowMs: (b) => b.#slowMs,
      start: (b) => (b.#timing === Timing.Off ? -1 : (b.#timer as CallTimer).start()),
      since: (b) => (b.#slowMs === undefined ? 0 : b.clock.now()),
      recordSuccess: (b, g, probeId, started, since) =>
        b.#recordSuccess(g, probeId, started, since),
      clockStop: (b, started) => b.#clockStop(started),
      callFirst: (b, fn, value, next) => b.#callFirst(fn, value, next),
    });
  }

  // Made when needed rather than kept: a breaker that failed once pays nothing for it after.
  #core(): BreakerCore<CircuitBreaker> {
    return new BreakerCore(this);
  }

  // The closed path of call(), with a route's value and its continuation on an error.
  async #callFirst<V, R>(
    fn: (value: V, signal: AbortSignal) => R | PromiseLike<R>,
    value: V,
    next: FirstTargetFailed,
  ): Promise<R> {
    const generation = this.#replica.generation;
    const started = this.#timing === Timing.Off ? -1 : (this.#timer as CallTimer).start();
    const since = this.#slowMs === undefined ? 0 : this.clock.now();
    let result: Awaited<R>;
    try {
      result = await fn(value, NEVER_ABORTED);
    } catch (error) {
      const outcome = recordError(
        this.#core(),
        error,
        generation,
        undefined,
        undefined,
        started,
        since,
      );
      return next.afterFirst(fn, error, outcome);
    }
    this.#recordSuccess(generation, undefined, started, since);
    return result;
  }

  /** Opens the circuit until `reset()`, for every instance sharing it. */
  forceOpen(): void {
    this.#replica.send({ type: 'FORCE_OPEN', at: this.clock.now() });
  }

  /** Lets every call through and records nothing until `reset()`, for every instance. */
  disable(): void {
    this.#replica.send({ type: 'DISABLE', at: this.clock.now() });
  }

  /** Closes the circuit and clears its counters, for every instance. */
  reset(): void {
    this.#replica.send({ type: 'RESET', at: this.clock.now() });
  }

  /** Subscribes to a breaker event; returns the function that unsubscribes. */
  on<K extends keyof BreakerEventMap>(event: K, listener: BreakerListener<K>): () => void {
    this.#events.on(event, listener);
    this.#retime();
    return () => this.off(event, listener);
  }

  /** Unsubscribes a listener added with `on`. */
  off<K extends keyof BreakerEventMap>(event: K, listener: BreakerListener<K>): void {
    this.#events.off(event, listener);
    this.#retime();
  }

  /**
   * @internal Lets a metrics exporter hear this breaker's outcomes, rejections, transitions and
   * store errors; returns the function that stops it.
   */
  attachObserver(observer: BreakerObserver): () => void {
    if (this.#disposed) return () => {};
    const hooks = this.#hooks;
    hooks.observers = [...(hooks.observers ?? []), observer];
    this.#retime();
    return () => {
      const rest = hooks.observers?.filter((o) => o !== observer) ?? [];
      hooks.observers = rest.length === 0 ? null : rest;
      this.#retime();
    };
  }

  // The clock is read around a call only for someone who wants the duration.
  #retime(): void {
    const timing = timingFor(this.#events, this.#hooks.observers);
    if (timing !== this.#timing) {
      this.#timing = timing;
      // A fresh timer, so that the sample starts afresh.
      this.#timer = new CallTimer(timing);
    }
  }

  /** Whether {@link CircuitBreaker.dispose} was called. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * Stops following the shared record and stops the statechart's timers. No event is emitted
   * after it, and `call()` rejects with {@link BreakerDisposedError}. Changes not yet written
   * are dropped: `await settled()` first to keep them.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#replica.dispose();
    this.#events.clear();
    this.#hooks.observers = null;
    this.#timing = Timing.Off;
    this.#window?.dispose();
    breakerDisposed(this);
  }
}

export { CircuitState };
