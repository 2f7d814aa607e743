import { type ChildProcess, fork } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type {
  FromStormWorker,
  StormReport,
  StormWorkerOptions,
  ToStormWorker,
} from '../fixtures/storm-worker.js';
import { waitFor } from './redis-wait.js';

const WORKER = fileURLToPath(new URL('../fixtures/storm-worker.ts', import.meta.url));

/** One request as the upstream saw it. Sequence numbers order arrivals and ends exactly. */
export interface UpstreamCall {
  readonly pid: number;
  /** The caller's breaker state when the call started: `halfOpen` means a probe. */
  readonly state: string;
  /** The caller's generation (of its last state change) when the call started. */
  readonly generation: number;
  /** Whether the upstream was healthy when the request arrived. */
  readonly healthy: boolean;
  /** The status it answered (200 healthy, 500 failing), `0` while in flight. */
  status: number;
  /** The upstream's clock (see `StormUpstream`'s `now`) at arrival. */
  readonly at: number;
  readonly startSeq: number;
  /** `Infinity` while in flight. */
  endSeq: number;
}

/** What the upstream saw during one half-open round (a generation that sent probes). */
export interface HalfOpenRound {
  readonly generation: number;
  /** Probes of this generation that reached the upstream. */
  readonly probes: number;
  /** The most probes (of any generation) in flight at once between this round's first probe
   * arriving and its last probe answered. */
  readonly maxProbesInFlight: number;
  /**
   * The most calls of any kind in flight at once over that same span, counting only calls that
   * arrived after the round's first probe and were not admitted while closed under an earlier
   * generation: such a call (still running when the circuit half-opened, or admitted by a process
   * that had not heard of the trip yet, which a loaded machine may delay past `resetTimeout`) was
   * never the breaker's to stop, since a closed breaker admits without asking Redis. It shows in
   * `others` and `unaware`.
   */
  readonly maxCallsInFlight: number;
  /** Calls over that span admitted while closed under an earlier generation (see above). */
  readonly unaware: number;
  /** Calls in flight over that span that were not this round's probes, as
   * `pid:state@generation` → count: callers that disagreed with the round. */
  readonly others: Readonly<Record<string, number>>;
  /** Whether every probe of the round failed (answered 500): a round of the outage. */
  readonly failed: boolean;
}

const MAX_LOGGED_CALLS = 1_000_000;

/**
 * An HTTP upstream on 127.0.0.1 shared by the fleet: healthy answers 200, otherwise 500 (the
 * workers throw), both after `delayMs`. It logs every request with how its caller admitted
 * it, so that probes in flight are counted here, at the upstream, not by the breakers.
 */
export class StormUpstream {
  healthy = true;
  delayMs = 20;
  inFlight = 0;
  readonly calls: UpstreamCall[] = [];
  /** Requests not logged because the log was full (a bound, not expected to be reached). */
  dropped = 0;
  /** Requests answered 200, by caller pid (logged or not). */
  readonly healthyAnswers = new Map<number, number>();
  url = '';
  readonly #server: Server;
  readonly #now: () => number;
  #seq = 0;

  /** `now` stamps arrivals (e.g. Redis server time through a store's clock). */
  constructor(now: () => number = Date.now) {
    this.#now = now;
    this.#server = createServer((request, response) => {
      const header = (name: string) => String(request.headers[name] ?? '');
      this.inFlight++;
      const call: UpstreamCall = {
        pid: Number(header('x-worker')),
        state: header('x-state'),
        generation: Number(header('x-generation')),
        healthy: this.healthy,
        status: 0,
        at: this.#now(),
        startSeq: ++this.#seq,
        endSeq: Number.POSITIVE_INFINITY,
      };
      if (this.calls.length < MAX_LOGGED_CALLS) this.calls.push(call);
      else this.dropped++;
      response.on('close', () => {
        this.inFlight--;
        call.endSeq = ++this.#seq;
      });
      setTimeout(() => {
        call.status = this.healthy ? 200 : 500;
        if (call.status === 200) {
          this.healthyAnswers.set(call.pid, (this.healthyAnswers.get(call.pid) ?? 0) + 1);
        }
        response.writeHead(call.status).end();
      }, this.delayMs);
    });
  }

  /** Requests answered 200 to the caller `pid` so far. */
  healthyAnswersTo(pid: number): number {
    return this.healthyAnswers.get(pid) ?? 0;
  }

  /** The last sequence number handed out (arrivals and answers). */
  get seq(): number {
    return this.#seq;
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  /** Every half-open round the upstream saw since call number `from` of the log. */
  halfOpenRounds(from = 0): HalfOpenRound[] {
    const calls = this.calls.slice(from);
    const probes = calls.filter((c) => c.state === 'halfOpen');
    const generations = [...new Set(probes.map((c) => c.generation))].sort((a, b) => a - b);
    return generations.map((generation) => {
      const own = probes.filter((c) => c.generation === generation);
      const start = Math.min(...own.map((c) => c.startSeq));
      const end = Math.max(...own.map((c) => c.endSeq));
      // Admitted while closed before this round's trip (the generation before it is open).
      const unaware = (c: UpstreamCall) => c.state === 'closed' && c.generation < generation;
      const others: Record<string, number> = {};
      let unawareCalls = 0;
      for (const c of calls) {
        if (c.endSeq < start || c.startSeq > end) continue;
        if (c.state === 'halfOpen' && c.generation === generation) continue;
        const key = `${c.pid}:${c.state}@${c.generation}`;
        others[key] = (others[key] ?? 0) + 1;
        if (unaware(c)) unawareCalls++;
      }
      return {
        generation,
        probes: own.length,
        others,
        maxProbesInFlight: maxConcurrent(probes, start, end),
        maxCallsInFlight: maxConcurrent(
          calls.filter((c) => c.startSeq >= start && !unaware(c)),
          start,
          end,
        ),
        unaware: unawareCalls,
        failed: own.every((c) => c.status === 500),
      };
    });
  }
}

