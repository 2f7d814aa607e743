import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The package's root directory. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));

// Bounds a hang of the build; it does not measure speed.
export const BUILD_BOUND_MS = 120_000;

const STAMP = join(PACKAGE_ROOT, 'dist', '.built');
// One lock per checkout, outside it: test files run in parallel workers and share dist/.
const LOCK = join(
  tmpdir(),
  `statebreaker-build-${createHash('sha1').update(PACKAGE_ROOT).digest('hex').slice(0, 12)}.lock`,
);

function newestSource(): number {
  let newest = 0;
  const files = [
    ...readdirSync(join(PACKAGE_ROOT, 'src'), { recursive: true, encoding: 'utf8' }).map((f) =>
      join('src', f),
    ),
    'package.json',
    'tsconfig.json',
    'tsconfig.build.json',
  ];
  for (const file of files) newest = Math.max(newest, statSync(join(PACKAGE_ROOT, file)).mtimeMs);
  return newest;
}

function builtAt(): number {
  try {
    return statSync(STAMP).mtimeMs;
  } catch {
    return 0;
  }
}

async function lock(): Promise<() => void> {
  const deadline = Date.now() + BUILD_BOUND_MS;
  for (;;) {
    try {
      mkdirSync(LOCK);
      return () => rmdirSync(LOCK);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // A lock older than any build is left by a killed run.
      const held = statSync(LOCK, { throwIfNoEntry: false });
      if (held !== undefined && Date.now() - held.mtimeMs > BUILD_BOUND_MS) {
        rmdirSync(LOCK);
        continue;
      }
      if (Date.now() > deadline) throw new Error(`the build lock ${LOCK} was held too long`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/**
 * Builds dist/ (what the published package holds) unless it is newer than every source file.
 * Test files that run the built package call it in `beforeAll`; a lock makes files running at
 * once build it once.
 */
export async function buildPackage(): Promise<void> {
  if (builtAt() > newestSource()) return;
  const unlock = await lock();
  try {
    if (builtAt() > newestSource()) return;
    const started = Date.now();
    await run('npm', ['run', 'build'], { cwd: PACKAGE_ROOT, timeout: BUILD_BOUND_MS });
    writeFileSync(STAMP, '');
    // Stamped with the build's start, so that a source saved during the build makes it stale.
    const at = new Date(started);
    utimesSync(STAMP, at, at);
  } finally {
    unlock();
  }
}
