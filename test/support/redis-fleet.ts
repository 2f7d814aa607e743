import { type ChildProcess, fork } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Cluster, Redis } from 'ioredis';
import { decodeChange } from '../../src/stores/redis/codec.js';
import { breakerChannel, DEFAULT_PREFIX } from '../../src/stores/redis/keys.js';
import type { PersistedBreakerSnapshot } from '../../src/stores/store.js';
import type {
  FromWorker,
  RedisTarget,
  ToWorker,
  WorkerOptions,
  WorkerStats,
} from '../fixtures/fleet-worker.js';
import { waitFor } from './redis-wait.js';

const WORKER = fileURLToPath(new URL('../fixtures/fleet-worker.ts', import.meta.url));

/**
 * How the test upstream answers: 500 after a delay, 200 after a delay, 429 with a
 * `retry-after` of `retryAfterSeconds`, or not at all.
 */
export type UpstreamMode = 'fail' | 'ok' | 'limit' | 'hang';

/** One request that reached the upstream. */
export interface Arrival {
  /** Host ms. */
  readonly at: number;
  /** The calling worker's pid. */
  readonly pid: number;
  /** The breaker that admitted it. */
  readonly breaker: string;
  /** Whether that breaker was degraded (deciding alone) when it admitted it. */
  readonly degraded: boolean;
}

/** An HTTP upstream in the test process that counts requests and concurrency. */
export class Upstream {
  mode: UpstreamMode = 'ok';
  retryAfterSeconds = 1;
  /** How it answers the calls of one breaker, over `mode`. */
  readonly modeOf = new Map<string, UpstreamMode>();
  delayMs = 10;
  inFlight = 0;
  maxInFlight = 0;
  /** Requests in flight per breaker. */
  readonly inFlightOf = new Map<string, number>();
  /** Most requests in flight at once per breaker. */
  readonly maxInFlightOf = new Map<string, number>();
  /**
   * Most requests in flight at once per breaker, among those its breakers admitted through the
   * shared record (not degraded).
   */
  readonly maxSharedInFlightOf = new Map<string, number>();
  readonly arrivals: Arrival[] = [];
  readonly #sharedInFlight = new Map<string, number>();
  readonly #server: Server;
  url = '';

  constructor() {
    this.#server = createServer((request, response) => {
      const breaker = decodeURIComponent(String(request.headers['x-breaker'] ?? ''));
      const degraded = request.headers['x-degraded'] === '1';
      const add = (map: Map<string, number>, by: number) => {
        map.set(breaker, (map.get(breaker) ?? 0) + by);
        return map.get(breaker) as number;
      };
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      const inFlight = add(this.inFlightOf, 1);
      this.maxInFlightOf.set(breaker, Math.max(this.maxInFlightOf.get(breaker) ?? 0, inFlight));
      if (!degraded) {
        const shared = add(this.#sharedInFlight, 1);
        this.maxSharedInFlightOf.set(
          breaker,
          Math.max(this.maxSharedInFlightOf.get(breaker) ?? 0, shared),
        );
      }
      const pid = Number(request.headers['x-worker']);
      this.arrivals.push({ at: Date.now(), pid, breaker, degraded });
      response.on('close', () => {
        this.inFlight--;
        add(this.inFlightOf, -1);
        if (!degraded) add(this.#sharedInFlight, -1);
      });
      const mode = this.modeOf.get(breaker) ?? this.mode;
      if (mode === 'hang') return;
      const status = mode === 'ok' ? 200 : mode === 'limit' ? 429 : 500;
      const headers: Record<string, string> =
        mode === 'limit' ? { 'retry-after': String(this.retryAfterSeconds) } : {};
      setTimeout(() => response.writeHead(status, headers).end(), this.delayMs);
    });
  }

  /** Starts counting the maxima again from the requests in flight now. */
  restartMaxima(): void {
    this.maxInFlight = this.inFlight;
    this.maxInFlightOf.clear();
    for (const [breaker, n] of this.inFlightOf) this.maxInFlightOf.set(breaker, n);
    this.maxSharedInFlightOf.clear();
    for (const [breaker, n] of this.#sharedInFlight) this.maxSharedInFlightOf.set(breaker, n);
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
  readonly names: readonly string[];
  readonly states: Extract<FromWorker, { type: 'state' }>[] = [];
  readonly results: Extract<FromWorker, { type: 'result' }>[] = [];
  /** Its breakers' degraded and recovered events, in order. */
  readonly health: Extract<FromWorker, { type: 'degraded' | 'recovered' }>[] = [];
  /** The first breaker's state. */
  state = 'unknown';
  readonly #stateOf = new Map<string, string>();
  stats: WorkerStats | null = null;
  ready = false;
  exited = false;

  constructor(options: WorkerOptions) {
    this.names = options.names;
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
        for (const [name, state] of Object.entries(message.states)) {
          if (!this.#stateOf.has(name)) this.#stateOf.set(name, state);
        }
      } else if (message.type === 'state') {
        this.states.push(message);
        this.#stateOf.set(message.name, message.to);
        if (message.name === this.names[0]) this.state = message.to;
      } else if (message.type === 'stats') this.stats = message.stats;
      else if (message.type === 'result') this.results.push(message);
      else this.health.push(message);
    });
  }

  /** The state of breaker `name` as last reported. */
  stateOf(name: string): string {
    return this.#stateOf.get(name) ?? 'unknown';
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

/**
 * Listens to the change messages of the breakers `names`, as an operator would: on the store's
 * channel (classic pub/sub, standalone Redis), or on each breaker's own channel (sharded
 * pub/sub, a Cluster's default). `announced` holds every name's records; `of(name)` one's.
 */
export async function watchChanges(target: RedisTarget, names: readonly string[]) {
  const announced: (Announced & { readonly name: string })[] = [];
  const hear = (_channel: string, message: string) => {
    const change = decodeChange(message);
    if (change === null || !names.includes(change.name)) return;
    const value = change.record.snapshot.value;
    const state = typeof value === 'string' ? value : (Object.keys(value)[0] as string);
    announced.push({ receivedAt: Date.now(), name: change.name, ...change.record, state });
  };
  let redis: Redis | Cluster;
  if ('socket' in target) {
    redis = new Redis({ path: target.socket });
    redis.on('message', hear);
    await redis.subscribe(`${DEFAULT_PREFIX}changes`);
  } else {
    redis = new Cluster([...target.cluster], { shardedSubscribers: true });
    redis.on('smessage', hear);
    for (const name of names) await redis.ssubscribe(breakerChannel(DEFAULT_PREFIX, name));
  }
  return {
    announced,
    of: (name: string) => announced.filter((a) => a.name === name),
    close: () => redis.disconnect(),
  };
}
