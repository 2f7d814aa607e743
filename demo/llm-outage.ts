// npm run demo: callers ask two simulated LLM providers through one failover route, on the
// embedded store. Six make plain calls, two stream their answers. The primary goes down for a
// few seconds: calls and streams move to the secondary at once, a stream caught mid-way by the
// outage stalls and is cut, and the primary comes back through a single probe. Prints every
// state change and failover as it happens, then what the route spared the primary.
import {
  AllTargetsFailedError,
  ChunkTimeoutError,
  CircuitState,
  type FailoverEvent,
  failover,
  getCircuitBreaker,
  type StateChangeEvent,
} from '../src/index.js';
import { llmClassify } from '../src/llm/index.js';
import { CONTEXT_LIMIT, FakeLlm, seededRandom } from './fake-llm.js';

const CALLERS = 6;
const STREAMERS = 2;
const OUTAGE = { from: 1_000, until: 4_000 };
// One probe closes the circuit: the primary comes back on its first good answer.
const OPTIONS = {
  failMax: 3,
  resetTimeout: 1_500,
  successThreshold: 1,
  halfOpenMaxCalls: 1,
  timeout: 1_000,
  firstChunkTimeout: 500,
  chunkTimeout: 300,
  classify: llmClassify,
};
const LINGER_MS = 1_500;
const DEADLINE_MS = 15_000;

const started = performance.now();
const elapsed = () => performance.now() - started;
const random = seededRandom(2024);
const providers = {
  primary: new FakeLlm(OUTAGE, elapsed, random),
  secondary: new FakeLlm({ from: Number.POSITIVE_INFINITY, until: 0 }, elapsed, random),
};
type Provider = FakeLlm;

const primary = getCircuitBreaker('primary', OPTIONS);
const secondary = getCircuitBreaker('secondary', OPTIONS);
const route = failover<Provider>(
  [
    { breaker: primary, value: providers.primary },
    { breaker: secondary, value: providers.secondary },
  ],
  { name: 'chat' },
);

const counts = {
  calls: 0,
  streams: 0,
  answered: { primary: 0, secondary: 0 },
  cut: 0,
  refused: 0,
  ignored: 0,
  failedOver: 0,
  primaryWhileOpen: 0,
  /** Probes after the primary recovered, and before (which fail and reopen it). */
  probes: 0,
  probesDuringOutage: 0,
};
let closedAgainAt: number | undefined;
let wentDownAt: number | undefined;
let firstFailoverAt: number | undefined;
const failovers = new Map<string, number>();

function print(at: number, text: string): void {
  console.log(`${(at / 1000).toFixed(2).padStart(6)}s  ${text}`);
}

function why(change: StateChangeEvent): string {
  switch (change.reason) {
    case 'failMaxReached':
      return `${OPTIONS.failMax} failures in a row`;
    case 'resetTimeoutElapsed':
      return `${OPTIONS.resetTimeout} ms passed: the next call is its one probe`;
    case 'probeFailed':
      return 'the probe failed';
    case 'successThresholdReached':
      return 'the probe succeeded';
    default:
      return change.reason;
  }
}

for (const breaker of [primary, secondary]) {
  breaker.on('stateChange', (change) => {
    const at = elapsed();
    if (breaker === primary && change.to === CircuitState.CLOSED) closedAgainAt = at;
    print(at, `${change.name.padEnd(9)} ${change.from} → ${change.to}: ${why(change)}`);
  });
}
route.on('failover', (event: FailoverEvent) => {
  counts.failedOver++;
  const key = `${event.from} → ${event.to ?? 'none'} (${event.reason})`;
  const seen = failovers.get(key) ?? 0;
  failovers.set(key, seen + 1);
  if (seen === 0) {
    firstFailoverAt ??= elapsed();
    print(elapsed(), `route "chat" fails over ${key}: first time for this reason`);
  }
});

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function prompt(): string {
  // One prompt in 25 is too long for the model: a 400 the route hands back, never retried.
  const length = random() < 0.04 ? CONTEXT_LIMIT + 1_000 : 200 + Math.floor(random() * 2_000);
  return 'x'.repeat(length);
}

// Counts the primary's requests made while its circuit was open: there must be none.
function reached(provider: Provider): void {
  if (provider !== providers.primary) return;
  if (primary.state === CircuitState.OPEN) counts.primaryWhileOpen++;
  if (primary.state === CircuitState.HALF_OPEN) {
    if (elapsed() >= OUTAGE.until) counts.probes++;
    else counts.probesDuringOutage++;
  }
}

function served(provider: Provider): void {
  if (provider === providers.primary) counts.answered.primary++;
  else counts.answered.secondary++;
}

let running = true;

function settle(error: unknown): void {
  if (error instanceof AllTargetsFailedError) counts.refused++;
  else if (error instanceof ChunkTimeoutError) {
    counts.cut++;
    print(
      elapsed(),
      `a stream of "${error.breaker}" stalled mid-way and was cut: ${error.message}`,
    );
  } else counts.ignored++;
}

