import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CircuitBreaker, MemoryStore } from '../src/index.js';
import { createSimulatedClock } from '../src/testing/index.js';

// fast-check: breakers with a failure-rate window, against a simple reference model of the same
// window (every counted call with its time; a call counts while its tenth-of-a-window bucket is
// one of the last eleven). Random calls from random instances of a fleet on one MemoryStore,
// with the clock moving in between; after each counted call the fleet settles, and the circuit
// must have tripped exactly when the reference says the window reached the threshold.

type Command =
  | { readonly kind: 'succeed' | 'fail' | 'ignore'; readonly instance: number }
  | { readonly kind: 'advance'; readonly ms: number };

class Ignored extends Error {}

function reference(window: number) {
  const bucket = (at: number) => Math.floor(at / (window / 10));
  let calls: { bucket: number; failed: boolean }[] = [];
  return {
    count(at: number, failed: boolean) {
      calls.push({ bucket: bucket(at), failed });
    },
    totals(at: number) {
      const live = calls.filter((call) => call.bucket >= bucket(at) - 10);
      return { calls: live.length, failures: live.filter((call) => call.failed).length };
    },
    clear() {
      calls = [];
    },
  };
}

describe('a failure-rate window against a reference model', () => {
  it('trips exactly when the reference window reaches the threshold', async () => {
    const command = fc.oneof(
      fc.record({
        kind: fc.constantFrom('succeed' as const, 'fail' as const, 'ignore' as const),
        instance: fc.nat({ max: 2 }),
      }),
      fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 3_000 }) }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(command, { minLength: 1, maxLength: 60 }),
        async (threshold, minimumCalls, instances, commands: Command[]) => {
          const window = 5_000;
          const clock = createSimulatedClock(1_000_000);
          const store = new MemoryStore({ clock });
          const breakers = Array.from(
            { length: instances },
            () =>
              new CircuitBreaker('window', {
                store,
                clock,
                failMax: Number.POSITIVE_INFINITY,
                failureRateThreshold: threshold,
                minimumCalls,
                window,
                classify: (error) => (error instanceof Ignored ? 'ignored' : 'failure'),
              }),
          );
          const model = reference(window);
          try {
            for (const step of commands) {
              if (step.kind === 'advance') {
                clock.increment(step.ms);
                continue;
              }
              const breaker = breakers[step.instance % instances] as CircuitBreaker;
              await breaker
                .call(async () => {
                  if (step.kind === 'fail') throw new Error('upstream');
                  if (step.kind === 'ignore') throw new Ignored();
                })
                .catch(() => {});
              await Promise.all(breakers.map((b) => b.settled()));
              // An ignored call counts nowhere and decides nothing: the window is judged when an
              // outcome is counted (a success leaving the window trips nothing by itself, as no
              // timer runs while closed).
              if (step.kind === 'ignore') {
                for (const b of breakers) expect(b.state).toBe('closed');
                continue;
              }
              model.count(clock.now(), step.kind === 'fail');
              const { calls, failures } = model.totals(clock.now());
              const trips = calls >= minimumCalls && failures * 100 >= threshold * calls;
              for (const b of breakers) expect(b.state).toBe(trips ? 'open' : 'closed');
              if (trips) {
                breaker.reset();
                await Promise.all(breakers.map((b) => b.settled()));
                model.clear();
              }
            }
          } finally {
            for (const breaker of breakers) breaker.dispose();
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
