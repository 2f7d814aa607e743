import { type Attempt, type AttemptOptions, openAttempt } from './attempt.js';
import type { BreakerObserver } from './breaker-observer.js';
import type { Clock } from './clock.js';
import { warnUnheardDegraded, warnUnheardMismatch } from './degraded-warning.js';
import { asError, BreakerDisposedError, CallTimeoutError, CircuitBreakerError } from './errors.js';
import { type BreakerEventMap, type BreakerListener, Emitter } from './events.js';
import { type BreakerGate, gateOf, type Ticket } from './gate.js';
import { breakerCreated, breakerDisposed } from './live-breakers.js';
import {
  type BreakerConfig,
  type BreakerContext,
  openDurationOf,
  type TransitionReason,
} from './machine.js';
import { checkName } from './name.js';
import { type BreakerOptions, type Outcome, resolveOptions } from './options.js';
import { ConfigMismatchError, CorruptRecordError } from './record/errors.js';
import { Replica } from './replica/replica.js';
import { runCall } from './run-call.js';
import { CircuitState } from './state.js';
import { defaultStore } from './stores/memory.js';
import type { BreakerStore } from './stores/store.js';
import { BreakerStream, type StreamFunction, type StreamOptions } from './stream/breaker-stream.js';
import { describeValue } from './validate.js';
import { LocalWindow } from './window/local-window.js';
import { LastWindowCounts, type WindowRates } from './window/window-rates.js';

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

// Side tables, so that a breaker that never streams carries no field for streams: the stream
// deadlines of the breakers given one, and the gates built for attempts, streams and routes.
const streamDeadlines = new WeakMap<
  CircuitBreaker,
  readonly [first: number | undefined, chunk: number | undefined]
>();
const gates = new WeakMap<CircuitBreaker, BreakerGate>();

let probeCounter = 0;

function frozenContext(context: BreakerContext): Readonly<BreakerContext> {
  return Object.freeze({
    ...context,
    config: Object.isFrozen(context.config) ? context.config : Object.freeze({ ...context.config }),
    probes: Object.freeze({ ...context.probes }),
    ...(context.streak === undefined ? {} : { streak: Object.freeze([...context.streak]) }),
  });
}
let instanceCounter = 0;

/** Which calls a breaker times: none, every one, or a sample for exporters. */
const Timing = { Off: 0, Every: 1, Sampled: 2 } as const;
type Timing = (typeof Timing)[keyof typeof Timing];
/** Calls at least this long (ms) are all timed: two clock reads are then 0.1 % of one. */
const SAMPLED_BELOW_MS = 0.1;
/** While calls are faster, one in this many is timed and stands for them all. */
const SAMPLE_STRIDE = 64;
/**
 * Timed calls in a row under SAMPLED_BELOW_MS before sampling begins: one fast call (a cache
 * hit) among slow ones leaves the slow ones timed.
 */
