import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { RedisStore } from 'statebreaker/redis';
import { FaultProxy } from './fault-proxy.js';
import { type ClientFamily, closeClient, connectClient, type TestClient } from './redis-clients.js';
import { RedisServer } from './redis-server.js';

// Reconnect fast after CLIENT KILL or a restart: ioredis's default waits 50 ms and more.
const CLIENT_OPTIONS: RedisOptions = { retryStrategy: (times) => Math.min(times * 2, 20) };

/** How long a store waits for Redis: short, so that outages cost the suite little. */
export const STORE_TIMEOUT_MS = 100;

/** How a fleet's stores are built. */
export interface FleetOptions {
  /**
   * The stores' `resyncInterval`, the only thing that heals a change message lost on a live
   * subscriber connection when no write follows. Default: none during a run (600 000 ms).
   */
  readonly resyncInterval?: number;
  /** The client family of every store (default ioredis 5), and its RESP version. */
  readonly family?: ClientFamily;
  readonly resp?: 2 | 3;
}

/** The faults on one instance's connections that the proxy still applies. */
export interface InstanceFaults {
  readonly replyDelayMs: number;
  readonly held: boolean;
  readonly partitioned: boolean;
  readonly messageDelayMs: number;
  /** Change messages the proxy is still to drop. */
  readonly drops: number;
}

/**
 * One redis-server and the connections of a fleet of stores on it, reused by every run of a
 * property (a fresh breaker name per run), plus an admin connection that injects faults and
 * reads the record directly. Each store's client (and the subscriber it duplicates) goes
 * through a fault proxy of its own (`proxies[i]`), so that one instance's network can be slow,
 * held, partitioned or lose change messages while the others' is kind; each store's wall clock
 * (`hostNow`) is the host's plus an offset a test may step (`hostOffsets[i]`).
 */
export class FleetRedis {
  readonly proxies: FaultProxy[];
  readonly clients: TestClient[];
  readonly stores: RedisStore[];
  /** Per store, milliseconds added to the host's wall clock: a step of the host clock. */
  readonly hostOffsets: number[];
  #admin: Redis;
  #down = false;
  #checkpoint: [string, string | null][] = [];

  private constructor(
    readonly server: RedisServer,
    proxies: FaultProxy[],
    clients: TestClient[],
    options: FleetOptions,
  ) {
    this.#admin = FleetRedis.#connect(server.path);
    this.proxies = proxies;
    this.hostOffsets = proxies.map(() => 0);
    this.clients = clients;
    // No periodic resync unless asked for: lost messages then stay lost until a write or a
    // forced resync heals them. No clock sync but the store's own (at start, after a failure,
    // after a step of its wall clock).
    this.stores = this.clients.map(
      (redis, i) =>
        new RedisStore(redis, {
          timeout: STORE_TIMEOUT_MS,
          resyncInterval: options.resyncInterval ?? 600_000,
          clockSyncInterval: 600_000,
          hostNow: () => Date.now() + (this.hostOffsets[i] ?? 0),
        }),
    );
  }

