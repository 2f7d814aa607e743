import { metrics } from '@opentelemetry/api';
import { Registry } from 'prom-client';
import { CircuitBreaker, MemoryStore } from '../src/index.js';
import {
  type MetricsExporter,
  openTelemetryMetrics,
  prometheusMetrics,
} from '../src/metrics/index.js';
import { HandWrittenBreaker } from './hand-written.js';
import {
  collect,
  formatNumber,
  type Measured,
  measure,
  median,
  table,
  type Variant,
  verdict,
  yieldToLoop,
} from './harness.js';
import { cockatielBreaker, OPOSSUM_LEAN, opossumBreaker } from './peers.js';

const one = async () => 1;

/**
 * A statebreaker loop measured with an exporter running: exporters follow every breaker of
 * the process, so each runs only around its own variant's samples, started outside the timing.
 */
function withMetrics(
  name: string,
  breaker: CircuitBreaker,
  start: () => MetricsExporter,
  add: (value: number) => void,
): Variant {
  let exporter: MetricsExporter | undefined;
  return {
    name,
    setUp() {
      exporter = start();
    },
    tearDown() {
      exporter?.stop();
    },
    async run(n) {
      let sum = 0;
      for (let i = 0; i < n; i++) {
        sum += await breaker.call(one);
        if (i % 1000 === 999) await yieldToLoop();
      }
      add(sum);
    },
  };
}

/**
 * Section 1: per-call overhead in the closed state, every call succeeding. Each variant has
 * its own loop so that each call site stays monomorphic, as in a real caller.
 */
export function closedVariants(): { variants: Variant[]; dispose: () => void } {
  const hand = new HandWrittenBreaker();
  const breaker = new CircuitBreaker('bench-closed', { store: new MemoryStore() });
  const prom = new CircuitBreaker('bench-prometheus', { store: new MemoryStore() });
  const promCounts = new CircuitBreaker('bench-prometheus-counts', { store: new MemoryStore() });
  const otel = new CircuitBreaker('bench-otel', { store: new MemoryStore() });
  const meter = metrics.getMeter('statebreaker-bench');
  const add = (value: number) => {
    sink += value;
  };
  const cockatiel = cockatielBreaker();
  const opossum = opossumBreaker(one);
  const lean = opossumBreaker(one, OPOSSUM_LEAN);
  let sink = 0;
  const variants: Variant[] = [
    {
      name: 'bare `await fn()`',
      async run(n) {
        for (let i = 0; i < n; i++) {
          sink += await one();
          if (i % 1000 === 999) await yieldToLoop();
        }
      },
    },
    {
      name: 'hand-written (async/await)',
      async run(n) {
        for (let i = 0; i < n; i++) {
          sink += await hand.call(one);
          if (i % 1000 === 999) await yieldToLoop();
        }
      },
    },
    {
      name: 'statebreaker `call`',
      async run(n) {
        for (let i = 0; i < n; i++) {
          sink += await breaker.call(one);
          if (i % 1000 === 999) await yieldToLoop();
        }
      },
    },
    withMetrics(
      'statebreaker, Prometheus metrics',
      prom,
      () => prometheusMetrics({ registry: new Registry() }),
      add,
    ),
    withMetrics(
      'statebreaker, Prometheus metrics, `durations: false`',
      promCounts,
      () => prometheusMetrics({ registry: new Registry(), durations: false }),
      add,
    ),
    withMetrics(
      'statebreaker, OpenTelemetry metrics (API no-op meter)',
      otel,
      () => openTelemetryMetrics({ meter }),
      add,
    ),
    {
      name: 'cockatiel 3.2 `execute`',
      async run(n) {
        for (let i = 0; i < n; i++) {
          sink += await cockatiel.execute(one);
          if (i % 1000 === 999) await yieldToLoop();
        }
      },
    },
    {
      name: 'opossum 9 `fire`, defaults',
      async run(n) {
        for (let i = 0; i < n; i++) {
          sink += await opossum.fire();
          if (i % 1000 === 999) await yieldToLoop();
        }
      },
    },
    {
      name: 'opossum 9 `fire`, lean',
      async run(n) {
        for (let i = 0; i < n; i++) {
          sink += await lean.fire();
          if (i % 1000 === 999) await yieldToLoop();
        }
      },
    },
  ];
  return {
    variants,
    dispose() {
      if (sink === 0 || breaker.state !== 'closed') throw new Error('closed bench did not run');
      opossum.shutdown();
      lean.shutdown();
      for (const b of [breaker, prom, promCounts, otel]) b.dispose();
    },
  };
}

// Heap bytes a burst of calls adds. The burst is short (no yield, well under the initial 1 MB
// young generation) so that no scavenge hides allocations; a median of bursts drops any that
// met one anyway.
async function bytesPerCall(variant: Variant, calls = 300): Promise<number> {
  const deltas: number[] = [];
  for (let i = 0; i < 15; i++) {
    variant.setUp?.();
    collect();
    const before = process.memoryUsage().heapUsed;
    await variant.run(calls);
    deltas.push((process.memoryUsage().heapUsed - before) / calls);
    variant.tearDown?.();
  }
  return median(deltas);
}

export async function benchClosed(): Promise<{ report: string; results: Measured[] }> {
  const { variants, dispose } = closedVariants();
  const bare = variants[0]?.name ?? '';
  const hand = variants[1]?.name ?? '';
  const results = await measure(variants, { references: [bare, hand] });
  const allocations = new Map<string, number>();
  for (const variant of variants) allocations.set(variant.name, await bytesPerCall(variant));
  dispose();
  const bareBytes = allocations.get(bare) ?? 0;
  const rows = results.map((r) => [
    r.name,
    formatNumber(r.nsPerOp, 1),
    `${formatNumber(1e3 / r.nsPerOp, 2)} M`,
    `${formatNumber(r.ratios[bare] ?? Number.NaN, 2)}×`,
    `${formatNumber(r.ratios[hand] ?? Number.NaN, 2)}×`,
    formatNumber(Math.max(0, (allocations.get(r.name) ?? 0) - bareBytes)),
  ]);
  const ratioOf = (name: string) =>
    results.find((r) => r.name.startsWith(name))?.ratios[hand] ?? Number.POSITIVE_INFINITY;
  const ratio = ratioOf('statebreaker `call`');
  const withProm = ratioOf('statebreaker, Prometheus metrics');
  const withCounts = ratioOf('statebreaker, Prometheus metrics, `durations: false`');
  const report = [
    '## 1. Closed: per-call overhead, all calls succeed (`async () => 1`)',
    '',
    table(['variant', 'ns/op', 'ops/s', '× bare', '× hand-written', 'heap B/call over bare'], rows),
    '',
    verdict('statebreaker / hand-written', `${formatNumber(ratio, 2)}×`, '≤ 1.25×', ratio <= 1.25),
    '',
    verdict(
      'statebreaker with Prometheus metrics / hand-written',
      `${formatNumber(withProm, 2)}× (${formatNumber(withCounts, 2)}× with \`durations: false\`)`,
      '≤ 1.3×',
      withProm <= 1.3,
    ),
  ].join('\n');
  return { report, results };
}
