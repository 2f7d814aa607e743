import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD_BOUND_MS, buildPackage, PACKAGE_ROOT } from './support/built-package.js';

// A CommonJS consumer of the built package, as npm would install it: the package's own
// package.json `exports` decide what `require` finds, not the vitest aliases the other tests use.

const run = promisify(execFile);
const root = PACKAGE_ROOT;

const CONSUMER = `'use strict';
const { CircuitBreaker, CircuitBreakerError } = require('statebreaker');
const { RedisStore } = require('statebreaker/redis');
const { getBreakerPaths } = require('statebreaker/testing');
const { llmClassify } = require('statebreaker/llm');
const { listBreakers } = require('statebreaker/admin');
const { prometheusMetrics } = require('statebreaker/metrics');
const breaker = new CircuitBreaker('commonjs');
// A registry with prom-client's shape and no prom-client: the metrics need none of its code.
const registered = new Map();
const exporter = prometheusMetrics({
  registry: {
    registerMetric: (metric) => registered.set(metric.name, metric),
    removeSingleMetric: (name) => registered.delete(name),
    getSingleMetric: (name) => registered.get(name),
  },
});
breaker.call(async () => 42).then(async (value) => {
  const calls = await registered.get('statebreaker_calls_total').get();
  exporter.stop();
  breaker.dispose();
  console.log(JSON.stringify({
    value,
    CircuitBreaker: typeof CircuitBreaker,
    CircuitBreakerError: typeof CircuitBreakerError,
    RedisStore: typeof RedisStore,
    getBreakerPaths: typeof getBreakerPaths,
    llmClassify: llmClassify({ status: 401 }),
    listBreakers: typeof listBreakers,
    successfulCalls: calls.values.find((v) => v.labels.kind === 'successful').value,
    metricsLeft: registered.size,
  }));
});
`;

let dir = '';
let consumer = '';

beforeAll(async () => {
  // dist/ is what the published package holds.
  await buildPackage();
  dir = mkdtempSync(join(tmpdir(), 'statebreaker-cjs-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules', 'statebreaker'), 'dir');
  consumer = join(dir, 'consumer.cjs');
  writeFileSync(consumer, CONSUMER);
}, BUILD_BOUND_MS);

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

/** Runs the consumer with `node` and the given flags; resolves with its output or its failure. */
async function runConsumer(flags: string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(process.execPath, [...flags, consumer], { cwd: dir, timeout: 30_000 });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    return { stdout, stderr: stderr === '' ? String(error) : stderr };
  }
}

describe('a CommonJS consumer', () => {
  // require(esm) is on by default from Node 20.19 (and 22.12).
  const requireModule = (process.features as { require_module?: boolean }).require_module === true;

  it.runIf(requireModule)(
    'requires statebreaker and its entry points (redis, testing, llm, admin, metrics), and calls through a breaker',
    async () => {
      const { stdout, stderr } = await runConsumer([]);
      expect(stdout, stderr).not.toBe('');
      expect(JSON.parse(stdout)).toEqual({
        value: 42,
        CircuitBreaker: 'function',
        CircuitBreakerError: 'function',
        RedisStore: 'function',
        getBreakerPaths: 'function',
        llmClassify: 'ignored',
        listBreakers: 'function',
        // The metrics entry follows the breakers the main entry made: one module, not two.
        successfulCalls: 1,
        metricsLeft: 0,
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
