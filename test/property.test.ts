import fc from 'fast-check';
import {
  type BreakerConfig,
  type CircuitBreaker,
  CircuitBreakerError,
  MemoryStore,
} from 'statebreaker';
import {
  createPathBreaker,
  createSimulatedClock,
  PathFailureError,
  PathIgnoredError,
} from 'statebreaker/testing';
import { describe, expect, it } from 'vitest';
import { ModelBreaker, type ModelCall, type ModelOutcome } from './support/model-actor.js';

type Op =
  | { readonly kind: 'call'; readonly outcome: ModelOutcome; readonly on: number }
  | { readonly kind: 'start'; readonly on: number }
  | { readonly kind: 'settle'; readonly pick: number; readonly outcome: ModelOutcome }
  | {
      readonly kind: 'advance';
      readonly unit: 'resetTimeout' | 'probeLease' | 'ms';
      readonly delta: number;
    }
  | { readonly kind: 'operate'; readonly op: 'FORCE_OPEN' | 'DISABLE' | 'RESET' };

const outcome = fc.constantFrom<ModelOutcome>('success', 'failure', 'failure', 'ignored');
const instance = fc.nat(7);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('call'), outcome, on: instance }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('start'), on: instance }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('settle'), pick: fc.nat(), outcome }) },
  {
    weight: 6,
    // Deadlines and one millisecond either side of them, or any step.
    arbitrary: fc.record({
      kind: fc.constant('advance'),
      unit: fc.constantFrom('resetTimeout', 'probeLease', 'ms'),
      delta: fc.integer({ min: -1, max: 1 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('operate'),
      // Operator states are sticky: reset more often than entering them, or runs stay there.
      op: fc.constantFrom('FORCE_OPEN', 'DISABLE', 'RESET', 'RESET', 'RESET'),
    }),
  },
) as fc.Arbitrary<Op>;

const config: fc.Arbitrary<BreakerConfig> = fc.record({
  failMax: fc.integer({ min: 1, max: 4 }),
  resetTimeout: fc.integer({ min: 2, max: 1_000 }),
  successThreshold: fc.integer({ min: 1, max: 3 }),
  halfOpenMaxCalls: fc.integer({ min: 1, max: 3 }),
  probeLease: fc.integer({ min: 2, max: 1_000 }),
});

interface Held {
  readonly model: ModelCall;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  readonly result: Promise<unknown>;
}

async function settle(breakers: readonly CircuitBreaker[]): Promise<void> {
  await Promise.all(breakers.map((breaker) => breaker.settled()));
  await new Promise((resolve) => setImmediate(resolve));
}

/** Waits, a bounded number of turns, until every breaker shows the model's state. */
async function converge(breakers: readonly CircuitBreaker[], model: ModelBreaker, trace: string[]) {
  const show = (breaker: CircuitBreaker) => {
    const { failures, successes, probes } = breaker.context;
    return `${breaker.state} ${JSON.stringify({ failures, successes, probes: Object.keys(probes).length })}`;
  };
  const want = () => `${model.state} ${JSON.stringify(model.counters)}`;
  for (let round = 0; round < 50; round++) {
    await settle(breakers);
    if (breakers.every((breaker) => show(breaker) === want())) return;
  }
  const got = breakers.map(show).join(' | ');
  throw new Error(`breakers show ${got}, the model ${want()}\n  after ${trace.join(', ')}`);
}

async function check(cfg: BreakerConfig, ops: readonly Op[], instances: number): Promise<void> {
  const clock = createSimulatedClock(1_000_000);
  const store = new MemoryStore({ clock });
  const breakers = Array.from({ length: instances }, () =>
    createPathBreaker('property', { clock, store, config: cfg }),
  );
  const model = new ModelBreaker(cfg, clock);
  const held: Held[] = [];
  const trace: string[] = [];
  const answer = (kind: ModelOutcome) =>
    kind === 'success'
      ? Promise.resolve('ok')
      : Promise.reject(kind === 'failure' ? new PathFailureError() : new PathIgnoredError());
  try {
    for (const step of ops) {
      trace.push(JSON.stringify(step));
      if (step.kind === 'call' || step.kind === 'start') {
        const breaker = breakers[step.on % instances] as CircuitBreaker;
        const admitted = model.admit();
        let resolve!: (value: unknown) => void;
        let reject!: (error: unknown) => void;
        const later = new Promise((res, rej) => {
          resolve = res;
          reject = rej;
        });
        let ran = false;
        const result = breaker.call(() => {
          ran = true;
          return step.kind === 'call' ? answer(step.outcome) : later;
        });
        result.catch(() => {});
        if (step.kind === 'call') {
          const error = await result.then(
            () => null,
            (e: unknown) => e,
          );
          expect(error instanceof CircuitBreakerError, 'rejected').toBe(admitted === null);
          if (admitted !== null) model.settle(admitted, step.outcome);
        } else {
          let rejected = false;
          result.catch((e: unknown) => {
            rejected = e instanceof CircuitBreakerError;
          });
          for (let round = 0; round < 50 && !ran && !rejected; round++) await settle(breakers);
          expect(rejected, 'rejected').toBe(admitted === null);
          expect(ran, 'ran').toBe(admitted !== null);
          if (admitted !== null) held.push({ model: admitted, resolve, reject, result });
        }
      } else if (step.kind === 'settle') {
        if (held.length === 0) continue;
        const [call] = held.splice(step.pick % held.length, 1) as [Held];
        if (step.outcome === 'success') call.resolve('ok');
        else
          call.reject(step.outcome === 'failure' ? new PathFailureError() : new PathIgnoredError());
        await call.result.catch(() => {});
        model.settle(call.model, step.outcome);
      } else if (step.kind === 'advance') {
        const base = step.unit === 'ms' ? 1 : cfg[step.unit];
        clock.increment(Math.max(0, base + step.delta));
      } else if (step.op === 'FORCE_OPEN') {
        model.operate(step.op);
        breakers[0]?.forceOpen();
      } else if (step.op === 'DISABLE') {
        model.operate(step.op);
        breakers[0]?.disable();
      } else {
        model.operate(step.op);
        breakers[0]?.reset();
      }
      await converge(breakers, model, trace);
    }
  } finally {
    model.stop();
    for (const breaker of breakers) breaker.dispose();
  }
}

// PROPERTY_RUNS=5000 for a longer search than the suite's.
const RUNS = Number(process.env.PROPERTY_RUNS ?? 400);

describe('property: a breaker behaves as a bare actor of breakerMachine', () => {
  it('one breaker: random outcomes, overlapping calls settled in random order, clock steps', async () => {
    await fc.assert(
      fc.asyncProperty(
        config,
        fc.array(op, { minLength: 5, maxLength: 60, size: 'max' }),
        (cfg, ops) => check(cfg, ops, 1),
      ),
      { numRuns: RUNS },
    );
  });

  it('three breakers on one store: the fleet behaves as one statechart', async () => {
    await fc.assert(
      fc.asyncProperty(
        config,
        fc.array(op, { minLength: 5, maxLength: 40, size: 'max' }),
        (cfg, ops) => check(cfg, ops, 3),
      ),
      { numRuns: Math.ceil(RUNS / 2) },
    );
  });
});
