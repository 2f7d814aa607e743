import type { BreakerObserver } from './breaker-observer.js';
import type { Clock } from './clock.js';
import { warnUnheardDegraded } from './degraded-warning.js';
import { BreakerDisposedError, CallTimeoutError, CircuitBreakerError } from './errors.js';
import { type BreakerEventMap, type BreakerListener, Emitter } from './events.js';
import { breakerCreated, breakerDisposed } from './live-breakers.js';
import {
  type BreakerConfig,
  type BreakerContext,
  openDurationOf,
  type TransitionReason,
} from './machine.js';
import { checkName } from './name.js';
import { type BreakerOptions, type Outcome, resolveOptions } from './options.js';
import { Replica } from './replica/replica.js';
import { runCall } from './run-call.js';
import { CorruptRecordError } from './snapshot.js';
import { CircuitState } from './state.js';
import { defaultStore } from './stores/memory.js';
import type { BreakerStore } from './stores/store.js';
import { describeValue } from './validate.js';
import { LocalWindow } from './window/local-window.js';

/** Options of one call. */
export interface CallOptions {
  /** The caller's signal: aborting it aborts the call, which then counts as ignored. */
  signal?: AbortSignal;
}

/** The type of {@link CircuitBreaker.protect}: a wrapper factory and a method decorator. */
export type Protect = <This, A extends unknown[], R>(
  fn: (this: This, ...args: A) => R,
  context?: ClassMethodDecoratorContext<This, (this: This, ...args: A) => R>,
) => (this: This, ...args: A) => Promise<Awaited<R>>;

// Handed to functions when neither a timeout nor a caller's signal can abort them, so that
// the closed-circuit hot path allocates no AbortController.
const NEVER_ABORTED = new AbortController().signal;

let probeCounter = 0;
let instanceCounter = 0;

/** Which calls a breaker times: none, every one, or a sample for exporters. */
const Timing = { Off: 0, Every: 1, Sampled: 2 } as const;
type Timing = (typeof Timing)[keyof typeof Timing];
/** Calls at least this long (ms) are all timed: two clock reads are then 0.1 % of one. */
const SAMPLED_BELOW_MS = 0.1;
/** While calls are faster, one in this many is timed and stands for them all. */
const SAMPLE_STRIDE = 16;
const instanceId = Math.random().toString(36).slice(2, 10);

// The replica's callbacks as prototype methods: per-breaker closures cost ~60 B each (and
// ~250 B more under esbuild keepNames), which an idle breaker should not pay.
class BreakerHooks {
  /** The metrics exporters following the breaker; replaced, never changed in place. */
  observers: readonly BreakerObserver[] | null = null;
  constructor(
    readonly name: string,
    readonly events: Emitter,
  ) {}
  transition(
    from: CircuitState,
    to: CircuitState,
    reason: TransitionReason,
    generation: number,
    speculative: boolean,
  ) {
    const observers = this.observers;
    if (observers !== null) for (const observer of observers) observer.transition(from, to, reason);
    this.events.emit('stateChange', { name: this.name, from, to, reason, generation, speculative });
  }
  storeError(error: unknown) {
    const observers = this.observers;
    if (observers !== null) for (const observer of observers) observer.storeError(error);
    this.events.emit(
      'storeError',
      error instanceof CorruptRecordError
        ? { name: this.name, error, key: error.key }
        : { name: this.name, error },
    );
  }
  degraded(error: unknown) {
    if (!this.events.has('degraded') && !this.events.has('storeError')) {
      warnUnheardDegraded(this.name, error);
    }
    this.events.emit('degraded', { name: this.name, error });
  }
  recovered() {
    this.events.emit('recovered', { name: this.name });
  }
}

/**
 * A circuit breaker whose every decision is made by the XState statechart `breakerMachine`,
 * shared by every breaker of the same name on the same store.
 *
 * @example
 * const breaker = new CircuitBreaker('openai', { timeout: 20_000 });
 * const reply = await breaker.call((signal) => fetch(url, { signal }));
 */
