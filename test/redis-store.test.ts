import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { CircuitBreaker, MAX_NAME_LENGTH, MemoryStore } from 'statebreaker';
import { encodeName, RedisStore, RedisStoreTimeoutError } from 'statebreaker/redis';
import { MAX_VERSION, type PersistedBreakerSnapshot } from 'statebreaker/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from './support/redis-server.js';
import { hashTag, keySlot } from './support/redis-slots.js';
import { waitFor } from './support/redis-wait.js';

let server: RedisServer;
let admin: Redis;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  server = await RedisServer.start();
  admin = new Redis({ path: server.path });
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  admin?.disconnect();
  await server?.stop();
});

function client(): Redis {
  const redis = new Redis({ path: server.path });
  cleanups.push(() => redis.disconnect());
  return redis;
}

function store(options?: ConstructorParameters<typeof RedisStore>[1], redis = client()) {
  const created = new RedisStore(redis, options);
  cleanups.push(() => created.close());
  return created;
}

let unique = 0;
const fresh = (label: string) => `${label} #${++unique}`;

function snapshot(failures: number, value = 'closed'): PersistedBreakerSnapshot {
  return {
    schema: 1,
    status: 'active',
    value,
    context: {
      config: {
        failMax: 1_000,
        resetTimeout: 30_000,
        successThreshold: 2,
        halfOpenMaxCalls: 1,
        probeLease: 30_000,
      },
      failures,
      successes: 0,
      openedAt: value === 'open' ? 1_700_000_000_123 : null,
      probes: {},
      generation: value === 'open' ? 1 : 0,
      reason: value === 'open' ? 'failMaxReached' : 'init',
    },
    children: {},
  };
}

describe('compare-and-set', () => {
  it('writes only on the expected version and otherwise returns the stored record', async () => {
    const s = store();
    const name = fresh('cas');
    const first = await s.compareAndSet(name, 0, { version: 1, snapshot: snapshot(1) });
    expect(first.ok).toBe(true);

    const stale = await s.compareAndSet(name, 0, { version: 1, snapshot: snapshot(4) });
    expect(stale).toEqual({
      ok: false,
      currentVersion: 1,
      current: { version: 1, snapshot: snapshot(1) },
    });

    const second = await s.compareAndSet(name, 1, { version: 2, snapshot: snapshot(2) });
    expect(second.ok).toBe(true);
    expect(await s.load(name)).toEqual({ version: 2, snapshot: snapshot(2) });
    expect(await admin.get(s.keys(name).version)).toBe('2');
  });

  it('writes a version above the expected one, so versions grow across a lost record', async () => {
    const s = store();
    const name = fresh('jump');
    expect((await s.compareAndSet(name, 0, { version: 7, snapshot: snapshot(1) })).ok).toBe(true);
    expect((await s.load(name))?.version).toBe(7);
    await expect(s.compareAndSet(name, 7, { version: 7, snapshot: snapshot(1) })).rejects.toThrow(
      RangeError,
    );
  });

  // One rule with the readers (isVersion): a version a store took, every reader takes.
  it.each([
    ['RedisStore', MAX_VERSION],
    ['RedisStore', 1.5],
    ['MemoryStore', MAX_VERSION],
    ['MemoryStore', 1.5],
    ['MemoryStore', 2 ** 60],
  ] as const)('%s refuses version %d, which no reader takes', async (kind, version) => {
    const s = kind === 'RedisStore' ? store() : new MemoryStore();
    const name = fresh('version rule');
    const written = s.compareAndSet(name, 0, { version, snapshot: snapshot(1) });
    await expect(written).rejects.toThrow(RangeError);
    await expect(written).rejects.toThrow(`below ${MAX_VERSION}`);
    expect(await s.load(name)).toBeNull();
    expect(
      (await s.compareAndSet(name, 0, { version: MAX_VERSION - 1, snapshot: snapshot(1) })).ok,
    ).toBe(true);
  });

  it('reports an unreadable stored snapshot with its version, so a writer can replace it', async () => {
    const s = store();
    const name = fresh('corrupt');
    await admin.mset(s.keys(name).version, '3', s.keys(name).snapshot, 'not json');
    const result = await s.compareAndSet(name, 0, { version: 1, snapshot: snapshot(1) });
    expect(result).toEqual({ ok: false, current: null, currentVersion: 3 });
    expect((await s.compareAndSet(name, 3, { version: 4, snapshot: snapshot(1) })).ok).toBe(true);
  });

  it('leaves state, counter and opened_at readable with a plain GET', async () => {
    const s = store();
    const name = fresh('plain');
    await s.compareAndSet(name, 0, { version: 1, snapshot: snapshot(3) });
    const keys = s.keys(name);
    expect(await admin.mget(keys.state, keys.counter, keys.openedAt)).toEqual([
      'closed',
      '3',
      null,
    ]);
    await s.compareAndSet(name, 1, { version: 2, snapshot: snapshot(0, 'open') });
    expect(await admin.mget(keys.state, keys.counter, keys.openedAt)).toEqual([
      'open',
      '0',
      '1700000000123',
    ]);
    expect(keys.state).toBe(`circuit_breaker:{${name}}:state`);
  });

  it('shows a real breaker trip in the plain keys, on server time', async () => {
    const s = store();
    const name = fresh('trip');
    const breaker = new CircuitBreaker(name, { store: s, failMax: 2 });
    cleanups.push(() => breaker.dispose());
    for (let i = 0; i < 2; i++)
      await breaker.call(() => Promise.reject(new Error('down'))).catch(() => {});
    await breaker.settled();
    const keys = s.keys(name);
    expect(await admin.get(keys.state)).toBe('open');
    expect(await admin.get(keys.openedAt)).toBe(String(breaker.context.openedAt));
  });
});