async function caller(): Promise<void> {
  while (running) {
    counts.calls++;
    try {
      const provider = await route.call(async (llm, signal) => {
        reached(llm);
        await llm.complete(prompt(), signal);
        return llm;
      });
      served(provider);
    } catch (error) {
      settle(error);
    }
    await pause(10 + random() * 30);
  }
}

async function streamer(): Promise<void> {
  while (running) {
    counts.streams++;
    let from: Provider | undefined;
    try {
      // Fails over until the first word arrives; after it, an error reaches this loop.
      const words = route.stream((llm, signal) => {
        reached(llm);
        from = llm;
        return llm.stream(prompt(), signal);
      });
      for await (const _word of words) {
        // A real caller would forward each word to its user here.
      }
      if (from !== undefined) served(from);
    } catch (error) {
      settle(error);
    }
    await pause(10 + random() * 30);
  }
}

console.log(
  `statebreaker demo: ${CALLERS} callers and ${STREAMERS} streamers, one failover route "chat"`,
);
console.log(
  'over two simulated LLM providers, "primary" and "secondary", each behind its own breaker on the',
);
console.log(
  `embedded store. The primary is down from ${OUTAGE.from / 1000} s to ${OUTAGE.until / 1000} s (503s and stalls).`,
);
console.log(
  `Options: failMax ${OPTIONS.failMax}, resetTimeout ${OPTIONS.resetTimeout} ms, one probe (successThreshold 1), timeout ${OPTIONS.timeout} ms,`,
);
console.log(
  `firstChunkTimeout ${OPTIONS.firstChunkTimeout} ms, chunkTimeout ${OPTIONS.chunkTimeout} ms; a 400 is ignored and handed back.`,
);
console.log('');
print(0, 'the callers start; both circuits are closed');
setTimeout(() => {
  wentDownAt = elapsed();
  print(wentDownAt, 'the primary goes down');
}, OUTAGE.from);
setTimeout(() => print(elapsed(), 'the primary recovers'), OUTAGE.until);

const loops = [
  ...Array.from({ length: CALLERS }, () => caller()),
  ...Array.from({ length: STREAMERS }, () => streamer()),
];
while (
  elapsed() < DEADLINE_MS &&
  (closedAgainAt === undefined ||
    closedAgainAt < OUTAGE.until ||
    elapsed() < closedAgainAt + LINGER_MS)
) {
  await pause(50);
}
running = false;
print(elapsed(), 'stopping the callers');
await Promise.all(loops);

const rows: [string, number | string, string][] = [
  ['calls and streams', counts.calls + counts.streams, `${counts.streams} of them streams`],
  ['answered by primary', counts.answered.primary, ''],
  ['answered by secondary', counts.answered.secondary, 'the route moved them at once'],
  ['failovers', counts.failedOver, [...failovers].map(([k, n]) => `${n} ${k}`).join(', ')],
  ['streams cut mid-way', counts.cut, 'ChunkTimeoutError: after the first word, no failover'],
  ['ignored (400)', counts.ignored, 'handed back, tried on no other provider'],
  ['refused', counts.refused, 'AllTargetsFailedError'],
  [
    'primary requests',
    providers.primary.requests,
    `${counts.probesDuringOutage + counts.probes} probes, ${counts.probesDuringOutage} of them still in the outage`,
  ],
  ['secondary requests', providers.secondary.requests, ''],
];
console.log('');
console.log(
  `Summary after ${(elapsed() / 1000).toFixed(1)} s (primary ${primary.state}, secondary ${secondary.state})`,
);
for (const [label, value, note] of rows) {
  console.log(`  ${label.padEnd(22)} ${String(value).padStart(6)}${note ? `   ${note}` : ''}`);
}
if (wentDownAt !== undefined && firstFailoverAt !== undefined) {
  console.log(
    `  the first call failed over ${(firstFailoverAt - wentDownAt).toFixed(0)} ms after the outage began`,
  );
}

// While its circuit was open, the primary must have heard nothing; it came back through one probe.
const consistent =
  counts.primaryWhileOpen === 0 &&
  closedAgainAt !== undefined &&
  counts.probes === 1 &&
  counts.answered.primary +
    counts.answered.secondary +
    counts.cut +
    counts.ignored +
    counts.refused ===
    counts.calls + counts.streams;
console.log(
  consistent
    ? '  check: no request reached the primary while open; it closed again through one probe; every call ended once'
    : `  check FAILED: ${counts.primaryWhileOpen} requests reached the primary while open, ${counts.probes} probes, closed again: ${closedAgainAt !== undefined}`,
);
console.log('');
console.log(
  'Next: two processes sharing one breaker on Redis: npm run example:fleet (examples/two-process-fleet)',
);
process.exitCode = consistent ? 0 : 1;
