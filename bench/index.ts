/**
 * `npm run bench`: statebreaker against a bare await, a hand-written breaker, cockatiel 3.2
 * and opossum 9, as ratios measured in the same run (method: bench/harness.ts). Prints one
 * markdown table per section and a verdict against each of the project's performance targets.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { benchClosed } from './closed.js';
import { benchFailure } from './failure.js';
import { benchMemory } from './memory.js';
import { benchOpen } from './open.js';
import { benchRoute } from './route.js';

const require = createRequire(import.meta.url);
const version = (name: string): string =>
  (require(`${name}/package.json`) as { version: string }).version;

const started = Date.now();
const cpus = os.cpus();
console.log('# statebreaker benchmarks\n');
console.log(
  `Node ${process.version}, ${cpus.length} × ${cpus[0]?.model ?? 'cpu'}, xstate ${version('xstate')}, ` +
    `cockatiel ${version('cockatiel')}, opossum ${version('opossum')}; load average ` +
    `${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at start. Medians of 7 interleaved rounds; ratios are per round, then median.\n`,
);
for (const section of [benchClosed, benchOpen, benchFailure, benchMemory, benchRoute]) {
  const { report } = await section();
  console.log(`${report}\n`);
}
console.log(`Total ${((Date.now() - started) / 1000).toFixed(0)} s.`);
