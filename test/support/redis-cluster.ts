import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, type ClusterOptions, Redis } from 'ioredis';
import { waitFor } from './redis-wait.js';

// A Redis Cluster of the test's own: redis-server processes started with --cluster-enabled on
// loopback ports nobody else uses, each in a temp dir of its own, joined with CLUSTER MEET,
// given slots with CLUSTER ADDSLOTSRANGE and replicas with CLUSTER REPLICATE. Tests kill nodes
// by pid to make a replica take over. Cluster nodes speak TCP only (clients are redirected to
// ip:port), so unlike RedisServer this one cannot use a unix socket.

const HOST = '127.0.0.1';
const SLOTS = 16_384;
const START_BOUND_MS = 10_000;
const READY = /ready to accept connections/i;

/** How to start a cluster. */
export interface ClusterSpec {
  /** Masters sharing the slots evenly. Default 3. */
  readonly masters?: number;
  /** Replicas of each master. Default 1. */
  readonly replicasPerMaster?: number;
  /**
   * `cluster-node-timeout` in ms: how long a node may be unreachable before it is failed over.
   * Default 1 000 (Redis's own default is 15 000).
   */
  readonly nodeTimeout?: number;
  /**
   * `cluster-require-full-coverage`: whether every node refuses queries while some slot has no
   * live master (between a master's failure and its replica's promotion). Default true, as in
   * Redis.
   */
  readonly requireFullCoverage?: boolean;
  /** Bound on the whole start, ms. Default 30 000. */
  readonly boundMs?: number;
}

/** One node as the cluster sees it (a line of CLUSTER NODES). */
export interface NodeView {
  readonly id: string;
  readonly port: number;
  readonly role: 'master' | 'replica';
  /** The master's id, for a replica. */
  readonly masterId: string | null;
  /** Flagged `fail` (or `fail?`) by the node asked. */
  readonly failing: boolean;
  /** Slot ranges served, inclusive, for a master. */
  readonly slots: readonly (readonly [number, number])[];
}

/** A redis-server process of the cluster. */
export class ClusterNode {
  readonly port: number;
  readonly busPort: number;
  readonly dir: string;
  /** The node's id in the cluster (CLUSTER MYID), known once started. */
  id = '';
  #process: ChildProcess | null = null;
  #admin: Redis | null = null;
  #log = '';

  constructor(port: number, busPort: number, dir: string) {
    this.port = port;
    this.busPort = busPort;
    this.dir = dir;
  }

  /** The server's process id; `undefined` once stopped or killed. */
  get pid(): number | undefined {
    return this.#process?.pid;
  }

  /** Whether the process runs. */
  get alive(): boolean {
    return this.#process !== null;
  }

  /** The last few kilobytes of the server's log, for failure messages. */
  get log(): string {
    return this.#log;
  }

  /** A plain connection to this node alone (no redirections), for admin commands. */
  get admin(): Redis {
    if (this.#admin === null) {
      // Bounded: a paused or dying node must fail the command, not hang the test.
      this.#admin = new Redis({
        host: HOST,
        port: this.port,
        maxRetriesPerRequest: 1,
        commandTimeout: 2_000,
      });
      this.#admin.on('error', () => {});
    }
    return this.#admin;
  }

  /** Starts the process and resolves once it accepts connections. */
  start(nodeTimeout: number, requireFullCoverage: boolean): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        HOST,
        '--cluster-enabled',
        'yes',
        '--cluster-port',
        String(this.busPort),
        '--cluster-config-file',
        join(this.dir, 'nodes.conf'),
        '--cluster-node-timeout',
        String(nodeTimeout),
        '--cluster-require-full-coverage',
        requireFullCoverage ? 'yes' : 'no',
        '--save',
        '',
        '--appendonly',
        'no',
        // A replica's first sync starts at once (Redis waits 5 s for more replicas by default).
        '--repl-diskless-sync-delay',
        '0',
        '--dir',
        this.dir,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.#process = child;
    const keep = (chunk: Buffer) => {
      this.#log = (this.#log + chunk.toString()).slice(-8_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('exit', () => {
      if (this.#process === child) this.#process = null;
    });
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`redis-server on port ${this.port} did not start:\n${this.#log}`));
      }, START_BOUND_MS);
      const onData = () => {
        if (!READY.test(this.#log)) return;
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve();
      };
      child.stdout?.on('data', onData);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server on port ${this.port} exited with ${code}:\n${this.#log}`));
      });
    });
  }

  /** Kills the process with SIGKILL, as a crash would. */
  kill(): Promise<void> {
    return this.#signal('SIGKILL');
  }

  /** Freezes the process (SIGSTOP): its connections stay open, nothing answers. */
  pause(): void {
    this.#process?.kill('SIGSTOP');
  }

  /** Unfreezes a paused process (SIGCONT). */
  resume(): void {
    this.#process?.kill('SIGCONT');
  }

  /** Stops the process (SIGTERM, then SIGKILL if it lingers) and closes the admin connection. */
  async stop(): Promise<void> {
    this.#admin?.disconnect();
    this.#admin = null;
    await this.#signal('SIGTERM');
  }

  async #signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.#process;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (signal !== 'SIGKILL') child.kill('SIGCONT');
    child.kill(signal);
    const late = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(late);
    this.#process = null;
  }
}

