import { once } from 'node:events';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CircuitBreaker } from '../src/breaker.js';
import type { CliIO } from '../src/cli/command.js';
import { main } from '../src/cli/main.js';
import { escapeText } from '../src/cli/output.js';
import { RedisStore } from '../src/stores/redis/index.js';
import { FaultProxy } from './support/fault-proxy.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';

// What the `statebreaker` command writes for an operator to read and paste: `main` in this
// process with its streams captured, against a real redis-server, with breakers of the fleet
// in this process.

// As if the optional peer were not installed: `inspect` must say what to install.
vi.mock('@statelyai/inspect/server', () => {
  throw new Error("Cannot find package '@statelyai/inspect'");
});

let server: RedisServer;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  server = await RedisServer.start();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await server?.stop();
});

interface Captured {
  readonly io: CliIO;
  stdout(): string;
  stderr(): string;
  stop(): void;
}

function capture(env: Record<string, string> = {}): Captured {
  let stdout = '';
  let stderr = '';
  let stop = () => {};
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  return {
    io: {
      stdout: {
        write: (text: string) => {
          stdout += text;
          return true;
        },
      },
      stderr: {
        write: (text: string) => {
          stderr += text;
          return true;
        },
      },
      env,
      untilStopped: () => stopped,
    },
    stdout: () => stdout,
    stderr: () => stderr,
    stop,
  };
}

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `statebreaker ...args` against the test's server (unless `--redis` is given). */
async function cli(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  const withRedis =
    args.includes('--redis') || env.REDIS_URL !== undefined
      ? args
      : [...args, '--redis', `unix://${server.path}`];
  const captured = capture(env);
  const code = await main(withRedis, captured.io);
  return { code, stdout: captured.stdout(), stderr: captured.stderr() };
}

function member(name: string, options: Record<string, unknown> = {}): CircuitBreaker {
  const redis = new Redis({ path: server.path });
  const store = new RedisStore(redis);
  const breaker = new CircuitBreaker(name, { failMax: 3, ...options, store });
  cleanups.push(async () => {
    breaker.dispose();
    await store.close();
    redis.disconnect();
  });
  return breaker;
}

async function fail(breaker: CircuitBreaker, times = 1): Promise<void> {
  for (let i = 0; i < times; i++) {
    await breaker.call(() => Promise.reject(new Error('upstream 503'))).catch(() => undefined);
  }
  await breaker.settled();
}

// A terminal acts on these; a ticket hides them. None may reach the output as it is.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point.
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/;

