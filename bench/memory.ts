import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { formatNumber, median, table, verdict } from './harness.js';
import { BREAKERS, type MemorySample, type Mode, VARIANTS } from './memory-child.js';

const CHILD = fileURLToPath(new URL('./memory-child.ts', import.meta.url));
const REPEATS = 3;
const IDLE_MS = 3000;
const TARGET_BYTES = 1500;

function runChild(variant: string, mode: Mode, idleMs = 0): Promise<MemorySample> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', CHILD, variant, mode, String(idleMs)],
      { timeout: 120_000 },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`memory child ${variant} ${mode} failed: ${stderr || error.message}`));
          return;
        }
        resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '') as MemorySample);
      },
    );
  });
}

// Heap figures do not depend on CPU contention, so two children run at once.
async function inPairs<T>(jobs: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < jobs.length; i += 2) {
    results.push(...(await Promise.all(jobs.slice(i, i + 2).map((job) => job()))));
  }
  return results;
}

const kb = (bytes: number) => formatNumber(bytes);

/** Section 3: heap per idle breaker, timers, idle CPU; each sample in a fresh process. */
export async function benchMemory(): Promise<{ report: string; bytes: Map<string, number> }> {
  const jobs: (() => Promise<MemorySample>)[] = [];
  for (let r = 0; r < REPEATS; r++) {
    for (const variant of VARIANTS) {
      for (const mode of ['fresh', 'called'] as const) jobs.push(() => runChild(variant, mode));
    }
  }
  const samples = await inPairs(jobs);
  // Idle CPU is measured alone, so that no sibling process competes with it.
  const statebreaker = VARIANTS.find((v) => v.startsWith('statebreaker')) ?? '';
  const idleClosed = await runChild(statebreaker, 'called', IDLE_MS);
  const idleOpen = await runChild(statebreaker, 'open', IDLE_MS);

  const bytes = new Map<string, number>();
  const rows = VARIANTS.map((variant) => {
    const of = (mode: Mode) => samples.filter((s) => s.variant === variant && s.mode === mode);
    const fresh = median(of('fresh').map((s) => s.bytesPerBreaker));
    const called = median(of('called').map((s) => s.bytesPerBreaker));
    bytes.set(variant, Math.max(fresh, called));
    const last = of('called').at(-1);
    const timers = last === undefined ? '?' : String(last.timersAfter - last.timersBefore);
    const refd = last === undefined ? '?' : String(last.refTimersAfter - last.refTimersBefore);
    return [
      variant,
      kb(fresh),
      kb(called),
      formatNumber((fresh * BREAKERS) / 1e6, 1),
      timers,
      refd,
    ];
  });
  const percent = (s: MemorySample) => `${formatNumber(s.idleCpuPercent ?? Number.NaN, 2)} %`;
  const idleRows = [idleClosed, idleOpen].map((s) => [
    `${s.variant}, ${s.mode === 'open' ? 'all open' : 'all closed (after 1 call)'}`,
    kb(s.bytesPerBreaker),
    String(s.timersAfter - s.timersBefore),
    String(s.refTimersAfter - s.refTimersBefore),
    percent(s),
  ]);
  const worst = Math.max(
    ...[...bytes].filter(([v]) => v.startsWith('statebreaker')).map(([, b]) => b),
  );
  const closedTimers = samples
    .filter((s) => s.variant.startsWith('statebreaker'))
    .reduce((n, s) => n + s.timersAfter - s.timersBefore, 0);
  const report = [
    `## 3. Memory: ${formatNumber(BREAKERS)} breakers, each sample a fresh process`,
    '',
    `Heap bytes per breaker (\`heapUsed\` delta after \`gc()\` / ${formatNumber(BREAKERS)}, ` +
      `median of ${REPEATS} processes); timers created by the ${formatNumber(BREAKERS)} ` +
      "breakers after one call each (unref'd included) and those keeping the loop alive.",
    '',
    table(
      ['variant', 'B/breaker, fresh', 'after 1 call', 'MB per 10k', 'timers', "ref'd timers"],
      rows,
    ),
    '',
    `Idle cost over ${IDLE_MS / 1000} s, statebreaker (new, shared MemoryStore):`,
    '',
    table(['breakers', 'B/breaker', 'timers', "ref'd timers", 'CPU, % of one core'], idleRows),
    '',
    verdict(
      'statebreaker heap per idle breaker',
      `${kb(worst)} B`,
      '≤ 1,500 B',
      worst <= TARGET_BYTES,
    ),
    '',
    verdict(
      `timers created by ${formatNumber(BREAKERS * REPEATS * 4)} closed statebreaker breakers`,
      String(closedTimers),
      '0',
      closedTimers === 0,
    ),
    '',
    'Note: tsx (which `npm run bench` loads `src/` with) compiles with esbuild `keepNames`, so ' +
      'every named arrow function gets an own `name` property and its own property array ' +
      '(~250 B each); code compiled by `tsc` (`npm run build`) has none of these.',
  ].join('\n');
  return { report, bytes };
}
