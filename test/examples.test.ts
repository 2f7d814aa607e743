import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ExampleRun, inOrder, ROOT, runExample } from './support/example-process.js';
import { RedisServer } from './support/redis-server.js';

// Every program under examples/ run as a user runs it (node with tsx, from the repository's
// root, the package imported by its name), each to its own end: a process the watchdog has to
// kill fails. They run side by side; examples/generated-tests runs as a test file of its own.

let server: RedisServer;
let emptyDir = '';

beforeAll(async () => {
  server = await RedisServer.start();
  emptyDir = mkdtempSync(join(tmpdir(), 'statebreaker-no-redis-'));
});

afterAll(async () => {
  await server?.stop();
  if (emptyDir !== '') rmSync(emptyDir, { recursive: true, force: true });
});

/** The run ended by itself with exit code 0 and printed nothing on stderr. */
function expectClean(run: ExampleRun): void {
  expect(run.stderr).toBe('');
  expect(run).toMatchObject({ exitedByItself: true, code: 0, signal: null });
}

const FLEET = 'examples/two-process-fleet/main.ts';
// A fleet's run bounds itself (30 s for the story, 10 s per exit); this bounds the test above it.
const FLEET_TEST_BOUND_MS = 60_000;

/** What the two-process fleet must show, whichever Redis it ran on. */
function expectFleetStory(run: ExampleRun): void {
  const { lines } = run;
  const of = (worker: 'A' | 'B') => lines.filter((line) => line.startsWith(`[${worker}] `));
  // A fails failMax times and trips; B hears it through Redis and is rejected on its first call.
  inOrder(of('A'), [
    'failure #3 here',
    'circuit closed → open (failMaxReached)',
    '→ closed',
    'stopped on SIGTERM',
  ]);
  inOrder(of('B'), [
    'ready: the shared circuit is closed',
    'circuit closed → open',
    'rejected at once (the circuit is open): the upstream not called',
    '→ closed',
    'stopped on SIGTERM',
  ]);
  // B never saw a failure, and its first call was the rejection.
  expect(of('B').filter((line) => line.includes('failed'))).toEqual([]);
  const firstCall = of('B').find((line) => /called|probe|rejected/.test(line));
  expect(firstCall).toContain('rejected at once');
  // One probe for the whole fleet, and it closed the circuit.
  expect(lines.filter((line) => / probe: /.test(line))).toEqual([
    expect.stringMatching(/^\[[AB]\] probe: the upstream answered$/),
  ]);
  for (const worker of ['A', 'B']) {
    expect(lines).toContain(`[fleet] ${worker} exited by itself after SIGTERM, exit code 0`);
  }
  expect(lines).toContainEqual(
    expect.stringMatching(/^\[fleet\] the upstream answered 3 requests with 503 and \d+ with 200$/),
  );
}

describe.concurrent('examples', () => {
  it(
    'two-process-fleet: A trips, B is rejected at once, one probe closes it, both exit on SIGTERM',
    async () => {
      const run = await runExample(FLEET, { env: { REDIS_URL: server.path } });
      expectClean(run);
      expectFleetStory(run);
    },
    FLEET_TEST_BOUND_MS,
  );

  it('two-process-fleet: says clearly when no Redis answers, and fails', async () => {
    const missing = join(emptyDir, 'redis.sock');
    const run = await runExample(FLEET, { env: { REDIS_URL: missing } });
    expect(run).toMatchObject({ exitedByItself: true, code: 1 });
    expect(run.stderr).toContain(`No Redis answers at ${missing} (connect ENOENT ${missing})`);
    expect(run.stderr).toContain('Set REDIS_URL');
    expect(run.lines.filter((line) => /^\[[AB]\]/.test(line))).toEqual([]);
  });

  it(
    'npm run example:fleet: starts a redis-server of its own when REDIS_URL is unset, then removes it',
    async () => {
      const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      };
      expect(scripts['example:fleet']).toBe(`tsx scripts/with-redis.ts ${FLEET}`);
      const run = await runExample('scripts/with-redis.ts', { args: [FLEET] });
      expectClean(run);
      const started = /^\[with-redis\] a redis-server of its own on (\S+)$/.exec(
        run.lines[0] ?? '',
      );
      const socket = started?.[1] ?? '';
      expect(socket).toMatch(/redis\.sock$/);
      expect(run.stdout).toContain(`[fleet] Redis at ${socket};`);
      expectFleetStory(run);
      expect(existsSync(dirname(socket))).toBe(false);
    },
    FLEET_TEST_BOUND_MS,
  );
});
