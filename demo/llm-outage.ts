// npm run demo: eight callers keep asking a simulated LLM endpoint that goes down for a few
// seconds, then rate-limits them for a moment (429 with retry-after), through one circuit
// breaker on the embedded store. Prints every state change with its time and reason, then what
// the breaker spared the endpoint.
import {
  CallTimeoutError,
  CircuitBreakerError,
  CircuitState,
  getCircuitBreaker,
  type StateChangeEvent,
} from '../src/index.js';
import { llmClassify, llmRetryAfter } from '../src/llm/index.js';
import { CONTEXT_LIMIT, FakeLlm, LlmError, seededRandom } from './fake-llm.js';

const CALLERS = 8;
const OUTAGE = { from: 1_000, until: 4_500 };
const RATE_LIMIT = { from: 7_500, until: 7_800, retryAfterSeconds: 2 };
const OPTIONS = { failMax: 5, resetTimeout: 1_500, successThreshold: 2, timeout: 1_000 };
// Healthy traffic shown after the circuit closes again, and a bound for slow machines.
const LINGER_MS = 1_500;
const DEADLINE_MS = 15_000;

const started = performance.now();
const elapsed = () => performance.now() - started;
const random = seededRandom(2024);
const llm = new FakeLlm(OUTAGE, elapsed, random, RATE_LIMIT);

// statebreaker/llm's presets: a 4xx is the caller's own fault (here: a prompt over the context
// limit) and neither trips the circuit nor closes it; 429 and 5xx say the endpoint is in
// trouble, and a 429's retry-after opens the circuit at once, for the whole fleet, for that long.
const breaker = getCircuitBreaker('llm', {
  ...OPTIONS,
  classify: llmClassify,
  retryAfter: llmRetryAfter,
});

const counts = {
  calls: 0,
  successes: 0,
  failures: 0,
  timeouts: 0,
  rateLimited: 0,
  ignored: 0,
  rejected: 0,
  probes: 0,
  probeSuccesses: 0,
  stateChanges: 0,
};
let rejectedSinceChange = 0;
let lastFailure = '';
let closedAgainAt: number | undefined;

function clock(ms: number): string {
  return `${(ms / 1000).toFixed(2).padStart(6)}s`;
}

function print(at: number, text: string): void {
  console.log(`${clock(at)}  ${text}`);
}

function why(change: StateChangeEvent): string {
  switch (change.reason) {
    case 'failMaxReached':
      return `${OPTIONS.failMax} failures in a row; last: ${lastFailure}`;
    case 'resetTimeoutElapsed':
      return `${breaker.context.openDuration} ms passed: the next call is a probe (${rejectedSinceChange} calls rejected while open)`;
    case 'probeFailed':
      return `the probe failed: ${lastFailure}`;
    case 'probeLeaseExpired':
      return 'the probe did not answer within its lease';
    case 'successThresholdReached':
      return `${OPTIONS.successThreshold} probes in a row succeeded`;
    case 'retryAfter':
      return `${lastFailure} with retry-after ${RATE_LIMIT.retryAfterSeconds} s: open for ${breaker.context.openDuration} ms, not ${OPTIONS.resetTimeout}`;
    default:
      return change.reason;
  }
}

breaker.on('failure', ({ error }) => {
  counts.failures++;
  if (error instanceof CallTimeoutError) counts.timeouts++;
  if (error instanceof LlmError && error.status === 429) counts.rateLimited++;
  lastFailure = error instanceof Error ? error.message : String(error);
});
breaker.on('success', () => counts.successes++);
breaker.on('ignored', () => counts.ignored++);
breaker.on('rejected', () => {
  counts.rejected++;
  rejectedSinceChange++;
});
breaker.on('stateChange', (change) => {
  const at = elapsed();
  counts.stateChanges++;
  if (change.to === CircuitState.CLOSED) closedAgainAt = at;
  // The breaker reports the outcome that caused a change right after the change itself:
  // print on the next turn, when the failure behind it is known.
  setImmediate(() => {
    const arrow = `${change.from.padEnd(8)} → ${change.to.padEnd(8)}`;
    print(at, `${arrow}  ${why(change)} [${change.reason}]`);
    rejectedSinceChange = 0;
  });
});

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function prompt(): string {
  // One prompt in 25 is too long for the model: a 400 that says nothing about its health.
  const length = random() < 0.04 ? CONTEXT_LIMIT + 1_000 : 200 + Math.floor(random() * 2_000);
  return 'x'.repeat(length);
}

