/**
 * What the rate rules cost:
 * 1. closed success-path overhead with a failure-rate window (and with a slow-call rule, which
 *    times every call) against the same breaker without one and the hand-written reference;
 * 2. Redis round trips and commands per second per instance under steady traffic with a window
 *    on a RedisStore, at several call rates and two flush intervals (INFO commandstats on a
 *    redis-server this script starts on a unix socket).
 * Run: node --expose-gc --import tsx bench/window.ts
 */
import { cpus, loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { CircuitBreaker, MemoryStore } from '../src/index.js';
import { RedisStore } from '../src/stores/redis/index.js';
import { RedisServer } from '../test/support/redis-server.js';
import { HandWrittenBreaker } from './hand-written.js';
import { formatNumber, measure, table, type Variant, verdict, yieldToLoop } from './harness.js';

const one = async () => 1;
const rate = { failureRateThreshold: 50, minimumCalls: 20 };

function loop(name: string, call: () => Promise<number>, sink: { n: number }): Variant {
  return {
    name,
    async run(n) {
      for (let i = 0; i < n; i++) {
        sink.n += await call();
        if (i % 1000 === 999) await yieldToLoop();
      }
    },
  };
}

async function closedOverhead(): Promise<string> {
  const hand = new HandWrittenBreaker();
  const plain = new CircuitBreaker('bench-plain', { store: new MemoryStore() });
  const windowed = new CircuitBreaker('bench-window', { store: new MemoryStore(), ...rate });
  const timed = new CircuitBreaker('bench-timed', {
    store: new MemoryStore(),
    ...rate,
    slowCallDuration: 1_000,
    slowCallRateThreshold: 80,
  });
  const sink = { n: 0 };
  const variants = [
    loop('hand-written (async/await)', () => hand.call(one), sink),
    loop('statebreaker `call`, no window', () => plain.call(one), sink),
    loop('statebreaker `call`, failure-rate window', () => windowed.call(one), sink),
    loop('statebreaker `call`, failure-rate and slow-call rules', () => timed.call(one), sink),
  ];
  const [handName, plainName] = [variants[0]?.name ?? '', variants[1]?.name ?? ''];
  const results = await measure(variants, { references: [handName, plainName] });
  for (const breaker of [plain, windowed, timed]) {
    if (breaker.state !== 'closed') throw new Error('closed bench left closed');
    breaker.dispose();
  }
  const rows = results.map((r) => [
    r.name,
    formatNumber(r.nsPerOp, 1),
    `${formatNumber(r.ratios[handName] ?? Number.NaN, 2)}×`,
    `${formatNumber(r.ratios[plainName] ?? Number.NaN, 2)}×`,
  ]);
  const windowedRatio = results[2]?.ratios[handName] ?? Number.POSITIVE_INFINITY;
  const timedRatio = results[3]?.ratios[handName] ?? Number.POSITIVE_INFINITY;
  return [
    '## 1. Closed: per-call overhead with a window, all calls succeed (`async () => 1`)',
    '',
    table(['variant', 'ns/op', '× hand-written', '× no window'], rows),
    '',
    verdict(
      'failure-rate window / hand-written',
      `${formatNumber(windowedRatio, 2)}×`,
      '≤ 1.3×',
      windowedRatio <= 1.3,
    ),
    // Not held to the target: a slow-call rule must time every call, and two reads of the
    // clock cost more than the rest of a call that does nothing.
    `With a slow-call rule (two clock reads per call): ${formatNumber(timedRatio, 2)}× the hand-written breaker.`,
  ].join('\n');
}

async function scriptCounts(admin: Redis): Promise<{ scripts: number; commands: number }> {
  let scripts = 0;
  let commands = 0;
  for (const line of (await admin.info('commandstats')).split('\n')) {
    const match = /^cmdstat_(\w+):calls=(\d+)/.exec(line.trim());
    if (match === null || match[1] === 'info') continue;
    commands += Number(match[2]);
    if (match[1] === 'evalsha' || match[1] === 'eval') scripts += Number(match[2]);
  }
  return { scripts, commands };
}

// Calls at about `perSecond` (0: as fast as the loop goes) for `ms`, every tenth failing
// (10 %: below the threshold, so the circuit stays closed and the window keeps counting).
async function steady(breaker: CircuitBreaker, perSecond: number, ms: number): Promise<number> {
  const fail = () => Promise.reject(new Error('upstream'));
  const end = performance.now() + ms;
  let calls = 0;
  while (performance.now() < end) {
    const batch = perSecond === 0 ? 500 : Math.max(1, Math.round(perSecond / 100));
    for (let i = 0; i < batch; i++) {
      calls++;
      await breaker.call(calls % 10 === 0 ? fail : one).catch(() => {});
    }
    if (perSecond === 0) await yieldToLoop();
    else await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return calls;
}

async function redisCommands(): Promise<string> {
  const server = await RedisServer.start();
  const admin = new Redis({ path: server.path });
  const rows: string[][] = [];
  const seconds = 4;
  let worst = 0;
  try {
    let run = 0;
    for (const windowFlush of [500, 100]) {
      for (const perSecond of [100, 1_000, 0]) {
        const redis = new Redis({ path: server.path });
        const store = new RedisStore(redis);
        // The rate rule alone: with failMax set, every failure also writes the consecutive
        // count (one compare-and-set, as without a window), which is not the window's cost.
        const breaker = new CircuitBreaker(`bench-window ${++run}`, {
          store,
          ...rate,
          failMax: Number.POSITIVE_INFINITY,
          windowFlush,
        });
        await breaker.settled();
        const before = await scriptCounts(admin);
        const calls = await steady(breaker, perSecond, seconds * 1_000);
        const after = await scriptCounts(admin);
        const scripts = (after.scripts - before.scripts) / seconds;
        const commands = (after.commands - before.commands) / seconds;
        worst = Math.max(worst, (scripts * windowFlush) / 1_000);
        if (breaker.state !== 'closed') throw new Error('the steady traffic tripped the circuit');
        rows.push([
          `${windowFlush} ms`,
          formatNumber(calls / seconds),
          formatNumber(scripts, 2),
          formatNumber(commands, 1),
          formatNumber(1_000 / windowFlush, 0),
        ]);
        breaker.dispose();
        await store.close();
        redis.disconnect();
      }
    }
  } finally {
    admin.disconnect();
    await server.stop();
  }
  return [
    '## 2. Redis per instance under steady traffic with a window (10 % failures)',
    '',
    table(
      [
        'windowFlush',
        'calls/s',
        'round trips/s (script calls)',
        'commands/s (inside scripts too)',
        'target round trips/s (1000 / windowFlush)',
      ],
      rows,
    ),
    '',
    verdict(
      'round trips per windowFlush, worst row',
      formatNumber(worst, 2),
      '≤ 1, whatever the call rate',
      worst <= 1.0001,
    ),
  ].join('\n');
}

console.log(
  `# statebreaker window benchmarks\n\nNode ${process.version}, ${cpus().length} CPUs, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ')}\n`,
);
console.log(await closedOverhead());
console.log('');
console.log(await redisCommands());
