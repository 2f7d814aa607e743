import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeUpstream } from '../examples/two-process-fleet/upstream.js';
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

/** The lines after each line that matches `header`, up to the next one. */
function sections(lines: readonly string[], header: RegExp): string[][] {
  const found: string[][] = [];
  for (const line of lines) {
    if (header.test(line)) found.push([]);
    else found.at(-1)?.push(line);
  }
  return found;
}

/** The run ended by itself with exit code 0 and printed nothing on stderr. */
function expectClean(run: ExampleRun): void {
  expect(run.stderr).toBe('');
  expect(run).toMatchObject({ exitedByItself: true, code: 0, signal: null });
}

const FLEET = 'examples/two-process-fleet/main.ts';

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

// Each example bounds its own run (runExample kills it after 55 s; the fleet gives its story
// 40 s and each exit 10 s); this bounds a test above that, on a loaded machine.
describe.concurrent('examples', { timeout: 60_000 }, () => {
  it('two-process-fleet: A trips, B is rejected at once, one probe closes it, both exit on SIGTERM', async () => {
    const run = await runExample(FLEET, { env: { REDIS_URL: server.path } });
    expectClean(run);
    expectFleetStory(run);
  });

  it('two-process-fleet: says clearly when no Redis answers, and fails', async () => {
    const missing = join(emptyDir, 'redis.sock');
    const run = await runExample(FLEET, { env: { REDIS_URL: missing } });
    expect(run).toMatchObject({ exitedByItself: true, code: 1 });
    expect(run.stderr).toContain(`No Redis answers at ${missing} (connect ENOENT ${missing})`);
    expect(run.stderr).toContain('Set REDIS_URL');
    expect(run.lines.filter((line) => /^\[[AB]\]/.test(line))).toEqual([]);
  });

  it('two-process-fleet: a worker exits by itself on SIGTERM while its Redis does not answer', async () => {
    // A Redis of its own, frozen once the worker is ready: QUIT then gets no answer, and a
    // worker that only awaits it never exits (in a pod, a kill -9 at the end of the grace).
    const frozen = await RedisServer.start();
    const upstream = await startFakeUpstream(0);
    try {
      const run = await runExample('examples/two-process-fleet/worker.ts', {
        env: { REDIS_URL: frozen.path, UPSTREAM_URL: upstream.url, WORKER: 'W' },
        boundMs: 30_000,
        onLine: (line, signal) => {
          if (!line.includes('ready: the shared circuit is closed')) return;
          frozen.pause();
          signal('SIGTERM');
        },
      });
      expect(run).toMatchObject({ exitedByItself: true, code: 0, signal: null });
      expect(run.lines).toContain(
        '[W] stopped on SIGTERM: the breaker disposed, the store closed, the Redis client ended',
      );
    } finally {
      frozen.resume();
      await frozen.stop();
      await upstream.close();
    }
  });

  it('npm run example:fleet: starts a redis-server of its own when REDIS_URL is unset, then removes it', async () => {
    const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(scripts['example:fleet']).toBe(`tsx scripts/with-redis.ts ${FLEET}`);
    const run = await runExample('scripts/with-redis.ts', { args: [FLEET] });
    expectClean(run);
    const started = /^\[with-redis\] a redis-server of its own on (\S+)$/.exec(run.lines[0] ?? '');
    const socket = started?.[1] ?? '';
    expect(socket).toMatch(/redis\.sock$/);
    expect(run.stdout).toContain(`[fleet] Redis at ${socket};`);
    expectFleetStory(run);
    expect(existsSync(dirname(socket))).toBe(false);
  });

  it('llm-route-streams: the primary fails (503, a dropped connection); the route fails over; one probe brings it back', async () => {
    const run = await runExample('examples/llm-route-streams/main.ts');
    expectClean(run);
    // The lines under each numbered step; within a step, only causal order is asserted (a state
    // change is heard once the store holds it, which may come before or after an answer ends).
    const steps = sections(run.lines, /^\d\. /);
    const by = (target: string) => `answered by ${target}: "Circuit breakers fail fast."`;
    expect(steps.map((step) => step.length > 0)).toEqual([true, true, true, true, true]);
    inOrder(steps[0] ?? [], [by('primary')]);
    inOrder(steps[1] ?? [], ['route chat: primary → secondary (failure)', by('secondary')]);
    inOrder(steps[2] ?? [], ['route chat: primary → secondary (failure)', by('secondary')]);
    inOrder(steps[2] ?? [], ['circuit primary: closed → open (failMaxReached)']);
    inOrder(steps[3] ?? [], [
      'route chat: primary → secondary (rejected)',
      by('secondary'),
      'requests the primary received: 0',
    ]);
    inOrder(steps[4] ?? [], [
      'circuit primary: open → halfOpen (resetTimeoutElapsed)',
      by('primary'),
    ]);
    inOrder(steps[4] ?? [], [
      'circuit primary: halfOpen → closed (successThresholdReached)',
      'requests the primary received: 1',
    ]);
    expect(run.lines.filter((line) => line.includes('circuit secondary'))).toEqual([]);
  });

  it('prometheus: serves /metrics and prints a scrape with the statebreaker_ series', async () => {
    const run = await runExample('examples/prometheus/main.ts');
    expectClean(run);
    expect(run.lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^GET http:\/\/127\.0\.0\.1:\d+\/metrics /),
        'statebreaker_state{name="payments",state="open"} 1',
        'statebreaker_state{name="payments",state="closed"} 0',
        'statebreaker_calls_total{name="payments",kind="successful"} 1',
        'statebreaker_calls_total{name="payments",kind="failed"} 2',
        'statebreaker_calls_total{name="payments",kind="rejected"} 1',
        'statebreaker_call_duration_seconds_count{name="payments",kind="failed"} 2',
        'statebreaker_transitions_total{name="payments",from="closed",to="open",reason="failMaxReached"} 1',
      ]),
    );
  });

  it('commonjs: require() from a .cjs file', async () => {
    const run = await runExample('examples/commonjs/main.cjs');
    expectClean(run);
    expect(run.lines).toEqual([
      'answered: in stock',
      'failed: the inventory API answered 503',
      'failed: the inventory API answered 503',
      expect.stringMatching(/^rejected without a call: circuit breaker "inventory" is open; /),
    ]);
  });

  it('commonjs: import() from a .cjs file', async () => {
    const run = await runExample('examples/commonjs/import.cjs');
    expectClean(run);
    expect(run.lines).toEqual([
      expect.stringMatching(/^loaded with import\(\); rejected without a call: .* is open; /),
    ]);
  });
});

describe('the demo', () => {
  it('ends by naming the next step: a script and an example that exist', () => {
    const demo = readFileSync(join(ROOT, 'demo', 'llm-outage.ts'), 'utf8');
    const next = /Next: [^']*npm run (\S+) \((examples\/[^)]+)\)/.exec(demo);
    const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(next?.[1]).toBe('example:fleet');
    expect(scripts[next?.[1] ?? '']).toBeDefined();
    expect(existsSync(join(ROOT, next?.[2] ?? 'missing'))).toBe(true);
  });
});
