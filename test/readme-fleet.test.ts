import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runExample } from './support/example-process.js';
import { typeScriptBlocks } from './support/readme-blocks.js';
import { RedisServer } from './support/redis-server.js';

// The README's two-process program, as a reader copies it: run as it is written, it must exit
// by itself on SIGTERM, also while its Redis does not answer (a process that waits for a
// frozen Redis is a kill -9 in a pod). The package test compiles it; this runs it.

const HEADING = '## A fleet: two processes sharing one breaker on Redis';

/** The first ```ts block under the README's fleet heading. */
function fleetProgram(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const at = readme.split('\n').indexOf(HEADING);
  if (at < 0) throw new Error(`README.md has no heading "${HEADING}"`);
  const block = typeScriptBlocks(readme).find((b) => b.line > at + 1);
  if (block === undefined) throw new Error(`README.md has no ts block under "${HEADING}"`);
  return block.code;
}

let dir = '';
let program = '';

beforeAll(() => {
  // Outside the repository, as a user's project: its imports resolve through the repository's
  // node_modules, and tsx maps 'statebreaker' to src/ by tsconfig.json's paths (cwd is the root).
  dir = mkdtempSync(join(tmpdir(), 'statebreaker-readme-fleet-'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  program = join(dir, 'fleet.ts');
  writeFileSync(program, fleetProgram());
});

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe.concurrent("the README's fleet program", { timeout: 60_000 }, () => {
  it.each([
    ['answers', false],
    ['is frozen (SIGSTOP)', true],
  ])('exits by itself on SIGTERM while its Redis %s', async (_, freeze) => {
    const redis = await RedisServer.start();
    try {
      let sent = false;
      const run = await runExample(program, {
        env: { REDIS_URL: redis.path },
        boundMs: 30_000,
        // After its first call (a line "[pid] ..."), the process is running and on Redis.
        onLine: (line, signal) => {
          if (sent || !/^\[\d+\] /.test(line)) return;
          sent = true;
          if (freeze) redis.pause();
          signal('SIGTERM');
        },
      });
      expect(sent).toBe(true);
      expect(run).toMatchObject({ exitedByItself: true, code: 0, signal: null });
    } finally {
      redis.resume();
      await redis.stop();
    }
  });
});
