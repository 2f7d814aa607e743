import { CircuitState as CockatielState } from 'cockatiel';
import { CircuitBreaker, CircuitBreakerError, MemoryStore } from '../src/index.js';
import { HandWrittenBreaker, sharedError, stacklessError } from './hand-written.js';
import {
  formatNumber,
  type Measured,
  measure,
  table,
  type Variant,
  verdict,
  yieldToLoop,
} from './harness.js';
import { cockatielBreaker, OPOSSUM_LEAN, opossumBreaker } from './peers.js';

const one = async () => 1;
const fail = async (): Promise<number> => {
  throw new Error('upstream down');
};

// Long enough that no breaker half-opens during the section (about 15 s).
const STAY_OPEN_MS = 600_000;

async function tripFive(call: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 5; i++) await call().catch(() => undefined);
}

/**
 * Section 2: rejection while open, awaited with try/catch as a caller would. Every breaker is
 * tripped by five consecutive failures (opossum, which trips on a percentage, is opened by
 * hand), so each rejects through its real open path.
 */
async function openVariants(): Promise<{ variants: Variant[]; check: () => void }> {
  const hand = new HandWrittenBreaker(5, STAY_OPEN_MS);
  await tripFive(() => hand.call(fail));
  const stackless = new HandWrittenBreaker(5, STAY_OPEN_MS, stacklessError);
  await tripFive(() => stackless.call(fail));
  const shared = new HandWrittenBreaker(5, STAY_OPEN_MS, sharedError);
  await tripFive(() => shared.call(fail));
  const breaker = new CircuitBreaker('bench-open', {
    store: new MemoryStore(),
    resetTimeout: STAY_OPEN_MS,
  });
  await tripFive(() => breaker.call(fail));
  const cockatiel = cockatielBreaker(STAY_OPEN_MS);
  await tripFive(() => cockatiel.execute(fail));
  const opossum = opossumBreaker(one, { resetTimeout: STAY_OPEN_MS });
  opossum.open();
  const lean = opossumBreaker(one, { ...OPOSSUM_LEAN, resetTimeout: STAY_OPEN_MS });
  lean.open();
  let rejected = 0;
  let lastError: unknown;
  const variants: Variant[] = [
    {
      name: 'hand-written, `new Error`',
      async run(n) {
        for (let i = 0; i < n; i++) {
          try {
            await hand.call(one);
          } catch {
            rejected++;
          }
          if (i % 1000 === 999) await yieldToLoop();
        }
      },
    },
    {
      name: 'hand-written, stackless Error',
      async run(n) {
        for (let i = 0; i < n; i++) {
          try {
            await stackless.call(one);
          } catch {
            rejected++;
          }
          if (i % 1000 === 999) await yieldToLoop();
        }
      },
    },
    {
      name: 'hand-written, one shared Error',
      async run(n) {
        for (let i = 0; i < n; i++) {
          try {
            await shared.call(one);
          } catch {
            rejected++;
          }
          if (i % 1000 === 999) await yieldToLoop();
        }
      },
    },
    {
      name: 'statebreaker `call` (CircuitBreakerError)',
      async run(n) {
        for (let i = 0; i < n; i++) {
          try {
            await breaker.call(one);
          } catch (error) {
            lastError = error;
            rejected++;
          }
          if (i % 1000 === 999) await yieldToLoop();
        }
      },
    },
    {
      name: 'cockatiel 3.2 (BrokenCircuitError)',
      async run(n) {
        for (let i = 0; i < n; i++) {
          try {
            await cockatiel.execute(one);
          } catch {
            rejected++;
          }
          if (i % 1000 === 999) await yieldToLoop();
        }
      },
    },
    {
      name: 'opossum 9, defaults (EOPENBREAKER)',
      async run(n) {
        for (let i = 0; i < n; i++) {
          try {
            await opossum.fire();
          } catch {
            rejected++;
          }
          if (i % 1000 === 999) await yieldToLoop();
        }
      },
    },
    {
      name: 'opossum 9, lean',
      async run(n) {
        for (let i = 0; i < n; i++) {
          try {
            await lean.fire();
          } catch {
            rejected++;
          }
          if (i % 1000 === 999) await yieldToLoop();
        }
      },
    },
  ];
  return {
    variants,
    check() {
      // Every variant must still have been rejecting: a half-open would measure another path.
      if (
        !hand.open ||
        !stackless.open ||
        !shared.open ||
        breaker.state !== 'open' ||
        cockatiel.state !== CockatielState.Open ||
        !opossum.opened ||
        !lean.opened ||
        !(lastError instanceof CircuitBreakerError) ||
        rejected === 0
      ) {
        throw new Error('open bench: a breaker left the open state');
      }
      opossum.shutdown();
      lean.shutdown();
      breaker.dispose();
    },
  };
}

export async function benchOpen(): Promise<{ report: string; results: Measured[] }> {
  const { variants, check } = await openVariants();
  const hand = variants[0]?.name ?? '';
  const stackless = variants[1]?.name ?? '';
  const results = await measure(variants, { references: [hand, stackless] });
  check();
  const rows = results.map((r) => [
    r.name,
    formatNumber(r.nsPerOp),
    `${formatNumber(r.ratios[hand] ?? Number.NaN, 2)}×`,
    `${formatNumber(r.ratios[stackless] ?? Number.NaN, 2)}×`,
  ]);
  const sb = results.find((r) => r.name.startsWith('statebreaker'));
  const us = (sb?.nsPerOp ?? Number.POSITIVE_INFINITY) / 1000;
  const vsStackless = sb?.ratios[stackless] ?? Number.POSITIVE_INFINITY;
  const floor = (results[2]?.nsPerOp ?? 0) / 1000;
  const report = [
    '## 2. Open: rejection per call, awaited with try/catch',
    '',
    table(['variant', 'ns/op', '× hand-written `new Error`', '× hand-written stackless'], rows),
    '',
    verdict('statebreaker rejection', `${formatNumber(us, 2)} µs`, '≤ 1.5 µs', us <= 1.5),
    '',
    // The 1.5 µs target was set where a stackless hand-written rejection took 1.42 µs; on a
    // slower or busier machine the ratio to that reference is the comparable figure.
    `Same-run reference: statebreaker = ${formatNumber(vsStackless, 2)}× the stackless ` +
      'hand-written rejection (1.5 µs / 1.42 µs = 1.06× when the target was set).' +
      (floor > 1.5
        ? ` In this run even rethrowing one shared Error took ${formatNumber(floor, 2)} µs, ` +
          'so no breaker could meet 1.5 µs here: read the ratio.'
        : ''),
  ].join('\n');
  return { report, results };
}