let running = true;

async function caller(): Promise<void> {
  while (running) {
    counts.calls++;
    let probe = false;
    try {
      await breaker.call((signal) => {
        probe = breaker.state === CircuitState.HALF_OPEN;
        if (probe) counts.probes++;
        return llm.complete(prompt(), signal);
      });
      if (probe) counts.probeSuccesses++;
      await pause(10 + random() * 30);
    } catch (error) {
      // Rejected calls cost nothing upstream; a real caller would serve a fallback here.
      await pause(error instanceof CircuitBreakerError ? 50 : 10 + random() * 30);
    }
  }
}

console.log(
  `statebreaker demo: ${CALLERS} callers, one breaker "llm" on the embedded store, and a`,
);
console.log(
  `simulated LLM endpoint that answers in 20-80 ms, and is down from ${OUTAGE.from / 1000} s to ${OUTAGE.until / 1000} s`,
);
console.log(
  `(503s, and requests that hang until the breaker's timeout aborts them), then rate-limits from ${RATE_LIMIT.from / 1000} s to ${RATE_LIMIT.until / 1000} s (429, retry-after ${RATE_LIMIT.retryAfterSeconds} s).`,
);
console.log(
  `Options: failMax ${OPTIONS.failMax}, resetTimeout ${OPTIONS.resetTimeout} ms, successThreshold ${OPTIONS.successThreshold}, timeout ${OPTIONS.timeout} ms; a 400 is ignored.`,
);
console.log('');
console.log('   time  from       to');
print(0, `${CALLERS} callers start; the circuit is ${breaker.state}`);
setTimeout(() => print(elapsed(), 'upstream goes down'), OUTAGE.from);
setTimeout(() => print(elapsed(), 'upstream recovers'), OUTAGE.until);
setTimeout(() => print(elapsed(), 'upstream rate-limits (429 with retry-after)'), RATE_LIMIT.from);

const callers = Array.from({ length: CALLERS }, () => caller());
while (
  elapsed() < DEADLINE_MS &&
  (closedAgainAt === undefined ||
    closedAgainAt < RATE_LIMIT.until ||
    elapsed() < closedAgainAt + LINGER_MS)
) {
  await pause(50);
}
running = false;
print(elapsed(), 'stopping the callers');
await Promise.all(callers);
await pause(0);

const settled = counts.successes + counts.failures + counts.ignored;
const spared = counts.calls - llm.requests;
const rows: [string, number, string][] = [
  ['calls made by callers', counts.calls, ''],
  ['reached the endpoint', llm.requests, `the breaker spared it ${spared} calls`],
  ['succeeded', counts.successes, ''],
  [
    'failed',
    counts.failures,
    `503s, ${counts.timeouts} timeouts and ${counts.rateLimited} 429s, counted against the circuit`,
  ],
  ['ignored', counts.ignored, '400 context_length_exceeded: neither trips nor closes'],
  ['rejected', counts.rejected, 'CircuitBreakerError, the endpoint not called'],
  ['probes', counts.probes, `${counts.probeSuccesses} succeeded`],
  ['state changes', counts.stateChanges, ''],
];
console.log('');
console.log(`Summary after ${(elapsed() / 1000).toFixed(1)} s (final state: ${breaker.state})`);
for (const [label, value, note] of rows) {
  console.log(`  ${label.padEnd(22)} ${String(value).padStart(6)}${note ? `   ${note}` : ''}`);
}

// Every call either reached the endpoint or was rejected, and every request that reached it
// was counted once: if not, the breaker lost or double-counted a call.
const consistent = counts.calls === llm.requests + counts.rejected && settled === llm.requests;
console.log(
  consistent
    ? '  check: calls = reached + rejected, and reached = succeeded + failed + ignored'
    : `  check FAILED: calls ${counts.calls}, reached ${llm.requests}, rejected ${counts.rejected}, settled ${settled}`,
);
if (closedAgainAt === undefined) {
  console.log('  note: the circuit had not closed again by the deadline (a very slow machine?)');
}
process.exitCode = consistent ? 0 : 1;