/** The most of `calls` in flight at once over the sequence span [start, end]. */
function maxConcurrent(calls: readonly UpstreamCall[], start: number, end: number): number {
  const events: [number, number][] = [];
  for (const c of calls) {
    if (c.endSeq < start || c.startSeq > end) continue;
    events.push([Math.max(c.startSeq, start), 1], [c.endSeq, -1]);
  }
  // Sequence numbers are unique, except a clipped start at `start`: starts sort first there.
  events.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  let now = 0;
  let max = 0;
  for (const [, delta] of events) {
    now += delta;
    max = Math.max(max, now);
  }
  return max;
}

type StateMessage = Extract<FromStormWorker, { type: 'state' }>;
type FirstRejection = Extract<FromStormWorker, { type: 'firstRejection' }>;

/** One storm worker process and what it reported. */
export class StormWorker {
  readonly child: ChildProcess;
  readonly states: StateMessage[] = [];
  readonly firstRejections: FirstRejection[] = [];
  state = 'unknown';
  ready = false;
  exited = false;
  report: StormReport | null = null;
  #stopped = 0;

  constructor(options: StormWorkerOptions, execArgv: readonly string[] = []) {
    this.child = fork(WORKER, [JSON.stringify(options)], {
      execArgv: ['--import', 'tsx', ...execArgv],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('exit', () => {
      this.exited = true;
    });
    this.child.on('message', (message: FromStormWorker) => {
      switch (message.type) {
        case 'ready':
          this.ready = true;
          this.state = message.state;
          break;
        case 'state':
          this.states.push(message);
          this.state = message.to;
          break;
        case 'firstRejection':
          this.firstRejections.push(message);
          break;
        case 'stopped':
          this.#stopped++;
          break;
        case 'report':
          this.report = message.report;
          break;
      }
    });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  send(message: ToStormWorker): void {
    if (!this.exited && this.child.connected) this.child.send(message);
  }

  start(loops: number, rejectedPauseMs: number): void {
    this.send({ type: 'start', loops, rejectedPauseMs });
  }

  /** Stops the callers; resolves whether every call in flight settled within the bound. */
  async stop(boundMs = 10_000): Promise<boolean> {
    const before = this.#stopped;
    this.send({ type: 'stop' });
    return waitFor(() => this.#stopped > before, boundMs);
  }

  /** Asks for a fresh report; `null` when none came within the bound. */
  async fetchReport(boundMs = 10_000): Promise<StormReport | null> {
    this.report = null;
    this.send({ type: 'report' });
    await waitFor(() => this.report !== null, boundMs);
    return this.report;
  }

  async exit(): Promise<void> {
    if (this.exited) return;
    this.send({ type: 'exit' });
    if (!(await waitFor(() => this.exited, 5_000))) this.child.kill('SIGKILL');
  }
}

/** The key holding a breaker's top-level state, for a name with no `%`, `{` or `}`. */
export function stateKey(name: string, prefix = 'circuit_breaker:'): string {
  if (/[%{}]/.test(name)) throw new Error(`stateKey: "${name}" would be percent-encoded`);
  return `${prefix}{${name}}:state`;
}