const FAST_RUN = 8;
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
  storeError(thrown: unknown) {
    const error = asError(thrown);
    const observers = this.observers;
    if (observers !== null) for (const observer of observers) observer.storeError(error);
    if (error instanceof ConfigMismatchError && !this.events.has('storeError')) {
      warnUnheardMismatch(error);
    }
    this.events.emit(
      'storeError',
      error instanceof CorruptRecordError
        ? { name: this.name, error, key: error.key }
        : { name: this.name, error },
    );
  }
  degraded(thrown: unknown) {
    const error = asError(thrown);
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
  // Private fields behind getters: a reassigned name would change the events but not the keys.
  readonly #name: string;
  readonly #store: BreakerStore;
  readonly #clock: Clock;
  readonly #replica: Replica;
  readonly #events = new Emitter();
  readonly #hooks: BreakerHooks;
  /** Which calls are timed: none, every one (a listener wants durations), or a sample. */
  #timing: Timing = Timing.Off;
  /** While sampling: calls to leave untimed before the next timed one. */
  #untimed = 0;
  /** Timed calls in a row under SAMPLED_BELOW_MS (while sampling). */
  #fastRun = 0;
  readonly #retryAfter: ((error: unknown) => number | undefined) | undefined;
  /** This breaker instance, as a quorum tells instances apart. */
  readonly #instance = `${instanceId}.${(++instanceCounter).toString(36)}`;
  /** The rate rules' window; only with a rate rule on. */
  readonly #window: LocalWindow | undefined;
  /** The fleet's counts the window last brought; only with a rate rule on. */
  readonly #lastWindow: LastWindowCounts | undefined;
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
    if (resolved.firstChunkTimeout !== undefined || resolved.chunkTimeout !== undefined) {
      streamDeadlines.set(this, [resolved.firstChunkTimeout, resolved.chunkTimeout]);
    }
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
    const lastWindow = windowFlush === undefined ? undefined : new LastWindowCounts();
    this.#lastWindow = lastWindow;
    this.#window =
      windowFlush === undefined
        ? undefined
        : new LocalWindow(this.name, config, windowFlush, this.#instance, this.store, this.clock, {
            get generation() {
              return replica.generation;
            },
            send: (event) => {
              lastWindow?.heard(event);
              return replica.send(event);
            },
            storeError: (error) =>
              events.emit('storeError', { name: this.name, error: asError(error) }),
          });
    breakerCreated(this, () => replica.shownState);
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
    const last = this.#lastWindow;
    if (last === undefined) return undefined;
    const replica = this.#replica;
    return last.rates(replica.config, replica.generation, this.clock.now());
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
    const ticket = state === 'closed' ? this.#ticket(undefined) : await this.#admit(undefined);
    // Disabled records nothing: no outcome is counted, so none is timed.
    if (!ticket.recorded) return this.#run(fn, signal);
    const { generation, probeId, started, since } = ticket;
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

  // Half-open admission (or a route's early probe of an open circuit): the one step that waits
  // for the store. Returns the probe's id, or undefined when the circuit closed meanwhile.
  async #admitProbe(
    state: CircuitState,
    panicGeneration: number | undefined,
  ): Promise<string | undefined> {
    const replica = this.#replica;
    if (replica.probeCount >= replica.config.halfOpenMaxCalls) throw this.#reject(state);
    let probeId: string | undefined = `${instanceId}:${++probeCounter}`;
    const at = this.clock.now();
    const leaseUntil = at + replica.config.probeLease;
    const admitted = replica.send(
      panicGeneration === undefined
        ? { type: 'PROBE_ACQUIRED', probeId, leaseUntil, at }
        : { type: 'PANIC_PROBE', probeId, leaseUntil, generation: panicGeneration, at },
    );
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
    return probeId;
  }

  // Reading the clock costs about as much as a whole closed-circuit call (tens of ns each). A
  // listener of success, failure or ignored gets every call's duration. Exporters alone get
  // every call's while calls take at least SAMPLED_BELOW_MS, which dwarfs the two reads, and
  // one in SAMPLE_STRIDE of faster calls (an exporter counts an untimed call with the duration
  // last recorded for its name and kind), once FAST_RUN timed calls in a row were that fast; a
  // slower timed call ends the sampling. So a call is left untimed only within SAMPLE_STRIDE - 1
  // calls after FAST_RUN fast timed calls in a row.
  // One countdown, zero unless sampling: the untimed call reads and writes one field.
  #clockStart(): number {
    const untimed = this.#untimed;
    if (untimed > 0) {
      this.#untimed = untimed - 1;
      return -1;
    }
    return performance.now();
  }

  /** The duration of a timed call (`undefined` for an untimed one); sets the next sample. */
  #clockStop(started: number): number | undefined {
    if (started < 0) return undefined;
    const durationMs = performance.now() - started;
    if (this.#timing === Timing.Sampled) {
      if (durationMs >= SAMPLED_BELOW_MS) {
        this.#fastRun = 0;
        this.#untimed = 0;
      } else if (++this.#fastRun >= FAST_RUN) {
        this.#untimed = SAMPLE_STRIDE - 1;
      }
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
  ): Outcome {
    const outcome = this.#outcomeOf(error, signal);
    if (outcome === 'success') {
      this.#recordSuccess(generation, probeId, started, since);
      return outcome;
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
    return outcome;
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
   * Wraps `fn` so that every call goes through the breaker; the wrapper has `fn`'s parameters,
   * `name` and `length`, and resolves to its result. Also a TypeScript 5 method decorator: `@breaker.protect`.
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
        const wrapped = function protectedCall(this: This, ...args: A): Promise<Awaited<R>> {
          return breaker.call(() => fn.apply(this, args) as Awaited<R>);
        };
        // fn's name and arity, for stack traces, logs and code that checks a function's length.
        Object.defineProperty(wrapped, 'name', { value: fn.name, configurable: true });
        Object.defineProperty(wrapped, 'length', { value: fn.length, configurable: true });
        return wrapped;
      };
    }
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
    const built = gates.get(this);
    if (built !== undefined) return built;
    const deadlines = streamDeadlines.get(this);
    const replica = this.#replica;
    const breaker = this;
    const noTimeout = this.#timeout === undefined;
    const ignoring = (reason: unknown) => AbortSignal.abort(reason);
    const gate: BreakerGate = {
      name: this.name,
      clock: this.clock,
      timeout: this.#timeout,
      firstChunkTimeout: deadlines?.[0],
      chunkTimeout: deadlines?.[1],
      get probeLease() {
        return replica.config.probeLease;
      },
      get fastPath() {
        return replica.loaded && !breaker.#disposed && replica.state === 'closed' && noTimeout;
      },
      // The closed path of call(), with the route's value and its continuation on an error.
      callFirst: async (fn, value, next) => {
        const generation = replica.generation;
        const started = this.#timing === Timing.Off ? -1 : this.#clockStart();
        const since = this.#slowMs === undefined ? 0 : this.clock.now();
        let result: Awaited<ReturnType<typeof fn>>;
        try {
          result = await fn(value, NEVER_ABORTED);
        } catch (error) {
          const outcome = this.#recordError(
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
      },
      admit: (panicGeneration) => this.#admit(panicGeneration),
      succeed: (t, since) => this.#recordSuccess(t.generation, t.probeId, t.started, since),
      fail: (t, error, signal, since) =>
        this.#recordError(error, t.generation, t.probeId, signal, t.started, since),
      // An error that is its signal's reason is ignored, whatever classify says.
      ignore: (t, reason) => {
        this.#recordError(reason, t.generation, t.probeId, ignoring(reason), t.started, t.since);
      },
      outcomeOf: (error, signal) => this.#outcomeOf(error, signal),
      renew: (t, leaseUntil) => {
        if (t.probeId === undefined) return;
        const { generation, probeId } = t;
        replica.send({
          type: 'PROBE_RENEWED',
          probeId,
          leaseUntil,
          generation,
          at: this.clock.now(),
        });
      },
    };
    gates.set(this, gate);
    return gate;
  }

  async #admit(panicGeneration: number | undefined): Promise<Ticket> {
    const replica = this.#replica;
    if (!replica.loaded) await replica.ready;
    if (this.#disposed) throw new BreakerDisposedError(this.name);
    const state = replica.state;
    if (state === 'disabled') {
      return {
        generation: replica.generation,
        probeId: undefined,
        started: -1,
        since: 0,
        recorded: false,
      };
    }
    if (state === 'halfOpen' || (state === 'open' && panicGeneration !== undefined)) {
      // A panic target that half-opened meanwhile takes an ordinary probe.
      const panic = state === 'open' ? panicGeneration : undefined;
      return this.#ticket(await this.#admitProbe(state, panic));
    }
    if (state !== 'closed') throw this.#reject(state);
    return this.#ticket(undefined);
  }

  #ticket(probeId: string | undefined): Ticket {
    return {
      generation: this.#replica.generation,
      probeId,
      started: this.#timing === Timing.Off ? -1 : this.#clockStart(),
      since: this.#slowMs === undefined ? 0 : this.clock.now(),
      recorded: true,
    };
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
      this.#untimed = 0;
      this.#fastRun = 0;
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
