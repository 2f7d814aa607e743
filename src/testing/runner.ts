// The runner: real breakers driven through a path, checked against it after every step.
import { CircuitBreakerError } from '../errors.js';
import { type PathBreaker, PathFailureError, PathIgnoredError } from './path-breaker.js';
import type { BreakerPath, BreakerStep } from './steps.js';

/** How a call of the code under test settled. */
export type CallOutcome<T = unknown> =
  | { readonly status: 'fulfilled'; readonly value: T }
  | { readonly status: 'rejected'; readonly reason: unknown };

/**
 * Options of {@link runBreakerPath}.
 * @typeParam B the breakers' type, handed back to `call` as given.
 * @typeParam R what `call` resolves with.
 */
export interface RunPathOptions<B extends PathBreaker = PathBreaker, R = unknown> {
  /**
   * The breakers under test, sharing one statechart (one, or a fleet on one store). Steps are
   * dealt to them round-robin; every one of them must show each step's expectation.
   */
  readonly breakers: readonly B[];
  /** The simulated clock the breakers decide with. */
  readonly clock: { increment(ms: number): void };
  /**
   * Waits for the breakers to converge after a step. Default: every breaker's `settled()`,
   * then one macrotask turn. Called again, up to `maxSettleRounds` times, until every breaker
   * shows the step's expectation.
   */
  readonly settle?: () => Promise<void>;
  /** Bound on settle rounds per check. Default 50. */
  readonly maxSettleRounds?: number;
  /** Also compare the breakers' counters with the step's. Default true. */
  readonly checkCounters?: boolean;
  /**
   * Makes a call through the code under test, which must pass `upstream` to `breaker.call`
   * (directly or through `protect`). `upstream` plays the protected service: it resolves with a
   * string naming the step that answered, rejects with {@link PathFailureError} or
   * {@link PathIgnoredError}, or waits for a later step, as the path says. Default:
   * `breaker.call(upstream)`, whose outcome the runner then checks itself (the upstream's value
   * or error, or `CircuitBreakerError`).
   */
  readonly call?: (breaker: B, upstream: (signal: AbortSignal) => Promise<string>) => Promise<R>;
  /**
   * Called when a call of the code under test settles, with the step that settled it and the
   * step that made it (the same for an immediate call; a `startProbe` step for a held call).
   */
  readonly onCallSettled?: (event: {
    readonly step: BreakerStep;
    readonly startedBy: BreakerStep;
    readonly outcome: CallOutcome<R>;
  }) => void | Promise<void>;
}

interface HeldCall<R> {
  readonly startedBy: BreakerStep;
  readonly resolve: (value: string) => void;
  readonly reject: (error: unknown) => void;
  readonly outcome: Promise<CallOutcome<R>>;
  readonly upstreamCalled: () => boolean;
}

/** Thrown by {@link runBreakerPath} when a breaker disagrees with the path. */
export class BreakerPathError extends Error {
  override readonly name = 'BreakerPathError';
}

function settleOutcome<R>(promise: Promise<R>): Promise<CallOutcome<R>> {
  return promise.then(
    (value): CallOutcome<R> => ({ status: 'fulfilled', value }),
    (reason: unknown): CallOutcome<R> => ({ status: 'rejected', reason }),
  );
}

function showState(breaker: PathBreaker): string {
  const { failures, successes, probes } = breaker.context;
  return `${breaker.state} (failures ${failures}, successes ${successes}, probes ${Object.keys(probes).length})`;
}

function showExpected(step: BreakerStep): string {
  const { failures, successes, probes } = step.counters;
  return `${step.expect} (failures ${failures}, successes ${successes}, probes ${probes.length})`;
}

/**
 * Drives breakers through one path and checks, after every step, that each breaker shows the
 * state (and counters) the statechart says it must.
 *
 * Calls answer at once for `succeed`/`fail`/`ignore`, and after the clock moved `ms` for
 * `slowSucceed`/`slowFail`; a step that names an `instance` goes to that breaker, the others
 * round-robin; `startProbe` holds a call until a later
 * step answers it; stale steps answer a call admitted before the circuit last changed state (a
 * probe the circuit abandoned, else one of the calls the runner starts on the fresh breaker
 * before the first step); `advance` moves the clock to 1 ms before the deadline, checks that
 * nothing happened yet, then moves it the last millisecond. Breakers must be fresh (closed, no
 * history), built with the path set's `config` and {@link classifyPathError}: see
 * {@link createPathBreaker}.
 *
 * @throws BreakerPathError naming the path, the step, the breaker and what differed.
 */
