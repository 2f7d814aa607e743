import { CircuitBreaker, failover, MemoryStore } from '../src/index.js';
import {
  formatNumber,
  type Measured,
  measure,
  table,
  type Variant,
  verdict,
  yieldToLoop,
} from './harness.js';

const one = async () => 1;
const callIt = (fn: typeof one) => fn();

/** Chunks per stream: a stream's admission is paid once per this many chunks. */
const CHUNKS = 1_000;

/** The upstream: an async generator of few-byte chunks, where a wrapper's overhead shows. */
async function* upstream(count: number): AsyncGenerator<string> {
  for (let i = 0; i < count; i++) yield 'ab';
}

/** The bare reference: the least a wrapper that sees every chunk can do. */
async function* passThrough<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  for await (const chunk of source) yield chunk;
}

/** Runs `n` chunks as streams of {@link CHUNKS}, each opened by `open`. */
function streamVariant(
  name: string,
  open: (count: number) => AsyncIterable<string>,
  add: (n: number) => void,
): Variant {
  return {
    name,
    async run(n) {
      let sum = 0;
      for (let done = 0; done < n; done += CHUNKS) {
        for await (const chunk of open(Math.min(CHUNKS, n - done))) sum += chunk.length;
        await yieldToLoop();
      }
      add(sum);
    },
  };
}

/** Section 4: a route over closed breakers and streams through a breaker. */
export async function benchRoute(): Promise<{ report: string; results: Measured[] }> {
  const store = new MemoryStore();
  const breaker = new CircuitBreaker('bench-route-call', { store });
  const primary = new CircuitBreaker('bench-route-a', { store });
  const secondary = new CircuitBreaker('bench-route-b', { store });
  const streamed = new CircuitBreaker('bench-stream', { store });
  const watched = new CircuitBreaker('bench-stream-deadlines', {
    store,
    firstChunkTimeout: 60_000,
    chunkTimeout: 60_000,
  });
  const route = failover([
    { breaker: primary, value: one },
    { breaker: secondary, value: one },
  ]);
  let sink = 0;
  const add = (n: number) => {
    sink += n;
  };

  const calls: Variant[] = [
    {
      name: 'statebreaker `call`',
      async run(n) {
        for (let i = 0; i < n; i++) {
          sink += await breaker.call(one);
          if (i % 1000 === 999) await yieldToLoop();
        }
      },
    },
    {
      name: 'route `call`, first target closed',
      async run(n) {
        for (let i = 0; i < n; i++) {
          sink += await route.call(callIt);
          if (i % 1000 === 999) await yieldToLoop();
        }
      },
    },
  ];
  const callResults = await measure(calls, { references: [calls[0]?.name ?? ''] });

  const streams: Variant[] = [
    streamVariant('bare `for await` pass-through generator', (c) => passThrough(upstream(c)), add),
    streamVariant('the upstream itself (no wrapper)', (c) => upstream(c), add),
    streamVariant('`breaker.stream`', (c) => streamed.stream(() => upstream(c)), add),
    streamVariant(
      '`breaker.stream` with firstChunkTimeout and chunkTimeout',
      (c) => watched.stream(() => upstream(c)),
      add,
    ),
    streamVariant(
      '`route.stream`, first target closed',
      (c) => route.stream(() => upstream(c)),
      add,
    ),
  ];
  const bare = streams[0]?.name ?? '';
  const streamResults = await measure(streams, { references: [bare] });
  if (sink === 0 || primary.state !== 'closed' || streamed.state !== 'closed') {
    throw new Error('route bench did not run');
  }
  for (const b of [breaker, primary, secondary, streamed, watched]) b.dispose();

  const callRatio = callResults[1]?.ratios[calls[0]?.name ?? ''] ?? Number.POSITIVE_INFINITY;
  const streamRatio = streamResults[2]?.ratios[bare] ?? Number.POSITIVE_INFINITY;
  const report = [
    '## 4. Routes and streams',
    '',
    'A failover route over two closed breakers against one breaker (`async () => 1`):',
    '',
    table(
      ['variant', 'ns/op', '× `call`'],
      callResults.map((r) => [
        r.name,
        formatNumber(r.nsPerOp, 1),
        `${formatNumber(r.ratios[calls[0]?.name ?? ''] ?? Number.NaN, 2)}×`,
      ]),
    ),
    '',
    verdict(
      'route `call` / breaker `call`',
      `${formatNumber(callRatio, 2)}×`,
      '≤ 1.1×',
      callRatio <= 1.1,
    ),
    '',
    `Streams of ${CHUNKS} two-byte chunks from an async generator, per chunk (admission included):`,
    '',
    table(
      ['variant', 'ns/chunk', '× pass-through'],
      streamResults.map((r) => [
        r.name,
        formatNumber(r.nsPerOp, 1),
        `${formatNumber(r.ratios[bare] ?? Number.NaN, 2)}×`,
      ]),
    ),
    '',
    verdict(
      '`breaker.stream` / bare pass-through',
      `${formatNumber(streamRatio, 2)}×`,
      '≤ 1.2×',
      streamRatio <= 1.2,
    ),
  ].join('\n');
  return { report, results: [...callResults, ...streamResults] };
}