export class CircuitBreaker {
  /** The breaker's name: breakers of one name on one store share one statechart. */
  readonly name: string;
  /** The store that holds the statechart's snapshots. */
  readonly store: BreakerStore;
  /** The clock the breaker decides with. */
  readonly clock: Clock;
  readonly #replica: Replica;
  readonly #events = new Emitter();
  readonly #hooks: BreakerHooks;
  /** Which calls are timed: none, every one (a listener wants durations), or a sample. */
  #timing: Timing = Timing.Off;
  /** While sampling: one call in this many is timed. */
  #stride = 1;
  /** Calls since the last timed one. */
  #untimed = 0;
  readonly #retryAfter: ((error: unknown) => number | undefined) | undefined;
  /** This breaker instance, as a quorum tells instances apart. */
  readonly #instance = `${instanceId}.${(++instanceCounter).toString(36)}`;
  /** The rate rules' window; only with a rate rule on. */
  readonly #window: LocalWindow | undefined;
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
    this.name = checkName(name);
    const resolved = resolveOptions(options);
    this.store = resolved.store ?? defaultStore;
    this.clock = resolved.clock ?? this.store.clock;
    this.#timeout = resolved.timeout;
    this.#classify = resolved.classify;
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
    const replica = this.#replica;
    const events = this.#events;
    this.#window =
      windowFlush === undefined
        ? undefined
        : new LocalWindow(this.name, config, windowFlush, this.#instance, this.store, this.clock, {
            get generation() {
              return replica.generation;
            },
            send: (event) => replica.send(event),
            storeError: (error) => events.emit('storeError', { name: this.name, error }),
          });
    breakerCreated(this, () => replica.shownState);
  }

  /** The breaker's current top-level state. */
  get state(): CircuitState {
    return this.#replica.state;
  }

  /** The configuration in force (the shared record's, once one exists). */
  get config(): BreakerConfig {
    return this.#replica.config;
  }

  /** The statechart's current context: counters, `openedAt`, probe leases, generation. */
  get context(): Readonly<BreakerContext> {
    return this.#replica.context;
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
      const started = this.#timing === Timing.Off ? -1 : this.#clockStart();
      const since = this.#slowMs === undefined ? 0 : this.clock.now();
      let result: T;
      try {
        result = await fn(NEVER_ABORTED);
      } catch (error) {
        this.#recordError(error, generation, undefined, undefined, started, since);
        throw error;
      }
      this.#recordSuccess(generation, undefined, started, since);
      return result;
    }
    // Rejecting here, not in #callSlow, spares an async frame, the adoption of its rejected
    // promise and a round of unhandled-rejection bookkeeping.
    if ((state === 'open' || state === 'forcedOpen') && signal === undefined) {
      throw this.#reject(state);
    }
    return this.#callSlow(fn, signal, state);
  }

  async #callSlow<T>(
    fn: (signal: AbortSignal) => T | PromiseLike<T>,
    signal: AbortSignal | undefined,
    state: CircuitState,
  ): Promise<T> {
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new TypeError('call() option signal must be an AbortSignal');
    }
    if (signal?.aborted) throw signal.reason;
    // Disabled records nothing: no outcome is counted, so none is timed.
    if (state === 'disabled') return this.#run(fn, signal);
    if (state === 'open' || state === 'forcedOpen') throw this.#reject(state);
    const replica = this.#replica;
    let probeId: string | undefined;
    if (state === 'halfOpen') {
      if (replica.probeCount >= replica.config.halfOpenMaxCalls) throw this.#reject(state);
      probeId = `${instanceId}:${++probeCounter}`;
      const at = this.clock.now();
      const admitted = replica.send({
        type: 'PROBE_ACQUIRED',
        probeId,
        leaseUntil: at + replica.config.probeLease,
        at,
      });
      if (!admitted) throw this.#reject(replica.state);
      // Admission is the one step that waits for the store: the fleet shares the slots. The
      // local admission stands only when the store did not answer in time.
      const admission = await replica.admission(replica.lastSeq, this.store.timeout);
      if (admission === 'refused' && replica.holdsProbe(probeId)) {
        // The store answered, but only with other instances' writes: free the slot.
        replica.send({
          type: 'IGNORED',
          generation: replica.generation,
          probeId,
          at: this.clock.now(),
        });
      }
      if (!replica.holdsProbe(probeId)) {
        // The circuit may have closed (a reset, another instance's probe) during admission;
        // a closed or disabled circuit admits every call, so this one runs as an ordinary call.
        const now = replica.state;
        if (now !== 'closed' && now !== 'disabled') throw this.#reject(now);
        probeId = undefined;
      }
    }
    const generation = replica.generation;
    const started = this.#timing === Timing.Off ? -1 : this.#clockStart();
    const since = this.#slowMs === undefined ? 0 : this.clock.now();
    let result: T;
    try {
      result = await this.#run(fn, signal);
    } catch (error) {
      this.#recordError(error, generation, probeId, signal, started, since);
      throw error;
    }
    this.#recordSuccess(generation, probeId, started, since);
    return result;
  }

  // Reading the clock costs about as much as a whole closed-circuit call (tens of ns each). A
  // listener of success, failure or ignored gets every call's duration. Exporters alone get
  // every call's while calls take at least SAMPLED_BELOW_MS, which dwarfs the two reads, and
  // one in SAMPLE_STRIDE of faster calls (an exporter counts an untimed call with the duration
  // last recorded for its name and kind).
  #clockStart(): number {
    const untimed = this.#untimed + 1;
    if (this.#timing === Timing.Sampled && untimed < this.#stride) {
      this.#untimed = untimed;
      return -1;
    }
    this.#untimed = 0;
    return performance.now();
  }

  /** The duration of a timed call (`undefined` for an untimed one), and the next stride. */
  #clockStop(started: number): number | undefined {
    if (started < 0) return undefined;
    const durationMs = performance.now() - started;
    if (this.#timing === Timing.Sampled) {
      this.#stride = durationMs >= SAMPLED_BELOW_MS ? 1 : SAMPLE_STRIDE;
    }
    return durationMs;
  }

  #run<T>(fn: (signal: AbortSignal) => T | PromiseLike<T>, signal: AbortSignal | undefined) {
    if (this.#timeout === undefined && signal === undefined) {
      return Promise.resolve().then(() => fn(NEVER_ABORTED));
    }
    return runCall(fn, signal, this.#timeout, this.clock, this.name);
  }

  #reject(state: CircuitState): CircuitBreakerError {
    const replica = this.#replica;
    const retryAfterMs =
      state === 'open' && replica.openedAt !== null
        ? Math.max(0, replica.openedAt + openDurationOf(replica.context) - this.clock.now())
        : undefined;
    const error = CircuitBreakerError.create(this.name, state, retryAfterMs);
    const observers = this.#hooks.observers;
    if (observers !== null) for (let i = 0; i < observers.length; i++) observers[i]?.rejected();
    if (this.#events.has('rejected')) this.#events.emit('rejected', { name: this.name, error });
    return error;
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
    if (this.#window !== undefined && probeId === undefined) this.#count(generation, false, since);
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

  #recordError(
    error: unknown,
    generation: number,
    probeId: string | undefined,
    signal: AbortSignal | undefined,
    started: number,
    since: number,
  ): void {
    const outcome = this.#outcomeOf(error, signal);
    if (outcome === 'success') {
      this.#recordSuccess(generation, probeId, started, since);
      return;
    }
    const durationMs = this.#clockStop(started);
    const at = this.clock.now();
    const observers = this.#hooks.observers;
    if (outcome === 'failure') {
      const retryAfterMs = this.#retryAfterOf(error);
      this.#replica.send(
        retryAfterMs === undefined
          ? { type: 'FAILURE', generation, probeId, instance: this.#instance, at }
          : { type: 'FAILURE', generation, probeId, instance: this.#instance, retryAfterMs, at },
      );
      // After the event: a failure that tripped the circuit belongs to no window any more.
      if (this.#window !== undefined && probeId === undefined) this.#count(generation, true, since);
      if (observers !== null) {
        for (let i = 0; i < observers.length; i++) observers[i]?.failed(durationMs);
      }
      if (this.#events.has('failure'))
        this.#events.emit('failure', { name: this.name, error, durationMs });
    } else {
      // An ignored probe still frees its slot; an ignored call in closed changes nothing.
      if (probeId !== undefined) this.#replica.send({ type: 'IGNORED', generation, probeId, at });
      if (observers !== null) {
        for (let i = 0; i < observers.length; i++) observers[i]?.ignored(durationMs);
      }
      if (this.#events.has('ignored'))
        this.#events.emit('ignored', { name: this.name, error, durationMs });
    }
  }

  // Counts an outcome in the window when the call was admitted in `closed` and the statechart is
  // still in that generation: results of older generations count nowhere.
  #count(generation: number, failed: boolean, since: number): void {
    const replica = this.#replica;
    if (generation !== replica.generation || replica.state !== 'closed') return;
    const slowMs = this.#slowMs;
    const slow = slowMs !== undefined && this.clock.now() - since >= slowMs;
    (this.#window as LocalWindow).count(generation, failed, slow);
  }

  // The upstream's retry-after for a counted failure; a bad answer is reported and not used.
  #retryAfterOf(error: unknown): number | undefined {
    const retryAfter = this.#retryAfter;
    if (retryAfter === undefined) return undefined;
    let ms: unknown;
    try {
      ms = retryAfter(error);
    } catch (retryAfterError) {
      this.#events.emit('classifyError', { name: this.name, error: retryAfterError });
      return undefined;
    }
    if (ms === undefined) return undefined;
    if (typeof ms === 'number' && !Number.isNaN(ms)) return ms;
    const message = `retryAfter returned ${describeValue(ms)}; not used`;
    this.#events.emit('classifyError', { name: this.name, error: new TypeError(message) });
    return undefined;
  }
  #outcomeOf(error: unknown, signal: AbortSignal | undefined): Outcome {
    if (signal?.aborted && error === signal.reason) return 'ignored';
    if (error instanceof CallTimeoutError) return 'failure';
    if (signal?.aborted) return 'ignored';
    const classify = this.#classify;
    if (classify === undefined) return 'failure';
    let outcome: unknown;
    try {
      outcome = classify(error);
    } catch (classifyError) {
      this.#events.emit('classifyError', { name: this.name, error: classifyError });
      return 'failure';
    }
    if (outcome === 'failure' || outcome === 'ignored' || outcome === 'success') return outcome;
    // describeValue, not String: an object without a prototype cannot be turned into a string.
    const message = `classify returned ${describeValue(outcome)}; counted as a failure`;
    this.#events.emit('classifyError', { name: this.name, error: new TypeError(message) });
    return 'failure';
  }

  /**
   * Wraps `fn` so that every call goes through the breaker; the wrapper has `fn`'s parameters
   * and resolves to its result. Also a TypeScript 5 method decorator: `@breaker.protect`.
   * Bound to the breaker, since a standard decorator is called without `this`.
   */
  get protect(): Protect {
    // Built on first use, so that a breaker that never protects anything pays nothing.
    if (this.#protect === undefined) {
      const breaker = this;
      this.#protect = function protect<This, A extends unknown[], R>(
        fn: (this: This, ...args: A) => R,
      ): (this: This, ...args: A) => Promise<Awaited<R>> {
        if (typeof fn !== 'function') {
          throw new TypeError(
            `protect() needs a function, got ${fn === null ? 'null' : typeof fn}`,
          );
        }
        return function protectedCall(this: This, ...args: A): Promise<Awaited<R>> {
          return breaker.call(() => fn.apply(this, args) as Awaited<R>);
        };
      };
    }
    return this.#protect;
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
    const events = this.#events;
    const timing =
      events.has('success') || events.has('failure') || events.has('ignored')
        ? Timing.Every
        : this.#hooks.observers?.some((observer) => observer.timed) === true
          ? Timing.Sampled
          : Timing.Off;
    if (timing !== this.#timing) {
      this.#timing = timing;
      this.#stride = 1;
      this.#untimed = 0;
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