describe('names', () => {
  const tricky = [
    'openai',
    'with space',
    'a:b:c',
    'a}',
    'a%7D',
    '{a}',
    '%',
    '%25',
    '}{',
    'line\nbreak',
    'ünïcödé 😀',
    'x'.repeat(MAX_NAME_LENGTH),
  ];

  it('maps every name to its own keys, all in one Cluster slot per name', () => {
    const s = store();
    const seen = new Map<string, string>();
    for (const name of tricky) {
      const keys = Object.values(s.keys(name));
      const tags = new Set(keys.map(hashTag));
      expect(tags).toEqual(new Set([encodeName(name)]));
      expect(new Set(keys.map(keySlot)).size).toBe(1);
      for (const key of keys) {
        expect(seen.get(key), `${key} is shared`).toBeUndefined();
        seen.set(key, name);
      }
    }
    expect(encodeName('a}')).toBe('a%7D');
    expect(encodeName('a%7D')).toBe('a%257D');
    expect(encodeName('with space:x')).toBe('with space:x');
  });

  it('keeps records of look-alike names apart on a real server, and delivers them by name', async () => {
    const writer = store();
    const reader = store();
    const got = new Map<string, number>();
    for (const name of tricky)
      reader.subscribe(name, (record) => got.set(name, record.snapshot.context.failures));
    await reader.load(tricky[0] as string);
    for (const [i, name] of tricky.entries()) {
      await writer.compareAndSet(name, 0, { version: 1, snapshot: snapshot(i) });
    }
    for (const [i, name] of tricky.entries()) {
      expect((await reader.load(name))?.snapshot.context.failures).toBe(i);
    }
    expect(await waitFor(() => got.size === tricky.length)).toBe(true);
    for (const [i, name] of tricky.entries()) expect(got.get(name)).toBe(i);
  });

  it('refuses empty and too long names like a breaker does', async () => {
    const s = store();
    await expect(s.load('')).rejects.toThrow(/must not be empty/);
    await expect(s.load('x'.repeat(MAX_NAME_LENGTH + 1))).rejects.toThrow(
      new RegExp(`at most ${MAX_NAME_LENGTH}`),
    );
    expect(() => s.subscribe('', () => {})).toThrow(RangeError);
    await expect(s.compareAndSet('', 0, { version: 1, snapshot: snapshot(0) })).rejects.toThrow(
      RangeError,
    );
  });
});

