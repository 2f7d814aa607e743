import { type ChildProcess, fork } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { decodeChange } from '../../src/stores/redis-codec.js';
import type { PersistedBreakerSnapshot } from '../../src/stores/store.js';
import type { FromWorker, ToWorker, WorkerOptions, WorkerStats } from '../fixtures/fleet-worker.js';
import { waitFor } from './redis-wait.js';

const WORKER = fileURLToPath(new URL('../fixtures/fleet-worker.ts', import.meta.url));

/**
 * How the test upstream answers: 500 after a delay, 200 after a delay, 429 with a
 * `retry-after` of `retryAfterSeconds`, or not at all.
 */
export type UpstreamMode = 'fail' | 'ok' | 'limit' | 'hang';

/** An HTTP upstream in the test process that counts requests and concurrency. */
export class Upstream {
  mode: UpstreamMode = 'ok';
  delayMs = 10;
  retryAfterSeconds = 1;
  inFlight = 0;
  maxInFlight = 0;
  /** Arrival time (host ms) and the calling worker's pid, of every request. */
  readonly arrivals: { at: number; pid: number }[] = [];
  readonly #server: Server;
  url = '';

  constructor() {
    this.#server = createServer((request, response) => {
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      this.arrivals.push({ at: Date.now(), pid: Number(request.headers['x-worker']) });
      response.on('close', () => this.inFlight--);
      if (this.mode === 'hang') return;
      const status = this.mode === 'ok' ? 200 : this.mode === 'limit' ? 429 : 500;
      const headers: Record<string, string> =
        this.mode === 'limit' ? { 'retry-after': String(this.retryAfterSeconds) } : {};
      setTimeout(() => response.writeHead(status, headers).end(), this.delayMs);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

/** One worker process and what it reported. */
export class Worker {
  readonly child: ChildProcess;
  readonly states: Extract<FromWorker, { type: 'state' }>[] = [];
  readonly results: Extract<FromWorker, { type: 'result' }>[] = [];
  state = 'unknown';
  stats: WorkerStats | null = null;
  ready = false;
  exited = false;

  constructor(options: WorkerOptions) {
    this.child = fork(WORKER, [JSON.stringify(options)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('exit', () => {
      this.exited = true;
    });
    this.child.on('message', (message: FromWorker) => {
      if (message.type === 'ready') {
        this.ready = true;
        this.state = message.state;
      } else if (message.type === 'state') {
        this.states.push(message);
        this.state = message.to;
      } else if (message.type === 'stats') this.stats = message.stats;
      else this.results.push(message);
    });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  send(message: ToWorker): void {
    if (!this.exited && this.child.connected) this.child.send(message);
  }

  async refreshStats(): Promise<WorkerStats> {
    const before = this.stats;
    this.send({ type: 'stats' });
    await waitFor(() => this.stats !== before, 5_000);
    return this.stats as WorkerStats;
  }

  async exit(): Promise<void> {
    if (this.exited) return;
    this.send({ type: 'exit' });
    if (!(await waitFor(() => this.exited, 5_000))) this.child.kill('SIGKILL');
  }
}

/** A record as the change channel announced it, with the host time it arrived. */
export interface Announced {
  readonly receivedAt: number;
  readonly version: number;
  readonly snapshot: PersistedBreakerSnapshot;
  readonly state: string;
}

/** Listens to the store's change channel, as an operator would, for one breaker name. */
export async function watchChanges(socket: string, name: string) {
  const redis = new Redis({ path: socket });
  const announced: Announced[] = [];
  redis.on('message', (_channel: string, message: string) => {
    const change = decodeChange(message);
    if (change === null || change.name !== name) return;
    const value = change.record.snapshot.value;
    const state = typeof value === 'string' ? value : (Object.keys(value)[0] as string);
    announced.push({ receivedAt: Date.now(), ...change.record, state });
  });
  await redis.subscribe('circuit_breaker:changes');
  return { announced, close: () => redis.disconnect() };
}
