import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CircuitBreaker, CircuitState } from '../src/index.js';
import { RedisStore } from '../src/stores/redis.js';
import { BUILD_BOUND_MS, buildPackage, PACKAGE_ROOT } from './support/built-package.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';

// `statebreaker inspect NAME` as an operator runs it: the built bin in its own process, the
// inspector server it starts, and a breaker of the fleet in this process driving a whole cycle.

const BIN = join(PACKAGE_ROOT, 'bin', 'statebreaker.js');
const CONFIG = { failMax: 2, resetTimeout: 300 };

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

function run(args: string[]): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [BIN, ...args, '--redis', `unix://${server.path}`]);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk;
  });
  cleanups.push(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return { child, stderr: () => stderr };
}

function fleetMember(): CircuitBreaker {
  const redis = new Redis({ path: server.path });
  const breaker = new CircuitBreaker('inspected-by-cli', {
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
