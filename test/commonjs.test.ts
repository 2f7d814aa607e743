import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// A CommonJS consumer of the built package, as npm would install it: the package's own
// package.json `exports` decide what `require` finds, not the vitest aliases the other tests use.

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));

// Bounds a hang of the build or of the consumer; it does not measure speed.
const BUILD_BOUND_MS = 120_000;

const CONSUMER = `'use strict';
const { CircuitBreaker, CircuitBreakerError } = require('statebreaker');
const { RedisStore } = require('statebreaker/redis');
const { getBreakerPaths } = require('statebreaker/testing');
const breaker = new CircuitBreaker('commonjs');
breaker.call(async () => 42).then((value) => {
  breaker.dispose();
  console.log(JSON.stringify({
    value,
    CircuitBreaker: typeof CircuitBreaker,
    CircuitBreakerError: typeof CircuitBreakerError,
    RedisStore: typeof RedisStore,
    getBreakerPaths: typeof getBreakerPaths,
  }));
});
`;

// The dashboard's page files are not TypeScript: the build copies them beside its module.
const DASHBOARD_CONSUMER = `import { MemoryStore } from 'statebreaker';
import { startDashboard } from 'statebreaker/dashboard';
const dashboard = await startDashboard({ store: new MemoryStore(), port: 0 });
const get = async (path) => {
  const response = await fetch(new URL(path, dashboard.url));
  const text = await response.text();
  return { status: response.status, type: response.headers.get('content-type'), text };
};
const page = await get('./');
const script = await get('assets/dashboard.js');
const style = await get('assets/dashboard.css');
await dashboard.close();
console.log(JSON.stringify({
  page: [page.status, page.type, page.text.includes('data-state="halfOpen.probing"')],
  script: [script.status, script.type, script.text.includes('EventSource')],
  style: [style.status, style.type, style.text.includes('.tile')],
}));
`;

let dir = '';
let consumer = '';
let dashboardConsumer = '';

beforeAll(async () => {
  // dist/ is what the published package holds: build it once for this file.
  await run('npm', ['run', 'build'], { cwd: root, timeout: BUILD_BOUND_MS });
  dir = mkdtempSync(join(tmpdir(), 'statebreaker-cjs-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules', 'statebreaker'), 'dir');
  consumer = join(dir, 'consumer.cjs');
  writeFileSync(consumer, CONSUMER);
  dashboardConsumer = join(dir, 'dashboard.mjs');
  writeFileSync(dashboardConsumer, DASHBOARD_CONSUMER);
}, BUILD_BOUND_MS);

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

/** Runs the consumer with `node` and the given flags; resolves with its output or its failure. */
async function runConsumer(
  flags: string[],
  file = consumer,
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(process.execPath, [...flags, file], { cwd: dir, timeout: 30_000 });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    return { stdout, stderr: stderr === '' ? String(error) : stderr };
  }
}

describe('a CommonJS consumer', () => {
  // require(esm) is on by default from Node 20.19 (and 22.12).
  const requireModule = (process.features as { require_module?: boolean }).require_module === true;

  it.runIf(requireModule)(
    'requires statebreaker, statebreaker/redis and statebreaker/testing, and calls through a breaker',
    async () => {
      const { stdout, stderr } = await runConsumer([]);
      expect(stdout, stderr).not.toBe('');
      expect(JSON.parse(stdout)).toEqual({
        value: 42,
        CircuitBreaker: 'function',
        CircuitBreakerError: 'function',
        RedisStore: 'function',
        getBreakerPaths: 'function',
      });
    },
  );

  it('gets the error that names the cause on a Node without require(esm)', async () => {
    // --no-experimental-require-module makes this Node behave as Node before 20.19: the package
    // is found (it is exported to require too), and the error says it is an ES module.
    const flags = requireModule ? ['--no-experimental-require-module'] : [];
    const { stdout, stderr } = await runConsumer(flags);
    expect(stdout).toBe('');
    expect(stderr).toContain('ERR_REQUIRE_ESM');
    expect(stderr).not.toContain('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });
});

describe('the built package', () => {
  it('serves the dashboard page, script and style from dist', async () => {
    const { stdout, stderr } = await runConsumer([], dashboardConsumer);
    expect(stdout, stderr).not.toBe('');
    expect(JSON.parse(stdout)).toEqual({
      page: [200, 'text/html; charset=utf-8', true],
      script: [200, 'text/javascript; charset=utf-8', true],
      style: [200, 'text/css; charset=utf-8', true],
    });
  });
});
