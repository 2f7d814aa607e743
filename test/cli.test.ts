import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUILD_BOUND_MS, buildPackage, PACKAGE_ROOT } from './support/built-package.js';
import { settle, useFaultHarness } from './support/fault-fleet.js';
import { Upstream, Worker } from './support/redis-fleet.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';

// The `statebreaker` command as an operator runs it: `node` on the package's bin file (the built
// package), against a real redis-server, with a fleet member in another process that must obey
// every operator action, and bad input that must leave Redis as it was.

const BIN = join(PACKAGE_ROOT, 'bin', 'statebreaker.js');
// Bounds a hang (a connection left open keeps the process alive); it does not measure speed.
const RUN_BOUND_MS = 20_000;
const CONFIG = { failMax: 2, resetTimeout: 60_000 };

const harness = useFaultHarness();
let upstream: Upstream;
const workers: Worker[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  upstream = new Upstream();
  await upstream.listen();
  await buildPackage();
}, BUILD_BOUND_MS);

afterEach(async () => {
  for (const worker of workers.splice(0)) await worker.exit();
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

afterAll(async () => {
  await upstream?.close();
});

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment of an operator's shell: no colour forced, no Redis URL set. */
function shellEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { NO_COLOR: _n, FORCE_COLOR: _f, REDIS_URL: _r, ...env } = process.env;
  return { ...env, ...extra };
}

function redisUrl(): string {
  return `unix://${harness.server.path}`;
}

/** Runs `statebreaker ...args` against the test's server (unless `--redis` is given). */
function cli(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  const withRedis = args.some((arg) => arg.startsWith('--redis'))
    ? args
    : [...args, '--redis', redisUrl()];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...withRedis],
      { env: shellEnv(env), timeout: RUN_BOUND_MS },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Every key of the server and its value: what "nothing changed" is checked against. */
async function everything(): Promise<Record<string, string | null>> {
  const keys = (await harness.admin.keys('*')).sort();
  const values: Record<string, string | null> = {};
  for (const key of keys) {
    const type = await harness.admin.type(key);
    values[key] = type === 'string' ? await harness.admin.get(key) : `(${type})`;
  }
  return values;
}

/** A breaker with a record (one failure counted) under the fleet's configuration. */
async function withRecord(label: string) {
  const name = harness.begin(label);
  const member = harness.join(name, CONFIG);
  await settle(member.breaker, 'fail');
  await member.breaker.settled();
  return { name, member };
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

describe('reading', () => {
  it('list prints a table without colour on a pipe, coloured when forced, and a JSON array', async () => {
    const { name } = await withRecord('list');
    const plain = await cli(['list']);
    expect(plain.code, plain.stderr).toBe(0);
    const [header, ...rows] = lines(plain.stdout);
    expect(header).toMatch(/^NAME\s+STATE\s+FAILURES\s+RETRY-AFTER\s+PROBES\s+VERSION$/);
    expect(rows.find((row) => row.startsWith(name))).toMatch(/\sclosed\s+1\s+-\s+0\s+1$/);
    expect(plain.stdout).not.toContain('\u001b[');

    const coloured = await cli(['list'], { FORCE_COLOR: '1' });
    expect(coloured.stdout).toContain('\u001b[32mclosed');
    const refused = await cli(['list'], { FORCE_COLOR: '1', NO_COLOR: '1' });
    expect(refused.stdout).not.toContain('\u001b[');

    const json = await cli(['list', '--json']);
    const listed = JSON.parse(json.stdout) as Record<string, unknown>[];
    expect(listed.find((entry) => entry.name === name)).toMatchObject({
      state: 'closed',
      failures: 1,
      retryAfterMs: null,
      probes: 0,
      version: 1,
      config: CONFIG,
    });
  });

  it('show prints one breaker: state, counters, configuration; --json one object with its context', async () => {
    const { name, member } = await withRecord('show');
    await settle(member.breaker, 'fail');
    await member.breaker.settled();
    const human = await cli(['show', name]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^state\s+open \(failMaxReached\)$/m);
    expect(human.stdout).toMatch(/^retry after\s+\d+(\.\d)? s$/m);
    expect(human.stdout).toMatch(/^configuration\s+failMax 2, resetTimeout 60000 ms/m);

    const json = JSON.parse((await cli(['show', name, '--json'])).stdout);
    expect(json).toMatchObject({
      name,
      state: 'open',
      reason: 'failMaxReached',
      generation: 1,
      context: { failures: 0, config: { failMax: 2 } },
      snapshot: { value: 'open' },
    });
    expect(json.retryAfterMs).toBeGreaterThan(50_000);
  });

  it('takes the Redis URL from $REDIS_URL when --redis is not given', async () => {
    const { name } = await withRecord('env');
    const ran = await new Promise<Ran>((resolve) =>
      execFile(
        process.execPath,
        [BIN, 'show', name, '--json'],
        { env: shellEnv({ REDIS_URL: redisUrl() }), timeout: RUN_BOUND_MS },
        (error, stdout, stderr) => resolve({ code: error === null ? 0 : 1, stdout, stderr }),
      ),
    );
    expect(ran.code, ran.stderr).toBe(0);
    expect(JSON.parse(ran.stdout).name).toBe(name);
  });

  it('--help works for every command', async () => {
    for (const command of ['list', 'show', 'open', 'disable', 'reset', 'watch']) {
      const ran = await cli([command, '--help']);
      expect(ran.code).toBe(0);
      expect(ran.stdout).toContain(`Usage: statebreaker ${command}`);
    }
    const general = await cli(['--help']);
    expect(general.stdout).toMatch(/^ {2}open NAME\s+force open for the whole fleet/m);
  });
});

describe('operator actions, seen by a fleet member in another process', () => {
  it('open, disable and reset each reach the other process; no instance reports a mismatch', async () => {
    const { name, member } = await withRecord('fleet');
    const worker = new Worker({
      redis: { socket: harness.server.path },
      names: [name],
      upstream: upstream.url,
      breaker: CONFIG,
    });
    workers.push(worker);
    expect(await waitFor(() => worker.ready, 10_000)).toBe(true);
    const call = async () => {
      const before = worker.results.length;
      worker.send({ type: 'call' });
      expect(await waitFor(() => worker.results.length > before, 10_000)).toBe(true);
      return worker.results[before]?.outcome;
    };

    const opened = await cli(['open', name]);
    expect(opened.code, opened.stderr).toBe(0);
    expect(opened.stdout).toBe(
      `${JSON.stringify(name)} forced open for the whole fleet: closed -> forcedOpen (version 2)\n`,
    );
    expect(await waitFor(() => worker.state === 'forcedOpen', 10_000)).toBe(true);
    upstream.mode = 'ok';
    expect(await call()).toBe('rejected');

    const disabled = await cli(['disable', name, '--json']);
    expect(JSON.parse(disabled.stdout)).toMatchObject({
      from: 'forcedOpen',
      to: 'disabled',
      changed: true,
      version: 3,
    });
    expect(await waitFor(() => worker.state === 'disabled', 10_000)).toBe(true);
    upstream.mode = 'fail';
    expect(await call()).toBe('failed');
    expect(await call()).toBe('failed');
    expect(worker.state).toBe('disabled');

    const reset = await cli(['reset', name]);
    expect(reset.code, reset.stderr).toBe(0);
    expect(await waitFor(() => worker.state === 'closed', 10_000)).toBe(true);
    upstream.mode = 'ok';
    expect(await call()).toBe('succeeded');

    expect(worker.states.map((s) => `${s.from}->${s.to}:${s.reason}`)).toEqual([
      'closed->forcedOpen:forcedOpen',
      'forcedOpen->disabled:disabled',
      'disabled->closed:reset',
    ]);
    expect(member.breaker.state).toBe('closed');
    expect(member.storeErrors).toEqual([]);
  });

  it('watch prints one JSON line per transition, live, and exits 0 on SIGINT', async () => {
    const { name } = await withRecord('watch');
    const child = spawn(process.execPath, [BIN, 'watch', '--json', '--redis', redisUrl()], {
      env: shellEnv(),
    });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    expect(await waitFor(() => stderr.includes('watching'), 10_000)).toBe(true);
    await cli(['open', name]);
    await cli(['reset', name]);
    const mine = () =>
      lines(stdout)
        .map((line) => JSON.parse(line))
        .filter((event) => event.name === name);
    expect(await waitFor(() => mine().length === 2, 10_000)).toBe(true);
    expect(mine()).toMatchObject([
      { from: 'closed', to: 'forcedOpen', reason: 'forcedOpen', version: 2 },
      { from: 'forcedOpen', to: 'closed', reason: 'reset', version: 3 },
    ]);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it('watch NAME prints readable lines for that breaker only, and exits 0 on SIGTERM', async () => {
    const { name, member } = await withRecord('watch one');
    const other = await withRecord('watch other');
    const child = spawn(process.execPath, [BIN, 'watch', name, '--redis', redisUrl()], {
      env: shellEnv(),
    });
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    expect(await waitFor(() => stderr.includes('watching'), 10_000)).toBe(true);
    await settle(other.member.breaker, 'fail');
    await settle(member.breaker, 'fail');
    expect(await waitFor(() => stdout.includes('failMaxReached'), 10_000)).toBe(true);
    await other.member.breaker.settled();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(lines(stdout)).toHaveLength(1);
    expect(stdout).toMatch(
      new RegExp(
        `^\\S+Z {2}${name} {2}closed -> open {2}failMaxReached {2}generation 1 {2}version 2\\n$`,
      ),
    );
  });
});

describe("the fleet's recordTtl", () => {
  it('reset with --record-ttl writes an idle record that expires, as the fleet would', async () => {
    const { name, member } = await withRecord('record ttl');
    const keys = member.store.keys(name);
    const ran = await cli(['reset', name, '--record-ttl', '60000']);
    expect(ran.code, ran.stderr).toBe(0);
    const expiry = (await harness.admin.call('PEXPIRETIME', keys.snapshot)) as number;
    expect(expiry).toBeGreaterThan(0);
    const bad = await cli(['reset', name, '--record-ttl', '10']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--record-ttl must be a whole number of ms from 1000');
  });
});

describe('bad input: one line on stderr, the right exit code, nothing changed', () => {
  async function expectRefused(args: string[], code: number, reason: RegExp) {
    const before = await everything();
    const ran = await cli(args);
    expect(ran.code, ran.stderr).toBe(code);
    const [first, ...rest] = lines(ran.stderr);
    expect(first).toMatch(/^statebreaker: /);
    expect(first).toMatch(reason);
    // Usage errors are followed by the usage text; every other error is that one line.
    if (code === 2) expect(rest.join('\n')).toContain('Usage: statebreaker');
    else expect(rest).toEqual([]);
    expect(ran.stdout).toBe('');
    expect(await everything()).toEqual(before);
  }

  it('an unknown command, a missing name, an unknown option, a bad value: exit 2 with usage', async () => {
    await withRecord('usage');
    await expectRefused(['frobnicate'], 2, /unknown command "frobnicate"/);
    await expectRefused(['open'], 2, /open needs NAME/);
    await expectRefused(['show', 'a', 'b'], 2, /show takes NAME, got "b" too/);
    await expectRefused(['list', '--bogus'], 2, /unknown option --bogus$/);
    await expectRefused(['list', '--create', '{}'], 2, /--create is not an option of list/);
    await expectRefused(['list', '--timeout', 'soon'], 2, /--timeout must be a whole number/);
    await expectRefused(['list', '--redis', 'http://x'], 2, /--redis must be a redis:\/\//);
    await expectRefused(['open', '', '--json'], 2, /NAME must not be empty/);
    await expectRefused([], 2, /missing COMMAND/);
  });

  it('a breaker that does not exist: exit 1, nothing written', async () => {
    const name = harness.begin('ghost');
    for (const command of ['show', 'open', 'disable', 'reset']) {
      await expectRefused([command, name], 1, new RegExp(`no breaker named "${name}"`));
    }
  });

  it('an unreachable Redis, and one that does not answer: exit 1 with the reason', async () => {
    harness.begin('unreachable');
    const missing = `unix://${harness.server.path}.missing`;
    await expectRefused(['list', '--redis', missing], 1, /cannot reach Redis at unix:.*ENOENT/);
    const frozen = await RedisServer.start();
    try {
      frozen.pause();
      const url = `unix://${frozen.path}`;
      await expectRefused(
        ['open', 'x', '--redis', url, '--timeout', '300'],
        1,
        /Redis at unix:.* did not answer within 300 ms/,
      );
    } finally {
      await frozen.stop();
    }
  });

  it('a corrupt record: show and open exit 1 naming the key, list shows it, nothing changed', async () => {
    const { name, member } = await withRecord('corrupt');
    await member.close();
    const keys = member.store.keys(name);
    await harness.admin.set(keys.snapshot, '{"status": "act');
    await expectRefused(
      ['show', name],
      1,
      /corrupt record for breaker .* at .*:snapshot: not JSON/,
    );
    await expectRefused(['open', name], 1, /only a reset replaces a corrupt record/);
    await expectRefused(['reset', name], 1, /configuration cannot be read/);
    const listed = await cli(['list']);
    expect(listed.code).toBe(0);
    expect(lines(listed.stdout).find((row) => row.startsWith(name))).toMatch(/\scorrupt\s/);
    expect(listed.stdout).toContain(`corrupt ${name} at ${keys.snapshot}: not JSON`);
  });
});
