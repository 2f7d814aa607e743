/**
 * One size of `bench/followers.ts`: `followers` RedisStores spread over `fleet-child.ts`
 * processes, all following the same breakers, and one writer (a RedisStore in this process)
 * that trips and closes them; with what each phase reads of Redis and of the processes.
 */
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { CircuitBreaker } from 'statebreaker';
import { RedisStore, type RedisStoreOptions } from 'statebreaker/redis';
import { breakerChannel, DEFAULT_PREFIX } from '../src/stores/redis/keys.js';
import { changeKey, type HeardAt, hostNow } from './fleet-child.js';
import { Child, commandCounts, delta, info, must, sleep, sum } from './fleet-support.js';
import { median } from './harness.js';

/** No timed transition during a run: every change is the writer's. */
const BREAKER = { failMax: 1, resetTimeout: 600_000 };
const CLASSIC_CHANNEL = `${DEFAULT_PREFIX}changes`;

const down = async (): Promise<never> => {
  throw new Error('upstream down');
};
const sleepUntil = (at: number) => sleep(Math.max(0, at - performance.now()));

/**
 * Default store options but the timeout: hundreds of stores on a few shared cores wait for CPU
 * longer than the default 500 ms at times, and a store that times out decides alone and then
 * reads its records again, which is not what is measured here.
 */
export const STORE_TIMEOUT_MS = 5_000;

function storeOptions(options: FleetOptions): RedisStoreOptions {
  return { pubsub: options.pubsub, timeout: STORE_TIMEOUT_MS };
}

/** What Redis counted up to a moment. */
interface RedisCounters {
  /** used_cpu_sys + used_cpu_user, in µs. */
  readonly cpuMicros: number;
  readonly netOutput: number;
}

async function redisCounters(admin: Redis): Promise<RedisCounters> {
  const [cpu, stats] = await Promise.all([info(admin, 'cpu'), info(admin, 'stats')]);
  return {
    cpuMicros: ((cpu.get('used_cpu_sys') ?? 0) + (cpu.get('used_cpu_user') ?? 0)) * 1e6,
    netOutput: stats.get('total_net_output_bytes') ?? 0,
  };
}

/** What a window cost: Redis CPU, bytes Redis sent, the followers' processes' CPU. */
export interface WindowCost {
  readonly ms: number;
  readonly redisCpuMicros: number;
  readonly netOutput: number;
  readonly followerCpuMicros: number;
}

/**
 * Delays to each follower's stateChange, in ms. A write lands between the writer sending it and
 * hearing it confirmed: from the send is an upper bound of the delay from the landing, from the
 * confirmation a lower bound (negative when a follower heard first).
 */
export interface Propagation {
  /** From the confirmation, on each store's clock (Redis server time, as it estimates it). */
  readonly store: number[];
  /** From the confirmation, on this machine's clock, which every process shares. */
  readonly host: number[];
  /** From the send, on this machine's clock. */
  readonly sent: number[];
  /** Deliveries expected (changes × followers) that no follower reported. */
  readonly missing: number;
  /** Per change made at once: its first write → the last follower hearing it, host clock. */
  readonly spread: number[];
}

export interface BurstResult {
  readonly cost: WindowCost;
  readonly changes: number;
  readonly propagation: Propagation;
}

/** Output buffers of the subscribers (CLIENT LIST omem), the largest seen while polling. */
export interface OutputBuffers {
  readonly maxOneClient: number;
  readonly maxAllClients: number;
  readonly polls: number;
}

export interface FleetOptions {
  readonly socket: string;
  readonly tag: string;
  readonly followers: number;
  readonly breakers: number;
  readonly processes: number;
  readonly pubsub: 'classic' | 'sharded';
  /** Whether the followers note when they hear each change. */
  readonly record: boolean;
}

/** The trips and closes of one writer, and when it heard each confirmed. */
class Writer {
  readonly redis: Redis;
  readonly store: RedisStore;
  readonly breakers: CircuitBreaker[];
  readonly changes = new Map<string, HeardAt>();
  /** When each change was sent (this machine's clock), by the key it will be heard under. */
  readonly sent = new Map<string, number>();