describe('options', () => {
  it.each([
    [{ prefix: 'app:{x}:' }, RangeError, /prefix.*"app:\{x\}:"/],
    [{ prefix: 3 }, TypeError, /prefix.*3/],
    [{ timeout: 0 }, RangeError, /timeout.*0/],
    [{ timeout: '5' }, TypeError, /timeout.*"5"/],
    [{ resyncInterval: Number.NaN }, RangeError, /resyncInterval.*NaN/],
    [{ clockSyncInterval: -1 }, RangeError, /clockSyncInterval.*-1/],
    [{ hostNow: 5 }, TypeError, /hostNow.*5/],
    [{ recordTtl: 999 }, RangeError, /recordTtl.*from 1000 to 31536000000, got 999/],
    [{ recordTtl: 1500.5 }, RangeError, /recordTtl.*whole number.*1500\.5/],
    [{ recordTtl: 4e10 }, RangeError, /recordTtl.*40000000000/],
    [{ recordTtl: '60000' }, TypeError, /recordTtl.*"60000"/],
    [{ pubsub: 'shard' }, RangeError, /pubsub.*'auto', 'sharded' or 'classic'.*"shard"/],
    [{ prefx: 'a' }, TypeError, /unknown RedisStore option "prefx"/],
  ])('refuses %o', (options, type, message) => {
    const redis = client();
    expect(() => new RedisStore(redis, options as never)).toThrow(type);
    expect(() => new RedisStore(redis, options as never)).toThrow(message);
  });

  it('refuses something that is not an ioredis client', () => {
    expect(() => new RedisStore({} as never)).toThrow(TypeError);
  });

  it('uses the prefix for keys and the change channel', async () => {
    const s = store({ prefix: 'svc:cb:' });
    const name = fresh('prefixed');
    const heard: string[] = [];
    const listener = client();
    await listener.subscribe('svc:cb:changes');
    listener.on('message', (_channel, message: string) => heard.push(message));
    await s.compareAndSet(name, 0, { version: 1, snapshot: snapshot(0) });
    expect(await admin.get(`svc:cb:{${name}}:version`)).toBe('1');
    expect(await waitFor(() => heard.length === 1)).toBe(true);
    expect(heard[0]?.endsWith(`\n${name}`)).toBe(true);
  });
});

describe('sharded pub/sub on standalone Redis 7 (pubsub: sharded)', () => {
  it('publishes each change with SPUBLISH on the breaker channel, heard by the stores that follow it', async () => {
    const name = fresh('sharded');
    const [a, b] = [store({ pubsub: 'sharded' }), store({ pubsub: 'sharded' })];
    const heard: string[] = [];
    const listener = client();
    listener.on('smessage', (channel: string) => heard.push(channel));
    await listener.ssubscribe(`circuit_breaker:{${name}}:changes`);
    const classic: string[] = [];
    const old = client();
    old.on('message', (channel: string) => classic.push(channel));
    await old.subscribe('circuit_breaker:changes');
    const seqBefore = await admin.get('circuit_breaker:seq');
    const one = new CircuitBreaker(name, { store: a, failMax: 1 });
    const two = new CircuitBreaker(name, { store: b, failMax: 1 });
    cleanups.push(
      () => one.dispose(),
      () => two.dispose(),
    );
    await Promise.all([one.settled(), two.settled()]);
    expect(a.publication).toBe('sharded');
    await one.call(() => Promise.reject(new Error('down'))).catch(() => {});
    await one.settled();
    expect(await waitFor(() => two.state === 'open')).toBe(true);
    expect(heard).toEqual([`circuit_breaker:{${name}}:changes`]);
    // Not on the store's classic channel, and not numbered by its counter.
    expect(classic).toEqual([]);
    expect(await admin.get('circuit_breaker:seq')).toBe(seqBefore);
  });
});

describe('timeouts', () => {
  it('rejects a call with RedisStoreTimeoutError when Redis does not answer', async () => {
    const s = store({ timeout: 50 });
    const name = fresh('paused');
    await s.load(name);
    server.pause();
    try {
      const error = await s
        .compareAndSet(name, 0, { version: 1, snapshot: snapshot(0) })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RedisStoreTimeoutError);
      expect(String(error)).toMatch(/compareAndSet got no answer from Redis within 50 ms/);
    } finally {
      server.resume();
    }
  });
});

