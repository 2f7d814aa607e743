import { CircuitBreaker, MemoryStore } from '../src/index.js';
import { HandWrittenBreaker } from './hand-written.js';
import {
  formatNumber,
  type Measured,
  measure,
  table,
  type Variant,
  yieldToLoop,
} from './harness.js';

// One upstream error for every call: the section measures the breaker, not `new Error`.
const UPSTREAM_ERROR = new Error('upstream 503');
const fail = async (): Promise<never> => {
  throw UPSTREAM_ERROR;
};
const one = async () => 1;

// Never reached: every failure is counted and none trips.
const NEVER_TRIPS = 1_000_000_000;

/**
 * Section 3: the failure path. A closed breaker counting failures keeps its statechart live, so
 * each counted failure is one step of the machine and one write gathered per tick; a failure
 * then a success (the count goes up, then back to 0) is two steps. Against a hand-written
 * breaker's counter, in the same rounds.
 */
export async function benchFailure(): Promise<{ report: string; results: Measured[] }> {
  const hand = new HandWrittenBreaker(NEVER_TRIPS, 600_000);
  const counting = new CircuitBreaker('bench-failures', {
    store: new MemoryStore(),
    failMax: NEVER_TRIPS,
  });
  const alternating = new CircuitBreaker('bench-fail-success', {
    store: new MemoryStore(),
    failMax: NEVER_TRIPS,
  });
  const variants: Variant[] = [
    {
      name: 'hand-written, counted failure',
      async run(n) {
        for (let i = 0; i < n; i++) {
          await hand.call(fail).catch(() => undefined);
          if (i % 1000 === 999) await yieldToLoop();
        }
      },
    },
    {
      name: 'statebreaker, counted failure (closed, counting)',
      async run(n) {
        for (let i = 0; i < n; i++) {
          await counting.call(fail).catch(() => undefined);
          if (i % 1000 === 999) await yieldToLoop();
        }
      },
    },
    {
      name: 'statebreaker, failure then success (two steps)',
      async run(n) {
        for (let i = 0; i < n; i += 2) {
          await alternating.call(fail).catch(() => undefined);
          await alternating.call(one);
          if (i % 1000 >= 998) await yieldToLoop();
        }
      },
    },
  ];
  const reference = variants[0]?.name ?? '';
  const results = await measure(variants, { references: [reference] });
  if (counting.state !== 'closed' || counting.context.failures === 0) {
    throw new Error('failure bench: the counting breaker did not count');
  }
  counting.dispose();
  alternating.dispose();
  const rows = results.map((r) => [
    r.name,
    formatNumber(r.nsPerOp),
    `${formatNumber(r.ratios[reference] ?? Number.NaN, 1)}×`,
  ]);
  const report = [
    '## 3. Failure path: a closed breaker counting failures, per call',
    '',
    table(['variant', 'ns/op', '× hand-written'], rows),
    '',
    'A counted failure is one pure step of the statechart (no actor) and a share of one write ' +
      'per tick to the store; this row is here so that the path does not get slower.',
  ].join('\n');
  return { report, results };
}
