import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CircuitBreaker, CircuitState } from '../src/index.js';
import { RedisStore } from '../src/stores/redis/index.js';
import { BUILD_BOUND_MS, buildPackage, PACKAGE_ROOT } from './support/built-package.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';

// The long-running commands as an operator runs them: the built bin in its own process, the
// server it starts (the Stately inspector's, the dashboard), and a breaker of the fleet in this
// process that drives a whole cycle or obeys an operator's action.

const BIN = join(PACKAGE_ROOT, 'bin', 'statebreaker.js');
// A policy in the stored configuration: the inspector must follow it under the same options.
const CONFIG = { failMax: 2, resetTimeout: 300, backoff: { multiplier: 2, max: 10_000 } };

let server: RedisServer;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  server = await RedisServer.start();
  await buildPackage();
}, BUILD_BOUND_MS);

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

afterAll(async () => {
  await server?.stop();
});

async function freePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  probe.close();
  return port;
}

function run(
  args: string[],
  env: Record<string, string> = {},
): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [BIN, ...args, '--redis', `unix://${server.path}`], {
    env: { ...process.env, ...env },
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk;
  });
  cleanups.push(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { child, stderr: () => stderr };
}

function fleetMember(name = 'inspected-by-cli'): CircuitBreaker {
  const redis = new Redis({ path: server.path });
  const breaker = new CircuitBreaker(name, {
    ...CONFIG,
    store: new RedisStore(redis),
  });
  cleanups.push(async () => {
    breaker.dispose();
    await redis.quit();
  });
  return breaker;
}

const failing = async (): Promise<never> => {
  throw new Error('upstream 503');
};

interface Received {
  type: string;
  sessionId?: string;
  name?: string;
  snapshot?: { value?: unknown };
}

describe('statebreaker inspect', () => {
  it("streams the fleet's breaker as one actor through a whole trip, probe and close", async () => {
    const member = fleetMember();
    // The record must exist: the inspector follows it under its stored configuration.
    await expect(member.call(async () => 'ok')).resolves.toBe('ok');
    await expect(member.call(failing)).rejects.toThrow('503');
    await member.settled();

    const port = await freePort();
    const inspect = run(['inspect', 'inspected-by-cli', '--port', String(port)]);
    expect(await waitFor(() => inspect.stderr().includes('inspecting'), 15_000)).toBe(true);
    const socket = new WebSocket(`ws://127.0.0.1:${port}`);
    cleanups.push(() => socket.terminate());
    const received: Received[] = [];
    socket.on('message', (data) => received.push(JSON.parse(String(data)) as Received));
    await once(socket, 'open');

    await expect(member.call(failing)).rejects.toThrow('503');
    expect(await waitFor(() => member.state === CircuitState.HALF_OPEN, 10_000)).toBe(true);
    await member.call(async () => 'ok');
    await member.call(async () => 'ok');
    expect(member.state).toBe(CircuitState.CLOSED);
    await member.settled();

    const values = () =>
      received.flatMap((e) => (e.type === '@xstate.snapshot' ? [e.snapshot?.value] : []));
    expect(
      await waitFor(() => values().includes('open') && values().at(-1) === 'closed', 10_000),
      JSON.stringify(values()),
    ).toBe(true);
    expect(values()).toContainEqual({ halfOpen: 'waiting' });
    const actors = received.filter((e) => e.type === '@xstate.actor');
    expect(actors).toHaveLength(1);
    expect(actors[0]?.name).toBe('inspected-by-cli');
    expect(new Set(received.map((e) => e.sessionId))).toEqual(new Set([actors[0]?.sessionId]));
    inspect.child.kill('SIGINT');
    const [code] = await once(inspect.child, 'exit');
    expect(code).toBe(0);
  });

  it('exits 1 with one line when the breaker has no record, 2 on a bad port', async () => {
    const missing = run(['inspect', 'nobody-made-me', '--port', String(await freePort())]);
    const [missingCode] = await once(missing.child, 'exit');
    expect(missingCode).toBe(1);
    expect(missing.stderr().trim().split('\n')).toHaveLength(1);
    expect(missing.stderr()).toContain('nobody-made-me');

    const bad = run(['inspect', 'inspected-by-cli', '--port', '70000']);
    const [badCode] = await once(bad.child, 'exit');
    expect(badCode).toBe(2);
    expect(bad.stderr()).toContain('--port must be a TCP port');
  });
});

describe('statebreaker dashboard', () => {
  const TOKEN = 'a-long-random-operator-token';

  async function served(args: string[], env: Record<string, string> = {}) {
    const port = await freePort();
    const dashboard = run(['dashboard', '--port', String(port), ...args], env);
    expect(await waitFor(() => dashboard.stderr().includes('dashboard on'), 15_000)).toBe(true);
    const url = `http://127.0.0.1:${port}/`;
    const forceOpen = (name: string, token: string) =>
      fetch(`${url}api/actions/forceOpen`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${token}`,
          'Content-Type': 'application/json',
          Origin: `http://127.0.0.1:${port}`,
          'Sec-Fetch-Site': 'same-origin',
        },
        body: JSON.stringify({ name }),
      });
    return { ...dashboard, url, forceOpen };
  }

  it('serves the page and the breakers, and with the token forces open a running member', async () => {
    const member = fleetMember('dashboard-cli');
    await expect(member.call(failing)).rejects.toThrow('503');
    await member.settled();
    const dashboard = await served([], { STATEBREAKER_TOKEN: TOKEN });
    expect(dashboard.stderr()).toContain('operator actions need the token');

    const page = await fetch(dashboard.url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
    const listed = (await (await fetch(`${dashboard.url}api/breakers`)).json()) as unknown;
    expect(JSON.stringify(listed)).toContain('dashboard-cli');

    expect((await dashboard.forceOpen('dashboard-cli', 'a-guess')).status).toBe(401);
    expect(member.state).toBe(CircuitState.CLOSED);
    expect((await dashboard.forceOpen('dashboard-cli', TOKEN)).status).toBe(200);
    expect(await waitFor(() => member.state === CircuitState.FORCED_OPEN, 10_000)).toBe(true);
    await expect(member.call(async () => 'ok')).rejects.toThrow(/open/i);

    dashboard.child.kill('SIGINT');
    const [code] = await once(dashboard.child, 'exit');
    expect(code).toBe(0);
  });

  it('is read-only without a token (an empty variable is none), and refuses bad options', async () => {
    const member = fleetMember('dashboard-read-only');
    await expect(member.call(failing)).rejects.toThrow('503');
    await member.settled();
    const dashboard = await served([], { STATEBREAKER_TOKEN: '' });
    expect(dashboard.stderr()).toContain('read-only');
    expect((await dashboard.forceOpen('dashboard-read-only', TOKEN)).status).toBe(403);
    expect(member.state).toBe(CircuitState.CLOSED);
    dashboard.child.kill('SIGTERM');
    expect((await once(dashboard.child, 'exit'))[0]).toBe(0);

    const bad = run(['dashboard', '--port', 'eighty']);
    expect((await once(bad.child, 'exit'))[0]).toBe(2);
    expect(bad.stderr()).toContain('--port must be a TCP port');
  });
});
