// The fleet, end to end: a fake upstream, then two processes running worker.ts that share one
// breaker through Redis. A calls the upstream while it is down and trips the breaker; B, which
// has not called it yet, is rejected at once; after resetTimeout a single probe closes the
// circuit for both; then both get SIGTERM and must exit by themselves.
//
//   REDIS_URL=redis://127.0.0.1:6379 npx tsx main.ts
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { extname } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startFakeUpstream } from './upstream.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
// Bounds on a run that goes wrong, so that it fails instead of hanging; not expected durations.
const RUN_BOUND_MS = 40_000;
const EXIT_BOUND_MS = 10_000;
// worker.ts beside this file (worker.js once compiled), run by this Node with its own flags.
const WORKER = fileURLToPath(
  new URL(`./worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url),
);
const say = (line: string) => console.log(`[fleet] ${line}`);

/** Why no Redis answers at `url`, or `undefined` when one does. */
async function redisProblem(url: string): Promise<string | undefined> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 2_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // The connection's own error (ECONNREFUSED, ENOENT) says more than the rejection's.
  let cause: Error | undefined;
  client.on('error', (error: Error) => {
    cause ??= error;
  });
  try {
    await client.connect();
    await client.ping();
    return undefined;
  } catch (error) {
    return (cause ?? (error instanceof Error ? error : new Error(String(error)))).message;
  } finally {
    client.disconnect();
  }
}

/** A worker process: its output lines so far, and a wait for a line that matches. */
class Worker {
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #child: ChildProcess;
  readonly #waits: { pattern: RegExp; resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(
    readonly name: string,
    env: Record<string, string>,
  ) {
    this.#child = spawn(process.execPath, [...process.execArgv, WORKER], {
      env: { ...process.env, ...env, WORKER: name },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    createInterface({ input: this.#child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      console.log(line);
      this.lines.push(line);
      for (const wait of this.#waits.filter((w) => w.pattern.test(line))) {
        this.#waits.splice(this.#waits.indexOf(wait), 1);
        wait.resolve();
      }
    });
    this.exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        for (const wait of this.#waits.splice(0)) {
          wait.reject(
            new Error(`${name} exited (${signal ?? code}) before printing ${wait.pattern}`),
          );
        }
        resolve({ code, signal });
      });
    });
  }

  /** Resolves once the worker has printed a line that matches `pattern`. */
  printed(pattern: RegExp): Promise<void> {
    if (this.lines.some((line) => pattern.test(line))) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waits.push({ pattern, resolve, reject }));
  }

  signal(signal: NodeJS.Signals): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill(signal);
  }
}

/** Whether the worker exits by itself after SIGTERM (killed after {@link EXIT_BOUND_MS} if not). */
async function terminate(worker: Worker): Promise<boolean> {
  worker.signal('SIGTERM');
  const bound = setTimeout(() => worker.signal('SIGKILL'), EXIT_BOUND_MS);
  const { code, signal } = await worker.exited;
  clearTimeout(bound);
  const clean = code === 0 && signal === null;
  say(
    clean
      ? `${worker.name} exited by itself after SIGTERM, exit code 0`
      : `${worker.name} did not exit cleanly after SIGTERM: exit code ${code}, signal ${signal}`,
  );
  return clean;
}

async function run(): Promise<boolean> {
  const problem = await redisProblem(REDIS_URL);
  if (problem !== undefined) {
    console.error(
      `No Redis answers at ${REDIS_URL} (${problem}).\n` +
        'Set REDIS_URL to a Redis of yours (redis://host:port, or the path of a unix socket), ' +
        'or run `npm run example:fleet` in the statebreaker repository, which starts a ' +
        'redis-server of its own.',
    );
    return false;
  }
  // The upstream is down for its first 3 requests: as many failures as failMax in worker.ts.
  const upstream = await startFakeUpstream(3);
  // A breaker name of this run's own, so that a run finds no state left by an earlier one.
  const env = {
    REDIS_URL,
    UPSTREAM_URL: upstream.url,
    BREAKER_NAME: `fleet-example-${randomUUID().slice(0, 8)}`,
  };
  say(`Redis at ${REDIS_URL}; the upstream at ${upstream.url} is down for its first 3 requests`);
  const workers: Worker[] = [];
  let bound: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    bound = setTimeout(
      () => reject(new Error(`the run did not finish within ${RUN_BOUND_MS} ms`)),
      RUN_BOUND_MS,
    );
  });
  let ok = false;
  try {
    await Promise.race([timedOut, scenario(env, workers)]);
    ok = true;
  } catch (error) {
    say(`FAILED: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    clearTimeout(bound);
    const exits = await Promise.all(workers.map(terminate));
    ok &&= exits.every(Boolean);
    await upstream.close();
  }
  const { failed, ok: answered } = upstream.answered;
  say(`the upstream answered ${failed} requests with 503 and ${answered} with 200`);
  return ok;
}

async function scenario(env: Record<string, string>, workers: Worker[]): Promise<void> {
  // B first, and ready (following the shared record) before A makes its first call.
  const b = new Worker('B', { ...env, FIRST_CALL: 'when-open' });
  workers.push(b);
  await b.printed(/ready/);
  const a = new Worker('A', env);
  workers.push(a);
  await a.printed(/circuit closed → open/);
  await b.printed(/rejected at once/);
  say('B was rejected without calling the upstream: A tripped the circuit for the fleet');
  await Promise.all([a.printed(/→ closed/), b.printed(/→ closed/)]);
  say('one probe closed the circuit for both; sending SIGTERM to both');
}

process.exitCode = (await run()) ? 0 : 1;