  constructor(socket: string, names: readonly string[], options: RedisStoreOptions) {
    this.redis = new Redis({ path: socket });
    this.redis.on('error', () => {});
    this.store = new RedisStore(this.redis, options);
    this.breakers = names.map(
      (name) => new CircuitBreaker(name, { store: this.store, ...BREAKER }),
    );
    for (const breaker of this.breakers) {
      breaker.on('stateChange', ({ name, generation, to }) => {
        this.changes.set(changeKey(name, generation, to), [this.store.clock.now(), hostNow()]);
      });
    }
  }

  /** Trips a closed breaker (one failure, failMax 1), closes any other (`reset`). */
  toggle(breaker: CircuitBreaker): void {
    const trip = breaker.state === 'closed';
    // Every change of top-level state takes the statechart's generation one up.
    const key = changeKey(breaker.name, breaker.context.generation + 1, trip ? 'open' : 'closed');
    this.sent.set(key, hostNow());
    if (trip) void breaker.call(down).catch(() => {});
    else breaker.reset();
  }

  async toggleAll(): Promise<void> {
    for (const breaker of this.breakers) this.toggle(breaker);
    await Promise.all(this.breakers.map((b) => b.settled()));
  }

  async close(): Promise<void> {
    for (const breaker of this.breakers) breaker.dispose();
    await this.store.close();
    await this.redis.quit().catch(() => {});
  }
}

/** `total` split into `parts` counts that differ by at most one. */
function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor((total + parts - 1 - i) / parts));
}

export class FollowerFleet {
  readonly options: FleetOptions;
  readonly children: Child[];
  readonly writer: Writer;
  readonly storesPerProcess: number[];
  readonly #admin: Redis;
  /** Seconds from spawning the processes to every follower subscribed and loaded. */
  setupSeconds = 0;

  private constructor(admin: Redis, options: FleetOptions) {
    this.#admin = admin;
    this.options = options;
    const names = Array.from({ length: options.breakers }, (_, i) => `${options.tag}${i}`);
    this.writer = new Writer(options.socket, names, storeOptions(options));
    this.storesPerProcess = split(
      options.followers,
      Math.min(options.processes, options.followers),
    );
    this.children = [];
  }

  /**
   * The writer writes a record for every breaker (a trip, then a close), so that followers load
   * records and every later change updates one; then the followers start and subscribe.
   */
  static async start(admin: Redis, options: FleetOptions): Promise<FollowerFleet> {
    const fleet = new FollowerFleet(admin, options);
    await fleet.writer.toggleAll();
    await fleet.writer.toggleAll();
    const started = performance.now();
    for (const stores of fleet.storesPerProcess) {
      fleet.children.push(
        new Child({
          mode: 'follow',
          socket: options.socket,
          prefix: options.tag,
          count: options.breakers,
          stores,
          record: options.record,
          breaker: BREAKER,
          store: storeOptions(options),
        }),
      );
    }
    try {
      const bound = 120_000 + options.followers * options.breakers;
      await Promise.all(fleet.children.map((c) => c.next('ready', bound)));
      // The writer's store subscribes too: it follows the records it writes.
      await must(
        async () => (await fleet.subscribers()) === options.followers + 1,
        30_000,
        `every follower and the writer subscribed (${options.followers + 1})`,
      );
    } catch (error) {
      await fleet.close();
      throw error;
    }
    fleet.setupSeconds = (performance.now() - started) / 1000;
    return fleet;
  }

  /** Subscribers of the change channel (classic) or of the first breaker's (sharded). */
  async subscribers(): Promise<number> {
    const [command, channel] =
      this.options.pubsub === 'classic'
        ? ['NUMSUB', CLASSIC_CHANNEL]
        : ['SHARDNUMSUB', breakerChannel(DEFAULT_PREFIX, `${this.options.tag}0`)];
    const reply = (await this.#admin.call('PUBSUB', command, channel)) as [string, number];
    return Number(reply[1]);
  }

  /** Every process's memory and CPU time. */
  usage() {
    return Promise.all(this.children.map((c) => c.ask({ type: 'usage' }, 'usage', 120_000)));
  }

  async #followerCpu(): Promise<number> {
    return sum((await this.usage()).map((u) => u.cpuMicros));
  }