describe('change feed', () => {
  it('delivers each write once to every listener of the name, decoded', async () => {
    const writer = store();
    const reader = store();
    const name = fresh('feed');
    const records: number[] = [];
    reader.subscribe(name, (record) => records.push(record.version));
    await reader.load(name);
    await writer.compareAndSet(name, 0, { version: 1, snapshot: snapshot(1) });
    await writer.compareAndSet(name, 1, { version: 2, snapshot: snapshot(2) });
    expect(await waitFor(() => records.length === 2)).toBe(true);
    expect(records).toEqual([1, 2]);
  });

  it('heals a lost message at the next resync', async () => {
    const reader = store();
    const name = fresh('lost');
    const records: number[] = [];
    reader.subscribe(name, (record) => records.push(record.version));
    await reader.load(name);
    // Written without PUBLISH: as if the message were lost.
    const keys = reader.keys(name);
    await admin.mset(keys.version, '5', keys.snapshot, JSON.stringify(snapshot(2)));
    expect(records).toEqual([]);
    await reader.resync();
    expect(records).toEqual([5]);
    await reader.resync();
    expect(records).toEqual([5]);
  });

  it('notices a lost message by the change counter at its next check, and resyncs', async () => {
    const reader = store({ resyncInterval: 20 });
    const name = fresh('periodic');
    const records: number[] = [];
    reader.subscribe(name, (record) => records.push(record.version));
    await reader.load(name);
    const keys = reader.keys(name);
    // A write whose message never arrived: the record and the counter moved, no message came.
    await admin.mset(keys.version, '3', keys.snapshot, JSON.stringify(snapshot(1)));
    await admin.incr('circuit_breaker:seq');
    expect(await waitFor(() => records.length === 1)).toBe(true);
    // Its checks would otherwise go on during the tests that count commands.
    await reader.close();
  });

  it('an idle check costs one command however many records it follows', async () => {
    const stats = async () =>
      Number(/total_commands_processed:(\d+)/.exec(await admin.info('stats'))?.[1] ?? 0);
    const names = Array.from({ length: 1_200 }, () => fresh('idle'));
    const periodic = store({ resyncInterval: 30 });
    for (const name of names) periodic.subscribe(name, () => {});
    await Promise.all(names.map((name) => periodic.load(name)));
    // The first check learns the counter; the next ones only compare it.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const before = await stats();
    await new Promise((resolve) => setTimeout(resolve, 300));
    // About ten checks in 300 ms, each one GET (other stores of this file check too). A sweep
    // of 1,200 records would be thousands: commands inside scripts count as well.
    const spent = (await stats()) - before - 1;
    await periodic.close();
    expect(spent).toBeGreaterThan(0);
    expect(spent).toBeLessThanOrEqual(100);
  });

  it('finds a record changed without a message or a count at its audit', async () => {
    const reader = store({ resyncInterval: 20, auditInterval: 40 });
    const name = fresh('audited');
    const records: number[] = [];
    reader.subscribe(name, (record) => records.push(record.version));
    await reader.load(name);
    const keys = reader.keys(name);
    await admin.mset(keys.version, '3', keys.snapshot, JSON.stringify(snapshot(1)));
    expect(await waitFor(() => records.length === 1)).toBe(true);
    await reader.close();
  });

  it('resyncs when its subscriber reconnects', async () => {
    const reader = store();
    const name = fresh('reconnect');
    const records: number[] = [];
    reader.subscribe(name, (record) => records.push(record.version));
    await reader.load(name);
    const keys = reader.keys(name);
    await admin.mset(keys.version, '9', keys.snapshot, JSON.stringify(snapshot(1)));
    await admin.client('KILL', 'TYPE', 'pubsub');
    expect(await waitFor(() => records.length === 1)).toBe(true);
    expect(records).toEqual([9]);
  });
});

describe('clock', () => {
  it('follows Redis server time whatever the host clock says', async () => {
    const ahead = store({ hostNow: () => Date.now() + 5_000 });
    const behind = store({ hostNow: () => Date.now() - 5_000 });
    await ahead.load(fresh('sync'));
    await behind.load(fresh('sync'));
    const [seconds, micros] = await admin.time();
    const server = Number(seconds) * 1000 + Number(micros) / 1000;
    const bound = Math.max(ahead.clock.roundTrip, behind.clock.roundTrip) + 50;
    // Both agree with each other, and with the server, far inside the 10 s their hosts differ by.
    expect(Math.abs(ahead.clock.now() - behind.clock.now())).toBeLessThan(bound);
    expect(Math.abs(ahead.clock.now() - server)).toBeLessThan(bound + 50);
    expect(behind.clock.offset - ahead.clock.offset).toBeGreaterThan(9_000);
  });
});