  static #connect(path: string): Redis {
    const admin = new Redis({ path, ...CLIENT_OPTIONS });
    admin.on('error', () => {});
    return admin;
  }

  static async start(size: number, options: FleetOptions = {}): Promise<FleetRedis> {
    const server = await RedisServer.start();
    const proxies = await Promise.all(
      Array.from({ length: size }, () => FaultProxy.start(server.path)),
    );
    // Each client has an error listener: outages are the point of these tests, and ioredis would
    // print every refused reconnect.
    const clients = await Promise.all(
      proxies.map((proxy) =>
        connectClient(
          options.family ?? 'ioredis5',
          { path: proxy.path },
          {
            resp: options.resp,
            extra: options.family?.startsWith('io') !== false ? CLIENT_OPTIONS : {},
          },
        ),
      ),
    );
    return new FleetRedis(server, proxies, clients, options);
  }

  /** Whether the server is killed and not yet revived. */
  get down(): boolean {
    return this.#down;
  }

  /** The faults instance `i`'s connections suffer now (both kinds, and each connection's). */
  faults(i: number): InstanceFaults {
    const proxy = this.proxies[i] as FaultProxy;
    const scopes = [proxy.commands, proxy.subscribers, ...proxy.connections().map((c) => c.faults)];
    return {
      replyDelayMs: Math.max(...scopes.map((faults) => faults.replyDelayMs)),
      held: scopes.some((faults) => faults.held),
      partitioned: scopes.some((faults) => faults.partitioned),
      messageDelayMs: Math.max(...scopes.map((faults) => faults.messageDelayMs)),
      drops: scopes.reduce((sum, faults) => sum + faults.drops, 0),
    };
  }

  /** Lifts every fault of every proxy: held replies go, partitions heal, delays end. */
  clearFaults(): void {
    for (const proxy of this.proxies) proxy.clear();
  }

  /** The stored version and snapshot of a key pair, or `undefined` while Redis is down. */
  async read(
    versionKey: string,
    snapshotKey: string,
  ): Promise<{ version: number | null; snapshot: string | null } | undefined> {
    if (this.#down) return undefined;
    const [version, snapshot] = await this.#admin.mget(versionKey, snapshotKey);
    return { version: version == null ? null : Number(version), snapshot: snapshot ?? null };
  }

  async flushAll(): Promise<void> {
    if (!this.#down) await this.#admin.flushall();
  }

  /** What a restart does to connections: every client and subscriber is cut (not the admin). */
  async killClients(): Promise<void> {
    if (this.#down) return;
    await this.#admin.client('KILL', 'TYPE', 'normal');
    await this.#admin.client('KILL', 'TYPE', 'pubsub');
  }

  /** Cuts the subscribers only: messages published until they resubscribe are lost. */
  async killSubscribers(): Promise<void> {
    if (!this.#down) await this.#admin.client('KILL', 'TYPE', 'pubsub');
  }

  /** Remembers the given keys as they are now (in memory), and SAVEs a dump to disk. */
  async checkpoint(keys: readonly string[]): Promise<void> {
    if (this.#down) return;
    const values = await this.#admin.mget(...keys);
    this.#checkpoint = keys.map((key, i) => [key, values[i] ?? null]);
    await this.#admin.save();
  }

  /**
   * A restart with old data without restarting: FLUSHALL, write the checkpoint back, and cut
   * every connection. Cheap enough for every run.
   */
  async restoreCheckpoint(): Promise<void> {
    if (this.#down) return;
    await this.#admin.flushall();
    const pairs = this.#checkpoint.filter((pair): pair is [string, string] => pair[1] !== null);
    if (pairs.length > 0) await this.#admin.mset(...pairs.flat());
    await this.killClients();
  }

  /**
   * Kills the server (SIGKILL). `data` says what the revived server holds: nothing, the data
   * of this moment (SAVEd just before the kill), or the last checkpoint's dump.
   */
  async crash(data: 'empty' | 'now' | 'checkpoint'): Promise<void> {
    if (this.#down) return;
    if (data === 'now') await this.#admin.save();
    if (data === 'empty') rmSync(join(dirname(this.server.path), 'dump.rdb'), { force: true });
    this.#down = true;
    await this.server.kill();
  }

  /** Starts the server again on the same socket; it loads the dump left by `crash`, if any. */
  async revive(): Promise<void> {
    if (!this.#down) return;
    await this.server.restart();
    this.#down = false;
    // The admin connection may have given up while the server was down.
    this.#admin.disconnect();
    this.#admin = FleetRedis.#connect(this.server.path);
  }

  async close(): Promise<void> {
    await Promise.all(this.stores.map((store) => store.close()));
    await Promise.all(this.clients.map((client) => closeClient(client)));
    this.#admin.disconnect();
    await Promise.all(this.proxies.map((proxy) => proxy.close()));
    await this.server.stop();
  }
}