  async #heardCount(): Promise<number> {
    const counts = await Promise.all(
      this.children.map((c) => c.ask({ type: 'heardCount' }, 'heardCount', 120_000)),
    );
    return sum(counts.map((c) => c.count));
  }

  /** Waits (bounded) until the followers heard `n` changes in all; returns whether they did. */
  async #heardAll(n: number, boundMs: number): Promise<boolean> {
    const deadline = performance.now() + boundMs;
    while (performance.now() < deadline) {
      if ((await this.#heardCount()) >= n) return true;
      await sleep(50);
    }
    return false;
  }

  /** Forgets what the followers and the writer heard so far. */
  async #forget(): Promise<void> {
    await Promise.all(this.children.map((c) => c.ask({ type: 'heard' }, 'heard', 120_000)));
    this.writer.changes.clear();
    this.writer.sent.clear();
  }

  async #propagation(expected: number, groups: readonly (readonly string[])[]) {
    const heard = await Promise.all(
      this.children.map((c) => c.ask({ type: 'heard' }, 'heard', 120_000)),
    );
    const store: number[] = [];
    const host: number[] = [];
    const sent: number[] = [];
    const lastHeard = new Map<string, number>();
    for (const [key, [storeAt, hostAt]] of this.writer.changes) {
      const sentAt = this.writer.sent.get(key) ?? Number.NaN;
      for (const { changes } of heard) {
        for (const [s, h] of changes[key] ?? []) {
          store.push(s - storeAt);
          host.push(h - hostAt);
          sent.push(h - sentAt);
          lastHeard.set(key, Math.max(lastHeard.get(key) ?? 0, h));
        }
      }
    }
    // A group of changes made at once: its first write sent → its last delivery.
    const spread = groups.map((keys) => {
      const first = Math.min(...keys.map((k) => this.writer.sent.get(k) ?? Infinity));
      const last = Math.max(...keys.map((k) => lastHeard.get(k) ?? -Infinity));
      return last - first;
    });
    return { store, host, sent, missing: expected - store.length, spread };
  }

  /** A window with no change: what Redis and the processes spend on their own. */
  async idle(ms: number): Promise<WindowCost> {
    const [r0, f0] = await Promise.all([redisCounters(this.#admin), this.#followerCpu()]);
    const t0 = performance.now();
    await sleep(ms);
    const [r1, f1] = await Promise.all([redisCounters(this.#admin), this.#followerCpu()]);
    return costOf(r0, r1, f0, f1, performance.now() - t0);
  }

  /**
   * `changes` changes one every `gapMs`, cycling through the breakers (each trip, then close),
   * in a window of `windowMs` from the first.
   */
  async paced(changes: number, gapMs: number, windowMs: number): Promise<BurstResult> {
    await this.#forget();
    const { breakers } = this.writer;
    const [r0, f0] = await Promise.all([redisCounters(this.#admin), this.#followerCpu()]);
    const t0 = performance.now();
    for (let i = 0; i < changes; i++) {
      await sleepUntil(t0 + i * gapMs);
      this.writer.toggle(breakers[i % breakers.length] as CircuitBreaker);
    }
    await sleepUntil(t0 + windowMs);
    const [r1, f1] = await Promise.all([redisCounters(this.#admin), this.#followerCpu()]);
    const cost = costOf(r0, r1, f0, f1, performance.now() - t0);
    const expected = changes * this.options.followers;
    await this.#heardAll(expected, 60_000);
    return { cost, changes, propagation: await this.#propagation(expected, []) };
  }

  /**
   * An outage and its end: every breaker tripped at once, and once every follower heard every
   * trip (or `boundMs` passed), every breaker closed at once. Meanwhile CLIENT LIST is read
   * every 10 ms for the subscribers' output buffers; what those reads cost Redis (measured
   * before, per read) is taken off the window's Redis CPU.
   */
  async outage(boundMs: number): Promise<BurstResult & { buffers: OutputBuffers }> {
    await this.#forget();
    const { followers } = this.options;
    const n = this.writer.breakers.length;
    const perRead = await this.#clientListCost();
    let done = false;
    const buffers = { maxOneClient: 0, maxAllClients: 0, polls: 0 };
    const [r0, f0] = await Promise.all([redisCounters(this.#admin), this.#followerCpu()]);
    const t0 = performance.now();
    const polling = this.#pollBuffers(() => done, buffers);
    const groups: string[][] = [];
    for (let round = 1; round <= 2; round++) {
      const before = new Set(this.writer.changes.keys());
      await this.writer.toggleAll();
      groups.push([...this.writer.changes.keys()].filter((k) => !before.has(k)));
      await this.#heardAll(round * n * followers, boundMs);
    }
    done = true;
    await polling;
    const [r1, f1] = await Promise.all([redisCounters(this.#admin), this.#followerCpu()]);
    const cost = costOf(r0, r1, f0, f1, performance.now() - t0);
    const expected = 2 * n * followers;
    return {
      cost: { ...cost, redisCpuMicros: cost.redisCpuMicros - perRead * buffers.polls },
      changes: 2 * n,
      propagation: await this.#propagation(expected, groups),
      buffers,
    };
  }

  /** Redis CPU per CLIENT LIST of the subscribers, in µs (the median of a few reads). */
  async #clientListCost(): Promise<number> {
    const costs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const before = await redisCounters(this.#admin);
      await this.#admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub');
      const after = await redisCounters(this.#admin);
      costs.push(after.cpuMicros - before.cpuMicros);
    }
    // Two INFO reads ride along with each CLIENT LIST here, as they do not while polling.
    const infoOnly: number[] = [];
    for (let i = 0; i < 5; i++) {
      const before = await redisCounters(this.#admin);
      const after = await redisCounters(this.#admin);
      infoOnly.push(after.cpuMicros - before.cpuMicros);
    }
    return Math.max(0, median(costs) - median(infoOnly));
  }

  async #pollBuffers(done: () => boolean, into: { -readonly [K in keyof OutputBuffers]: number }) {
    while (!done()) {
      const list = String(await this.#admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
      const omem = list.split('\n').map((line) => Number(/ omem=(\d+)/.exec(line)?.[1] ?? 0));
      into.maxOneClient = Math.max(into.maxOneClient, ...omem);
      into.maxAllClients = Math.max(into.maxAllClients, sum(omem));
      into.polls++;
      await sleep(10);
    }
  }

  /** Commands Redis ran in `seconds` with nothing changing (inside scripts counted). */
  async idleCommands(seconds: number) {
    const before = await commandCounts(this.#admin);
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const commands = delta(before, await commandCounts(this.#admin));
    return { commands, seconds: (performance.now() - t0) / 1000 };
  }

  /** What Redis holds for the fleet: clients, memory, the recent output-buffer peak. */
  async redisFigures() {
    const [clients, memory] = await Promise.all([
      info(this.#admin, 'clients'),
      info(this.#admin, 'memory'),
    ]);
    return {
      connectedClients: clients.get('connected_clients') ?? Number.NaN,
      recentMaxOutputBuffer: clients.get('client_recent_max_output_buffer') ?? Number.NaN,
      usedMemory: memory.get('used_memory') ?? Number.NaN,
      clientsMemory: memory.get('mem_clients_normal') ?? Number.NaN,
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.children.map((c) => c.exit()));
    await this.writer.close();
  }
}

function costOf(
  r0: RedisCounters,
  r1: RedisCounters,
  f0: number,
  f1: number,
  ms: number,
): WindowCost {
  return {
    ms,
    redisCpuMicros: r1.cpuMicros - r0.cpuMicros,
    netOutput: r1.netOutput - r0.netOutput,
    followerCpuMicros: f1 - f0,
  };
}