/**
 * `count` distinct loopback ports free at the time of asking: the kernel picks each, all held
 * open together so that none is handed out twice.
 */
async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  try {
    return await Promise.all(
      servers.map(
        (server) =>
          new Promise<number>((resolve, reject) => {
            server.once('error', reject);
            server.listen(0, HOST, () => {
              const address = server.address();
              if (address !== null && typeof address === 'object') resolve(address.port);
              else reject(new Error('no port'));
            });
          }),
      ),
    );
  } finally {
    await Promise.all(
      servers.map((server) => new Promise((resolve) => server.close(() => resolve(undefined)))),
    );
  }
}

/** Parses CLUSTER NODES. */
export function parseClusterNodes(text: string): NodeView[] {
  return text
    .trim()
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => {
      const [id, address, flags, master, , , , , ...slots] = line.split(' ');
      const flagList = (flags ?? '').split(',');
      const port = Number((address ?? '').split('@')[0]?.split(':')[1]);
      const ranges = slots
        .filter((slot) => !slot.startsWith('['))
        .map((slot) => {
          const [from, to] = slot.split('-').map(Number) as [number, number | undefined];
          return [from, to ?? from] as const;
        });
      return {
        id: id as string,
        port,
        role: flagList.includes('master') ? 'master' : 'replica',
        masterId: master === '-' ? null : (master ?? null),
        failing: flagList.includes('fail') || flagList.includes('fail?'),
        slots: ranges,
      } satisfies NodeView;
    });
}

/** A Redis Cluster of its own processes; `stop()` kills them by pid and removes their dirs. */
export class RedisCluster {
  readonly nodes: readonly ClusterNode[];
  readonly #dirs: string[];

  private constructor(nodes: ClusterNode[], dirs: string[]) {
    this.nodes = nodes;
    this.#dirs = dirs;
  }