export async function runBreakerPath<B extends PathBreaker, R = unknown>(
  path: BreakerPath,
  options: RunPathOptions<B, R>,
): Promise<void> {
  const { breakers, clock, maxSettleRounds = 50, checkCounters = true } = options;
  if (breakers.length === 0) throw new TypeError('runBreakerPath needs at least one breaker');
  const settle =
    options.settle ??
    (async () => {
      await Promise.all(breakers.map((breaker) => breaker.settled()));
      await new Promise((resolve) => setImmediate(resolve));
    });
  const call =
    options.call ??
    // Without a `call`, R is what breaker.call resolves with: the upstream's string.
    ((breaker: B, upstream: () => Promise<string>) => breaker.call(upstream) as Promise<R>);
  const checkOutcome = options.call === undefined;
  const fail = (index: number, message: string): never => {
    const label =
      index < 0 ? 'before the first step' : `step ${index + 1} (${path.steps[index]?.label})`;
    throw new BreakerPathError(`${path.description}\n  at ${label}: ${message}`);
  };

  const matches = (breaker: PathBreaker, step: BreakerStep): boolean => {
    if (breaker.state !== step.expect) return false;
    if (!checkCounters) return true;
    const { failures, successes, probes } = breaker.context;
    return (
      failures === step.counters.failures &&
      successes === step.counters.successes &&
      Object.keys(probes).length === step.counters.probes.length
    );
  };
  const converge = async (index: number, step: BreakerStep): Promise<void> => {
    for (let round = 0; round < maxSettleRounds; round++) {
      await settle();
      if (breakers.every((breaker) => matches(breaker, step))) return;
    }
    const which = breakers.findIndex((breaker) => !matches(breaker, step));
    const breaker = breakers[which] as PathBreaker;
    fail(
      index,
      `breaker #${which} is ${showState(breaker)}, the statechart says ${showExpected(step)}`,
    );
  };
  const until = async (condition: () => boolean): Promise<boolean> => {
    for (let round = 0; round < maxSettleRounds && !condition(); round++) await settle();
    return condition();
  };

  const start = (breaker: B, startedBy: BreakerStep): HeldCall<R> => {
    let resolve!: (value: string) => void;
    let reject!: (error: unknown) => void;
    const answer = new Promise<string>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    let called = false;
    const outcome = settleOutcome(
      call(breaker, () => {
        called = true;
        return answer;
      }),
    );
    return { startedBy, resolve, reject, outcome, upstreamCalled: () => called };
  };
  const answer = async (index: number, held: HeldCall<R>, step: BreakerStep): Promise<void> => {
    const value = `answer from ${step.label}`;
    const fails = step.kind === 'failProbe' || step.kind === 'staleFail';
    const error = fails
      ? new PathFailureError(step.label, step.retryAfterMs)
      : new PathIgnoredError(step.label);
    const succeeds = step.kind === 'succeedProbe' || step.kind === 'staleSucceed';
    if (succeeds) held.resolve(value);
    else held.reject(error);
    const outcome = await held.outcome;
    if (checkOutcome) {
      const passed = succeeds
        ? outcome.status === 'fulfilled' && outcome.value === value
        : outcome.status === 'rejected' && outcome.reason === error;
      if (!passed) fail(index, `the held call settled with ${describeOutcome(outcome)}`);
    }
    await options.onCallSettled?.({ step, startedBy: held.startedBy, outcome });
  };

  const initial: BreakerStep = {
    kind: 'reset',
    expect: 'closed',
    counters: { failures: 0, successes: 0, probes: [] },
    label: 'start',
  };
  await converge(-1, initial);
  // Calls admitted now, on the fresh breaker, are stale once the circuit first changes state.
  const spares: HeldCall<R>[] = [];
  const staleSteps = path.steps.filter((step) => step.kind.startsWith('stale')).length;
  for (let i = 0; i < staleSteps; i++) {
    spares.push(start(breakers[i % breakers.length] as B, initial));
  }
  if (!(await until(() => spares.every((spare) => spare.upstreamCalled())))) {
    fail(-1, 'a call started on the fresh breaker never reached its upstream');
  }
  const probes = new Map<string, HeldCall<R>>();
  const abandoned: HeldCall<R>[] = [];
  let previous = initial;

  for (const [index, step] of path.steps.entries()) {
    if (step.instance !== undefined && step.instance >= breakers.length) {
      fail(index, `the step needs breaker #${step.instance}, the fleet has ${breakers.length}`);
    }
    const breaker = breakers[step.instance ?? index % breakers.length] as B;
    switch (step.kind) {
      case 'succeed':
      case 'fail':
      case 'ignore': {
        let called = false;
        const value = `answer from ${step.label}`;
        const error =
          step.kind === 'fail'
            ? new PathFailureError(step.label, step.retryAfterMs)
            : new PathIgnoredError(step.label);
        const outcome = await settleOutcome(
          call(breaker, async () => {
            called = true;
            if (step.kind === 'succeed') return value;
            throw error;
          }),
        );
        if (called === Boolean(step.rejects)) {
          fail(
            index,
            step.rejects
              ? 'the breaker ran a call it must reject'
              : 'the breaker rejected the call',
          );
        }
        if (checkOutcome) {
          const passed = step.rejects
            ? outcome.status === 'rejected' && outcome.reason instanceof CircuitBreakerError
            : step.kind === 'succeed'
              ? outcome.status === 'fulfilled' && outcome.value === value
              : outcome.status === 'rejected' && outcome.reason === error;
          if (!passed) fail(index, `the call settled with ${describeOutcome(outcome)}`);
        }
        await options.onCallSettled?.({ step, startedBy: step, outcome });
        break;
      }
      case 'slowSucceed':
      case 'slowFail': {
        // The call runs while the clock moves `ms`: it took that long.
        const held = start(breaker, step);
        if (!(await until(held.upstreamCalled))) fail(index, 'the breaker rejected the call');
        clock.increment(step.ms ?? 0);
        const value = `answer from ${step.label}`;
        const error = new PathFailureError(step.label);
        if (step.kind === 'slowSucceed') held.resolve(value);
        else held.reject(error);
        const outcome = await held.outcome;
        if (checkOutcome) {
          const passed =
            step.kind === 'slowSucceed'
              ? outcome.status === 'fulfilled' && outcome.value === value
              : outcome.status === 'rejected' && outcome.reason === error;
          if (!passed) fail(index, `the call settled with ${describeOutcome(outcome)}`);
        }
        await options.onCallSettled?.({ step, startedBy: step, outcome });
        break;
      }
      case 'startProbe': {
        const held = start(breaker, step);
        let settled = false;
        void held.outcome.then(() => {
          settled = true;
        });
        await until(() => held.upstreamCalled() || settled);
        if (step.rejects) {
          if (held.upstreamCalled()) fail(index, 'the breaker admitted a probe beyond its slots');
          const outcome = await held.outcome;
          if (
            checkOutcome &&
            !(outcome.status === 'rejected' && outcome.reason instanceof CircuitBreakerError)
          ) {
            fail(index, `the rejected probe settled with ${describeOutcome(outcome)}`);
          }
          await options.onCallSettled?.({ step, startedBy: step, outcome });
        } else {
          if (!held.upstreamCalled()) fail(index, 'the breaker did not admit the probe');
          probes.set(step.probe as string, held);
        }
        break;
      }
      case 'succeedProbe':
      case 'failProbe':
      case 'ignoreProbe': {
        const held = probes.get(step.probe as string);
        if (held === undefined) fail(index, `no held call named ${step.probe}`);
        probes.delete(step.probe as string);
        await answer(index, held as HeldCall<R>, step);
        break;
      }
      case 'staleSucceed':
      case 'staleFail':
      case 'staleIgnore': {
        const held = abandoned.pop() ?? spares.pop();
        if (held === undefined) fail(index, 'no call from an older generation is left');
        await answer(index, held as HeldCall<R>, step);
        break;
      }
      case 'advance': {
        const ms = step.ms ?? 0;
        if (ms >= 2) {
          clock.increment(ms - 1);
          // One millisecond early, the statechart's deadline has not come: nothing changes.
          await converge(index, previous);
          clock.increment(1);
        } else {
          clock.increment(ms);
        }
        break;
      }
      case 'forceOpen':
        breaker.forceOpen();
        break;
      case 'disable':
        breaker.disable();
        break;
      case 'reset':
        breaker.reset();
        break;
    }
    await converge(index, step);
    // Held calls the circuit no longer counts as probes are stale from now on.
    for (const [name, held] of probes) {
      if (!step.counters.probes.includes(name)) {
        probes.delete(name);
        abandoned.push(held);
      }
    }
    previous = step;
  }
  // Answering what is left of older generations must change nothing.
  const leftovers = [...abandoned, ...spares];
  for (const held of leftovers) held.resolve('answer from the end of the path');
  await Promise.all(leftovers.map((held) => held.outcome));
  await converge(path.steps.length - 1, previous);
}

function describeOutcome(outcome: CallOutcome): string {
  if (outcome.status === 'fulfilled') return `value ${JSON.stringify(outcome.value)}`;
  const reason = outcome.reason;
  return reason instanceof Error
    ? `${reason.name}: ${reason.message}`
    : `rejection ${String(reason)}`;
}