function withoutColour(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the colour codes the CLI writes.
  return text.replace(/\u001b\[[0-9;]*m/g, '');
}

describe('text that is safe to paste into a terminal and a ticket', () => {
  const NAME = 'tenant-\u001b]0;pwned\u0007-\u0008\u0008x-\u009b31m-\u202eevil';

  it('list, show and watch escape the control characters of a breaker name', async () => {
    const breaker = member(NAME);
    await fail(breaker);
    for (const args of [['list'], ['show', NAME], ['list', '--json'], ['show', NAME, '--json']]) {
      const ran = await cli(args, { FORCE_COLOR: '1' });
      expect(ran.code, ran.stderr).toBe(0);
      expect(withoutColour(ran.stdout)).not.toMatch(CONTROL);
      if (!args.includes('--json')) expect(ran.stdout).toContain('tenant-\\u001b]0;pwned\\u0007');
    }
    const json = JSON.parse((await cli(['list', '--json'])).stdout) as { name: string }[];
    expect(json.map((entry) => entry.name)).toContain(NAME);

    const watching = capture();
    const running = main(['watch', '--redis', `unix://${server.path}`], watching.io);
    expect(await waitFor(() => watching.stderr().includes('watching'), 10_000)).toBe(true);
    await fail(breaker, 2);
    expect(await waitFor(() => watching.stdout().includes('open'), 10_000)).toBe(true);
    watching.stop();
    expect(await running).toBe(0);
    expect(watching.stdout()).toContain('tenant-\\u001b]0;pwned\\u0007-\\b\\bx-\\u009b31m');
    expect(watching.stdout()).not.toMatch(CONTROL);
    expect(watching.stderr()).not.toMatch(CONTROL);
  });

  it('open, reset and every message on stderr escape them the same way', async () => {
    const breaker = member(NAME);
    await fail(breaker);
    const opened = await cli(['open', NAME]);
    expect(opened.code, opened.stderr).toBe(0);
    expect(opened.stdout).toContain(
      '"tenant-\\u001b]0;pwned\\u0007-\\b\\bx-\\u009b31m-\\u202eevil"',
    );
    expect(opened.stdout).not.toMatch(CONTROL);
    const missing = await cli(['show', `${NAME}-gone`]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no breaker named');
    expect(missing.stderr).not.toMatch(CONTROL);
  });
});

describe('a stored reason', () => {
  it('that the statechart never gives is a corrupt record, never written to the terminal', async () => {
    const name = 'reason-tampered';
    const breaker = member(name);
    await fail(breaker);
    const redis = new Redis({ path: server.path });
    cleanups.push(() => redis.disconnect());
    const key = `circuit_breaker:{${name}}:snapshot`;
    const stored = JSON.parse((await redis.get(key)) as string);
    stored.context.reason = 'x\u001b]0;pwned\u0007';
    await redis.set(key, JSON.stringify(stored));
    for (const args of [['show', name], ['list'], ['show', name, '--json']]) {
      const ran = await cli(args);
      expect(ran.stdout + ran.stderr).not.toContain('\u001b]0;pwned');
      expect(ran.stdout + ran.stderr).toContain('context.reason is');
    }
  });
});

describe('names that look alike', () => {
  it('list shows the invisible and bidirectional characters that would hide a difference', async () => {
    const names = [
      'openai\u200b',
      'openai\ufeff',
      'open\u00adai',
      'openai\u2060',
      'openai\u200d',
      'tenant-\u061cevil',
    ];
    for (const name of names) await fail(member(name));
    for (const args of [['list'], ['list', '--json']]) {
      const ran = await cli(args);
      expect(ran.code, ran.stderr).toBe(0);
      expect(ran.stdout).not.toMatch(/[\u00ad\u061c\u200b-\u200d\u2060-\u2064\ufeff]/);
    }
    const text = (await cli(['list'])).stdout;
    for (const shown of ['openai\\u200b', 'openai\\ufeff', 'open\\u00adai', 'tenant-\\u061cevil']) {
      expect(text).toContain(shown);
    }
  });
});

describe('a Redis URL in a message', () => {
  const SECRET = 's3cret-Pa55';

  it('is never quoted with its password, from --redis or $REDIS_URL, whatever the refusal', async () => {
    const refused: [string[], Record<string, string>, number][] = [
      [['list', '--redis', `http://admin:${SECRET}@cache.internal:6379`], {}, 2],
      [['list', '--redis', `redis://:${SECRET}@cache.internal:99999`], {}, 2],
      [['list', '--redis', `redis://:pa@${SECRET}@cache internal`], {}, 2],
      [['list', '--redis', `ftp://cache.internal/?password=${SECRET}`], {}, 2],
      [['list'], { REDIS_URL: `https://admin:${SECRET}@cache.internal` }, 2],
      [['list', '--redis', `redis://admin:${SECRET}@127.0.0.1:1`, '--timeout', '500'], {}, 1],
      [['list', '--redis', `unix:///nonexistent/redis.sock?password=${SECRET}`], {}, 1],
      // A password with a comma, a quote or a space, in a URL that does not parse.
      [['list', '--redis', `redis://admin:s3,${SECRET}@cache.internal:99999`], {}, 2],
      [['list', '--redis', `redis://admin:it's-${SECRET}@cache.internal:99999`], {}, 2],
      [['list', '--redis', `redis://admin:"${SECRET}"@cache.internal:99999`], {}, 2],
      [['list', '--redis', `redis://admin:a ${SECRET}@cache.internal:99999`], {}, 2],
      [['list'], { REDIS_URL: `redis://admin:${SECRET},x@cache.internal:99999` }, 2],
      [['list', '--redis', `http://admin:s3,${SECRET}@cache.internal`], {}, 2],
    ];
    for (const [args, env, code] of refused) {
      const ran = await cli(args, env);
      expect(ran.code, ran.stderr).toBe(code);
      expect(ran.stderr).toMatch(/^statebreaker: .*(redis|Redis)/);
      expect(ran.stderr).not.toContain(SECRET);
      expect(ran.stderr).toContain('***');
    }
  });
});

describe('options as a new user tries them', () => {
  it('-v and --version print the version', async () => {
    for (const flag of ['-v', '--version']) {
      const ran = await cli([flag]);
      expect(ran.code, ran.stderr).toBe(0);
      expect(ran.stdout).toMatch(/^\d+\.\d+\.\d+\S*\n$/);
    }
    expect((await cli(['--help'])).stdout).toContain('-v, --version');
  });

  it("an unknown option or a missing value is said plainly, with the command's usage, exit 2", async () => {
    const cases: [string[], string][] = [
      [['list', '--bogus'], 'statebreaker: unknown option --bogus\n'],
      [['show', 'x', '-x'], 'statebreaker: unknown option -x\n'],
      [['list', '--timeout'], 'statebreaker: --timeout needs a value\n'],
      [['list', '--json=yes'], 'statebreaker: --json takes no value\n'],
    ];
    for (const [args, first] of cases) {
      const ran = await cli(args);
      expect(ran.code).toBe(2);
      expect(ran.stderr.startsWith(first), ran.stderr).toBe(true);
      expect(ran.stderr).not.toContain("'--'");
      expect(ran.stderr).toContain(`Usage: statebreaker ${args[0]}`);
    }
  });
});

describe('bad usage exits 2, as the help says', () => {
  it('a bad option value inside --create, before anything is read or written', async () => {
    const name = 'created-badly';
    const cases: [string, RegExp][] = [
      ['{"failMax":-1}', /--create: option failMax must be a whole number of at least 1, got -1/],
      ['{"resetTimeout":"30s"}', /--create: option resetTimeout must be a number/],
      ['{"store":{}}', /--create: option create takes the configuration options .*"store"/],
    ];
    for (const [json, reason] of cases) {
      const ran = await cli(['open', name, '--create', json]);
      expect(ran.code, ran.stderr).toBe(2);
      expect(ran.stderr.split('\n')[0]).toMatch(reason);
      expect(ran.stderr).toContain('Usage: statebreaker open NAME');
    }
    expect((await cli(['show', name])).code).toBe(1);
  });

  it('a dashboard token too short to be one, from --token or the variable, never quoted', async () => {
    for (const [args, env, who] of [
      [['dashboard', '--token', 'short-secret'], {}, '--token'],
      [['dashboard'], { STATEBREAKER_TOKEN: 'short-secret' }, '$STATEBREAKER_TOKEN'],
    ] as const) {
      const ran = await cli([...args], env);
      expect(ran.code, ran.stderr).toBe(2);
      expect(ran.stderr.split('\n')[0]).toBe(
        `statebreaker: ${who} must be at least 16 characters (a long random one, e.g. openssl rand -hex 32), got 12`,
      );
      expect(ran.stderr).toContain('Usage: statebreaker dashboard');
      expect(ran.stderr).not.toContain('short-secret');
    }
  });
});

describe('--create', () => {
  it("takes back the config that show --json and list --json print, of any fleet's options", async () => {
    const name = 'backoff-listed';
    const breaker = member(name, {
      failMax: 3,
      backoff: { multiplier: 2, max: 120_000 },
      retryAfterFloor: 500,
      failureRateThreshold: 50,
      minimumCalls: 10,
    });
    await fail(breaker, 3);
    const shown = JSON.parse((await cli(['show', name, '--json'])).stdout) as {
      config: Record<string, unknown>;
    };
    expect(shown.config).toMatchObject({ backoffMultiplier: 2, backoffMax: 120_000 });
    expect(shown.config.retryAfterFloor).toBe(500);
    const listed = JSON.parse((await cli(['list', '--json'])).stdout) as {
      name: string;
      config: Record<string, unknown>;
    }[];
    for (const [other, config] of [
      ['created-from-show', shown.config],
      ['created-from-list', listed.find((entry) => entry.name === name)?.config],
    ] as const) {
      const ran = await cli(['open', other, '--create', JSON.stringify(config), '--json']);
      expect(ran.code, ran.stderr).toBe(0);
      const result = JSON.parse(ran.stdout) as { breaker: { config: Record<string, unknown> } };
      expect(result.breaker.config).toEqual(shown.config);
    }
  });
});

describe('the dashboard without an address', () => {
  it('--host empty or only spaces is bad usage (exit 2), named in the message', async () => {
    for (const host of ['', ' ', '\t ']) {
      const ran = await cli(['dashboard', '--host', host, '--port', '1']);
      expect(ran.code, ran.stderr).toBe(2);
      expect(ran.stderr.split('\n')[0]).toBe(
        `statebreaker: --host must be an address, got ${escapeText(JSON.stringify(host))}`,
      );
    }
  });
});

describe('long-running servers', () => {
  it('the dashboard and inspect default to different ports, each said in its help', async () => {
    const defaultPort = async (command: string) => {
      const help = (await cli([command, '--help'])).stdout;
      return /--port PORT\s+(?:inspector server )?port(?: to listen on)? \(default (\d+)\)/.exec(
        help,
      )?.[1];
    };
    const dashboard = await defaultPort('dashboard');
    const inspect = await defaultPort('inspect');
    expect(dashboard).toBe('8080');
    expect(inspect).toMatch(/^\d+$/);
    expect(inspect).not.toBe(dashboard);
  });
});

describe('the dashboard on an address other than loopback', () => {
  async function freePort(): Promise<number> {
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    return port;
  }

  async function served(host: string, env: Record<string, string> = {}): Promise<string> {
    const running = capture(env);
    const args = ['dashboard', '--host', host, '--port', String(await freePort())];
    const code = main([...args, '--redis', `unix://${server.path}`], running.io);
    expect(await waitFor(() => running.stderr().includes('dashboard on'), 10_000)).toBe(true);
    running.stop();
    expect(await code).toBe(0);
    return running.stderr();
  }

  it('warns that whoever reaches the machine sees every breaker; loopback does not', async () => {
    const everywhere = await served('0.0.0.0');
    expect(everywhere).toMatch(
      /^statebreaker: warning: --host 0\.0\.0\.0 is not loopback: whoever reaches this machine on port \d+ sees every breaker's name and state;/m,
    );
    const operated = await served('0.0.0.0', {
      STATEBREAKER_TOKEN: 'a-long-enough-operator-token',
    });
    expect(operated).toContain('the token travels over plain HTTP');
    expect(await served('127.0.0.1')).not.toContain('warning');
  });
});

describe('messages', () => {
  it('name the program once: inspect without its optional peer', async () => {
    const breaker = member('inspected-without-peer');
    await fail(breaker);
    const ran = await cli(['inspect', 'inspected-without-peer', '--port', '1']);
    expect(ran.code).toBe(1);
    expect(ran.stderr).toBe(
      'statebreaker: inspect needs @statelyai/inspect (an optional peer dependency): npm install @statelyai/inspect\n',
    );
  });
});

describe('an abandoned open breaker', () => {
  it('reads "half-open due" in list and show, as on the dashboard, never "0 ms" for ever', async () => {
    const name = 'abandoned-open';
    const breaker = member(name, { failMax: 1, resetTimeout: 50 });
    await fail(breaker);
    // No instance holds it any more: nothing half-opens it until a call comes.
    breaker.dispose();
    // On the store's clock: due once its open period is past.
    expect(
      await waitFor(async () => {
        const info = JSON.parse((await cli(['show', name, '--json'])).stdout) as {
          retryAfterMs: number;
        };
        return info.retryAfterMs === 0;
      }, 10_000),
    ).toBe(true);
    const listed = await cli(['list']);
    const row = listed.stdout.split('\n').find((line) => line.startsWith(name));
    expect(row).toMatch(/\sopen\s+0\s+half-open due\s+0\s+\d+$/);
    const shown = await cli(['show', name]);
    expect(shown.stdout).toMatch(/retry after\s+half-open due \(at the next call\)/);
    expect(shown.stdout).not.toMatch(/retry after\s+0 ms/);
  });
});

describe('watch across a gap', () => {
  it('says when Redis went away and came back, then prints what changed meanwhile', async () => {
    const proxy = await FaultProxy.start(server.path);
    cleanups.push(() => proxy.close());
    const name = 'watched-across-a-gap';
    const breaker = member(name, { failMax: 2 });
    await fail(breaker);
    const watching = capture();
    const running = main(['watch', name, '--redis', `unix://${proxy.path}`], watching.io);
    expect(await waitFor(() => watching.stderr().includes('watching'), 10_000)).toBe(true);

    proxy.partition();
    proxy.cut();
    expect(
      await waitFor(() => watching.stderr().includes('lost the connection to Redis'), 10_000),
    ).toBe(true);
    await fail(breaker);
    expect(breaker.state).toBe('open');
    expect(watching.stdout()).toBe('');

    proxy.heal();
    expect(await waitFor(() => watching.stderr().includes('Redis is back after'), 10_000)).toBe(
      true,
    );
    expect(await waitFor(() => watching.stdout().includes('closed -> open'), 10_000)).toBe(true);
    watching.stop();
    expect(await running).toBe(0);
    const notes = watching.stderr().split('\n');
    expect(notes.filter((line) => line.includes('lost the connection'))).toHaveLength(1);
    expect(notes.filter((line) => line.includes('Redis is back'))).toHaveLength(1);
  });
});

describe('a rate-only breaker (failMax: Infinity)', () => {
  const RATE_ONLY = {
    failMax: Number.POSITIVE_INFINITY,
    failureRateThreshold: 50,
    minimumCalls: 4,
  };

  it('reads "Infinity" for no limit in JSON and text, and --create takes it back', async () => {
    const name = 'rate-only-listed';
    // Its record is written at its first change: a trip on the rate.
    const tripped = member(name, RATE_ONLY);
    await fail(tripped, 4);
    expect(await waitFor(() => tripped.state === 'open', 10_000)).toBe(true);
    await tripped.settled();
    const listed = JSON.parse((await cli(['list', '--json'])).stdout) as {
      name: string;
      config: Record<string, unknown>;
    }[];
    expect(listed.find((entry) => entry.name === name)?.config.failMax).toBe('Infinity');
    const shown = JSON.parse((await cli(['show', name, '--json'])).stdout) as {
      config: Record<string, unknown>;
      context: { config: Record<string, unknown> };
      snapshot: { context: { config: Record<string, unknown> } };
    };
    expect(shown.config.failMax).toBe('Infinity');
    expect(shown.context.config.failMax).toBe('Infinity');
    expect(shown.snapshot.context.config.failMax).toBe('Infinity');
    expect((await cli(['show', name])).stdout).toMatch(/configuration\s+failMax Infinity,/);

    // What --json wrote for the fleet's options is what --create takes.
    const created = 'rate-only-created';
    const { failMax, failureRateThreshold, minimumCalls } = shown.config;
    const options = JSON.stringify({ failMax, failureRateThreshold, minimumCalls });
    const opened = await cli(['open', created, '--create', options, '--json']);
    expect(opened.code, opened.stderr).toBe(0);
    const result = JSON.parse(opened.stdout) as { breaker: { config: Record<string, unknown> } };
    expect(result.breaker.config).toMatchObject({ failMax: 'Infinity', failureRateThreshold: 50 });
    const redis = new Redis({ path: server.path });
    cleanups.push(() => redis.disconnect());
    const store = new RedisStore(redis);
    cleanups.push(() => store.close());
    const { readBreaker } = await import('../src/admin/read.js');
    expect((await readBreaker(store, created)).config.failMax).toBe(Number.POSITIVE_INFINITY);

    const refused = await cli(['open', 'rate-only-null', '--create', '{"failMax":null}']);
    expect(refused.code).toBe(2);
    expect(refused.stderr.split('\n')[0]).toBe(
      'statebreaker: --create: option failMax is a whole number, or "Infinity" for no limit, got null',
    );
  });
});

describe('show of a breaker with a rate rule', () => {
  it("prints the fleet's failure and slow-call rates over its window, - below minimumCalls", async () => {
    const name = 'rated-shown';
    const config = {
      failMax: Number.POSITIVE_INFINITY,
      failureRateThreshold: 75,
      slowCallRateThreshold: 90,
      slowCallDuration: 60_000,
      minimumCalls: 4,
      window: 60_000,
    };
    const options = JSON.stringify({ ...config, failMax: 'Infinity' });
    const created = await cli(['open', name, '--create', options]);
    expect(created.code, created.stderr).toBe(0);
    expect((await cli(['reset', name])).code).toBe(0);
    const one = member(name, { ...config, windowFlush: 20 });
    const other = member(name, { ...config, windowFlush: 20 });
    await one.call(async () => 'ok');
    await fail(one);
    const rates = async () =>
      (JSON.parse((await cli(['show', name, '--json'])).stdout) as { rates: unknown }).rates;
    expect(
      await waitFor(async () => ((await rates()) as { calls?: number })?.calls === 2, 10_000),
    ).toBe(true);
    expect((await cli(['show', name])).stdout).toMatch(
      /failure rate\s+- \(2 of 4 calls: below minimumCalls\)\n/,
    );
    await other.call(async () => 'ok');
    await fail(other);
    expect(
      await waitFor(async () => ((await rates()) as { calls?: number })?.calls === 4, 10_000),
    ).toBe(true);
    expect(await rates()).toEqual({ calls: 4, minimumCalls: 4, failureRate: 50, slowCallRate: 0 });
    const shown = (await cli(['show', name])).stdout;
    expect(shown).toMatch(/failure rate\s+50\.0 % of 4 calls \(trips at 75 %\)\n/);
    expect(shown).toMatch(/slow calls\s+0\.0 % of 4 calls \(trips at 90 %\)\n/);
  });
});