  /**
   * Starts `masters × (1 + replicasPerMaster)` nodes, gives the masters the slots in even
   * ranges, attaches the replicas and resolves once every node reports `cluster_state:ok` and
   * every replica is in sync with its master.
   */
  static async start(spec: ClusterSpec = {}): Promise<RedisCluster> {
    const masters = spec.masters ?? 3;
    const replicas = spec.replicasPerMaster ?? 1;
    const nodeTimeout = spec.nodeTimeout ?? 1_000;
    const boundMs = spec.boundMs ?? 30_000;
    const count = masters * (1 + replicas);
    const dirs: string[] = [];
    const nodes: ClusterNode[] = [];
    const ports = await freePorts(2 * count);
    for (let i = 0; i < count; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'statebreaker-cluster-'));
      dirs.push(dir);
      nodes.push(new ClusterNode(ports[2 * i] as number, ports[2 * i + 1] as number, dir));
    }
    const cluster = new RedisCluster(nodes, dirs);
    try {
      const coverage = spec.requireFullCoverage ?? true;
      await Promise.all(nodes.map((node) => node.start(nodeTimeout, coverage)));
      await cluster.#form(masters, replicas, boundMs);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** Every node's address, for `new Cluster(seeds)`. */
  get seeds(): { host: string; port: number }[] {
    return this.nodes.map((node) => ({ host: HOST, port: node.port }));
  }

  /** A new ioredis Cluster client on this cluster; the caller disconnects it. */
  client(options: ClusterOptions = {}): Cluster {
    return new Cluster(this.seeds, options);
  }

  /** The nodes whose process runs. */
  get live(): ClusterNode[] {
    return this.nodes.filter((node) => node.alive);
  }

  /** The cluster as a live node sees it. */
  async view(from: ClusterNode = this.live[0] as ClusterNode): Promise<NodeView[]> {
    return parseClusterNodes((await from.admin.call('CLUSTER', 'NODES')) as string);
  }

  /** The node process that serves `slot` as master, as a live node sees it. */
  async masterOf(slot: number): Promise<ClusterNode> {
    const master = (await this.view()).find(
      (node) => node.role === 'master' && node.slots.some(([a, b]) => slot >= a && slot <= b),
    );
    const node = this.nodes.find((n) => n.id === master?.id);
    if (node === undefined) throw new Error(`no master serves slot ${slot}`);
    return node;
  }

  /** The node processes that are masters with slots, as a live node sees it. */
  async masters(): Promise<ClusterNode[]> {
    const view = await this.view();
    return view
      .filter((node) => node.role === 'master' && node.slots.length > 0 && !node.failing)
      .map((node) => this.nodes.find((n) => n.id === node.id))
      .filter((node): node is ClusterNode => node !== undefined);
  }

  /** The replicas of `master`, as a live node sees them. */
  async replicasOf(master: ClusterNode): Promise<ClusterNode[]> {
    const view = await this.view();
    return view
      .filter((node) => node.role === 'replica' && node.masterId === master.id)
      .map((node) => this.nodes.find((n) => n.id === node.id))
      .filter((node): node is ClusterNode => node !== undefined);
  }

  /**
   * Moves `slot` and its keys to master `to`, as a resharding does: IMPORTING on `to`,
   * MIGRATING on the current owner, MIGRATE of every key, then SETSLOT NODE once on every master
   * (`to` first, then the old owner, then the others). Once more on `to` would be more than a
   * move: Redis 7.0 then ends the slot's sharded subscriptions on `to` too.
   */
  async moveSlot(slot: number, to: ClusterNode): Promise<void> {
    const from = await this.masterOf(slot);
    if (from === to) return;
    const at = String(slot);
    await to.admin.call('CLUSTER', 'SETSLOT', at, 'IMPORTING', from.id);
    await from.admin.call('CLUSTER', 'SETSLOT', at, 'MIGRATING', to.id);
    for (;;) {
      const keys = (await from.admin.call('CLUSTER', 'GETKEYSINSLOT', at, '100')) as string[];
      if (keys.length === 0) break;
      await from.admin.call('MIGRATE', HOST, String(to.port), '', '0', '5000', 'KEYS', ...keys);
    }
    const others = (await this.masters()).filter((node) => node !== to && node !== from);
    for (const node of [to, from, ...others]) {
      await node.admin.call('CLUSTER', 'SETSLOT', at, 'NODE', to.id);
    }
  }

  /** Kills a node with SIGKILL (by its pid). */
  async kill(node: ClusterNode): Promise<void> {
    await node.kill();
  }

  /**
   * Resolves `true` once every live node reports `cluster_state:ok` and agrees that every slot
   * is served by a live master; `false` after `boundMs`.
   */
  async waitForOk(boundMs = 20_000): Promise<boolean> {
    const liveIds = () => new Set(this.live.map((node) => node.id));
    return waitFor(async () => {
      try {
        for (const node of this.live) {
          const info = (await node.admin.call('CLUSTER', 'INFO')) as string;
          if (!info.includes('cluster_state:ok')) return false;
          const served = (await this.view(node))
            .filter((view) => view.role === 'master' && liveIds().has(view.id))
            .flatMap((view) => view.slots)
            .reduce((sum, [a, b]) => sum + b - a + 1, 0);
          if (served !== SLOTS) return false;
        }
        return true;
      } catch {
        return false;
      }
    }, boundMs);
  }

  /**
   * Resolves `true` once a replica of `killed` serves its slots and the cluster is ok again
   * (see `waitForOk`); `false` after `boundMs`.
   */
  async waitForFailover(killed: ClusterNode, boundMs = 20_000): Promise<boolean> {
    const promoted = await waitFor(async () => {
      try {
        const view = await this.view();
        return !view.some(
          (node) => node.id === killed.id && node.role === 'master' && node.slots.length > 0,
        );
      } catch {
        return false;
      }
    }, boundMs);
    return promoted && (await this.waitForOk(boundMs));
  }

  /** Stops every node by pid and removes the temp dirs. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
    for (const dir of this.#dirs) rmSync(dir, { recursive: true, force: true });
  }

  async #form(masters: number, replicas: number, boundMs: number): Promise<void> {
    const nodes = this.nodes;
    for (const node of nodes) node.id = (await node.admin.call('CLUSTER', 'MYID')) as string;
    // Distinct config epochs, as redis-cli --cluster create sets them: no collision to resolve.
    await Promise.all(
      nodes.map((node, i) => node.admin.call('CLUSTER', 'SET-CONFIG-EPOCH', String(i + 1))),
    );
    const per = Math.floor(SLOTS / masters);
    await Promise.all(
      nodes.slice(0, masters).map((node, i) => {
        const from = i * per;
        const to = i === masters - 1 ? SLOTS - 1 : from + per - 1;
        return node.admin.call('CLUSTER', 'ADDSLOTSRANGE', String(from), String(to));
      }),
    );
    const first = nodes[0] as ClusterNode;
    for (const node of nodes.slice(1)) {
      await first.admin.call('CLUSTER', 'MEET', HOST, String(node.port), String(node.busPort));
    }
    const met = await waitFor(async () => {
      for (const node of nodes) {
        const text = (await node.admin.call('CLUSTER', 'NODES')) as string;
        const lines = text.trim().split('\n');
        if (lines.length !== nodes.length) return false;
        if (lines.some((line) => /handshake|noaddr|disconnected/.test(line))) return false;
      }
      return true;
    }, boundMs);
    if (!met) throw new Error(`cluster nodes did not meet:\n${first.log}`);
    for (let i = 0; i < masters * replicas; i++) {
      const replica = nodes[masters + i] as ClusterNode;
      const master = nodes[i % masters] as ClusterNode;
      await replica.admin.call('CLUSTER', 'REPLICATE', master.id);
    }
    const synced = await waitFor(async () => {
      for (const replica of nodes.slice(masters)) {
        const info = (await replica.admin.call('INFO', 'replication')) as string;
        if (!info.includes('master_link_status:up')) return false;
      }
      return true;
    }, boundMs);
    if (!synced) throw new Error('cluster replicas did not sync');
    if (!(await this.waitForOk(boundMs))) throw new Error('cluster did not reach cluster_state:ok');
    // Every node must know every replica's role before a failover can be judged.
    const agreed = await waitFor(async () => {
      for (const node of nodes) {
        const view = await this.view(node);
        if (view.filter((v) => v.role === 'replica').length !== masters * replicas) return false;
      }
      return true;
    }, boundMs);
    if (!agreed) throw new Error('cluster nodes did not agree on the replicas');
  }
}

/**
 * Breaker names `${base} 0`, `${base} 1`, … until every master has `perMaster` of them, by
 * the slot `slotOf(name)`: one list per master, in the order of `masters()`.
 */
export async function namesOnEveryMaster(
  cluster: RedisCluster,
  base: string,
  slotOf: (name: string) => number,
  perMaster = 1,
): Promise<string[][]> {
  const masters = await cluster.masters();
  const view = await cluster.view();
  const served = masters.map((master) => view.find((v) => v.id === master.id)?.slots ?? []);
  const lists = masters.map((): string[] => []);
  for (let i = 0; lists.some((list) => list.length < perMaster); i++) {
    const name = `${base} ${i}`;
    const slot = slotOf(name);
    const at = served.findIndex((ranges) => ranges.some(([a, b]) => slot >= a && slot <= b));
    const list = lists[at];
    if (list !== undefined && list.length < perMaster) list.push(name);
  }
  return lists;
}