describe('hot path', () => {
  it('sends no Redis command for successful calls in closed with no failures', async () => {
    // A generous timeout: on a loaded machine a first load past the default 500 ms would leave
    // the breaker degraded, and its retries would read Redis during the count.
    // A server of its own: the other stores of this file check their change counters on their
    // own schedule, and the count below is the server's.
    const own = await RedisServer.start();
    const ownAdmin = new Redis({ path: own.path });
    cleanups.push(async () => {
      ownAdmin.disconnect();
      await own.stop();
    });
    const client = new Redis({ path: own.path });
    cleanups.push(() => client.disconnect());
    const s = store(
      { resyncInterval: 600_000, clockSyncInterval: 600_000, timeout: 30_000 },
      client,
    );
    const breaker = new CircuitBreaker(fresh('hot'), { store: s });
    const degraded: unknown[] = [];
    breaker.on('degraded', (event) => degraded.push(event));
    cleanups.push(() => breaker.dispose());
    await breaker.call(async () => 'warm');
    await breaker.settled();
    const before = await commandCounts(ownAdmin);
    for (let i = 0; i < 1_000; i++) await breaker.call(async () => i);
    const after = await commandCounts(ownAdmin);
    expect(degraded).toEqual([]);
    expect(after).toEqual(before);
    // The same probe of the counters sees a write: it would catch one.
    await breaker.call(() => Promise.reject(new Error('x'))).catch(() => {});
    await breaker.settled();
    expect(await commandCounts(ownAdmin)).not.toEqual(after);
  });
});

/** Calls per command since the server started, without INFO itself. */
async function commandCounts(on: Redis = admin): Promise<Record<string, string>> {
  const info = await on.info('commandstats');
  const counts: Record<string, string> = {};
  for (const line of info.split('\n')) {
    const match = /^cmdstat_(\w+):calls=(\d+)/.exec(line.trim());
    if (match && match[1] !== 'info') counts[match[1] as string] = match[2] as string;
  }
  return counts;
}

describe('close', () => {
  it('releases the subscriber when the last breaker is disposed, and on close()', async () => {
    // Counted by their subscriptions: CLIENT LIST's TYPE pubsub does not list a RESP3
    // subscriber (ioredis 6's default) on every Redis version.
    const subscribers = async () =>
      String(await admin.call('CLIENT', 'LIST'))
        .split('\n')
        .filter((line) => /\b(sub|ssub)=[1-9]/.test(line)).length;
    const base = await subscribers();
    const s = store({ subscriberIdleTimeout: 300 });
    const breaker = new CircuitBreaker(fresh('release'), { store: s });
    await breaker.settled();
    expect(await subscribers()).toBe(base + 1);
    breaker.dispose();
    // Kept for a while, so that the next breaker reuses it instead of opening another.
    expect(await subscribers()).toBe(base + 1);
    const next = new CircuitBreaker(fresh('release'), { store: s });
    await next.settled();
    expect(await subscribers()).toBe(base + 1);
    next.dispose();
    expect(await waitFor(async () => (await subscribers()) === base)).toBe(true);

    const other = new CircuitBreaker(fresh('release'), { store: s });
    await other.settled();
    expect(await subscribers()).toBe(base + 1);
    await s.close();
    expect(await waitFor(async () => (await subscribers()) === base)).toBe(true);
    await expect(s.load('x')).rejects.toThrow(/closed/);
  });

  it('lets a process exit on its own after dispose() and quit()', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/fixtures/fleet-exit.ts', server.path],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 20_000);
      child.on('exit', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    expect(output).toContain('open');
    expect(code).toBe(0);
  });
});

describe('optional peer dependency', () => {
  it('imports ioredis for types only, so statebreaker loads without it', () => {
    const src = new URL('../src/', import.meta.url);
    const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) =>
      f.endsWith('.ts'),
    );
    const runtime = files.filter((file) =>
      /^import\s+(?!type\b)[^;]*from\s+'ioredis'/m.test(readFileSync(new URL(file, src), 'utf8')),
    );
    expect(files).toContain('stores/redis/store.ts');
    expect(runtime).toEqual([]);
  });
});
