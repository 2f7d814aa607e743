import type { Redis } from 'ioredis';
import RedisMock from 'ioredis-mock';
import { CircuitBreaker } from 'statebreaker';
import { type BreakerTransition, forceOpen, reset, watchBreakers } from 'statebreaker/admin';
import { type BreakerKeys, RedisStore } from 'statebreaker/redis';
import { afterEach, describe, expect, it } from 'vitest';
import { converge, type Member, settle, useFaultHarness } from './support/fault-fleet.js';
import { waitFor } from './support/redis-wait.js';

// `recordTtl`: the keys of an idle breaker (closed, no failure counted) expire together; every
// other record is kept, and instances that held an expired record neither raise a false alarm
// nor lose the fleet's next change, whose record starts its versions again.

const TTL = 1_000;
const harness = useFaultHarness();

const allKeys = (keys: BreakerKeys) => [
  keys.snapshot,
  keys.version,
  keys.write,
  keys.state,
  keys.counter,
  keys.openedAt,
];

/** The expiry of each of the breaker's keys that exists (-1: kept for ever), by field. */
async function expiries(admin: Redis, keys: BreakerKeys): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [field, key] of Object.entries(keys)) {
    const at = (await admin.call('PEXPIRETIME', key)) as number;
    if (at !== -2) out[field] = at;
  }
  return out;
}

function gone(admin: Redis, keys: BreakerKeys, boundMs = TTL * 3): Promise<boolean> {
  return waitFor(async () => (await admin.exists(...allKeys(keys))) === 0, boundMs);
}

const storeErrors = (members: readonly Member[]) =>
  members.flatMap((m) => m.events.filter((event) => event.startsWith('storeError')));

describe('recordTtl on a redis-server', () => {
  it('lets the keys of an idle record expire together, and keeps every other record', async () => {
    const name = harness.begin('ttl states');
    const a = harness.join(name, { failMax: 2 }, { recordTtl: TTL });
    const keys = a.store.keys(name);
    await a.breaker.settled();

    await settle(a.breaker, 'fail');
    await a.breaker.settled();
    expect(await expiries(harness.admin, keys), 'closed with a failure counted').toEqual({
      snapshot: -1,
      version: -1,
      state: -1,
      counter: -1,
      write: -1,
    });

    await settle(a.breaker, 'ok');
    await a.breaker.settled();
    const idle = await expiries(harness.admin, keys);
    expect(Object.keys(idle).sort()).toEqual(['counter', 'snapshot', 'state', 'version', 'write']);
    const deadlines = new Set(Object.values(idle));
    expect(deadlines.size, 'one deadline for every key').toBe(1);
    const [deadline] = [...deadlines] as [number];
    const [seconds, micros] = await harness.admin.time();
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    expect(deadline).toBeGreaterThan(now);
    expect(deadline).toBeLessThanOrEqual(now + TTL);

    await settle(a.breaker, 'fail');
    await settle(a.breaker, 'fail');
    expect(a.breaker.state).toBe('open');
    await a.breaker.settled();
    const open = await expiries(harness.admin, keys);
    expect(open).toEqual({
      snapshot: -1,
      version: -1,
      state: -1,
      counter: -1,
      write: -1,
      openedAt: -1,
    });
    // Well past the TTL, the open record is all there.
    await new Promise((resolve) => setTimeout(resolve, TTL + 300));
    expect(await harness.admin.exists(...allKeys(keys))).toBe(6);
    expect(await harness.admin.get(keys.state)).toBe('open');

    a.breaker.forceOpen();
    await a.breaker.settled();
    expect(new Set(Object.values(await expiries(harness.admin, keys))), 'forced open').toEqual(
      new Set([-1]),
    );
    a.breaker.reset();
    await a.breaker.settled();
    const reset = await expiries(harness.admin, keys);
    expect(new Set(Object.values(reset)).size, 'reset: closed and idle again').toBe(1);
    expect(Object.values(reset)[0]).toBeGreaterThan(0);
    expect(await gone(harness.admin, keys)).toBe(true);
    expect(storeErrors([a])).toEqual([]);
  });

  it('is no loss to the instances that held the record: no alarm, nothing written back, the next change adopted', async () => {
    const name = harness.begin('ttl resync');
    // Their resyncs and audits run every few hundred ms: they find the record gone.
    const a = harness.join(name, { failMax: 2 }, { recordTtl: TTL });
    const b = harness.join(name, { failMax: 2 }, { recordTtl: TTL });
    const keys = a.store.keys(name);
    await Promise.all([a.breaker.settled(), b.breaker.settled()]);
    // A failure, a trip and a reset, each written: the idle record stands at version 3 and
    // generation 2.
    for (const step of ['fail', 'fail', 'reset'] as const) {
      if (step === 'reset') a.breaker.reset();
      else await settle(a.breaker, step);
      await a.breaker.settled();
    }
    expect(await converge(harness.admin, [a, b], name)).toBe(true);
    const before = Number(await harness.admin.get(keys.version));
    expect(b.breaker.context.generation).toBe(2);

    expect(await gone(harness.admin, keys)).toBe(true);
    await Promise.all([a.store.resync(), b.store.resync()]);
    // Several resyncs and audits later, still nothing stored and nothing reported.
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(await harness.admin.exists(...allKeys(keys))).toBe(0);
    expect(storeErrors([a, b])).toEqual([]);
    expect([a.breaker.state, b.breaker.state]).toEqual(['closed', 'closed']);

    // A new instance trips the breaker: its record starts at version 1, and both adopt it.
    const c = harness.join(name, { failMax: 2 }, { recordTtl: TTL });
    await settle(c.breaker, 'fail');
    await settle(c.breaker, 'fail');
    expect(c.breaker.state).toBe('open');
    expect(await converge(harness.admin, [a, b, c], name)).toBe(true);
    expect(Number(await harness.admin.get(keys.version))).toBeLessThan(before);
    expect(await settle(a.breaker, 'ok')).toBe('rejected');
    expect(storeErrors([a, b, c])).toEqual([]);
  });

  it('a record written after the expiry, older in number, is adopted from the feed; a write on the expired record lands', async () => {
    const name = harness.begin('ttl feed');
    // No resync for a minute: only the feed and their own writes tell them.
    const quiet = { recordTtl: TTL, resyncInterval: 60_000, auditInterval: 600_000 };
    const a = harness.join(name, { failMax: 3 }, quiet);
    const b = harness.join(name, { failMax: 3 }, quiet);
    const keys = a.store.keys(name);
    await Promise.all([a.breaker.settled(), b.breaker.settled()]);
    for (let i = 0; i < 8; i++) {
      await settle(a.breaker, i % 2 === 0 ? 'fail' : 'ok');
      await a.breaker.settled();
    }
    expect(await converge(harness.admin, [a, b], name)).toBe(true);
    const before = Number(await harness.admin.get(keys.version));
    expect(before).toBeGreaterThanOrEqual(8);
    expect(await gone(harness.admin, keys)).toBe(true);

    // c knows nothing of the expired record: its first failure counted is version 1.
    const c = harness.join(name, { failMax: 3 }, quiet);
    await settle(c.breaker, 'fail');
    await c.breaker.settled();
    expect(await harness.admin.get(keys.version)).toBe('1');
    expect(await converge(harness.admin, [a, b, c], name)).toBe(true);
    expect(a.breaker.context.failures).toBe(1);

    // Gone again (c's success makes it idle); a writes on the record it holds, which is gone.
    await settle(c.breaker, 'ok');
    await c.breaker.settled();
    expect(await converge(harness.admin, [a, b, c], name)).toBe(true);
    expect(await gone(harness.admin, keys)).toBe(true);
    await settle(a.breaker, 'fail');
    await a.breaker.settled();
    expect(await harness.admin.get(keys.counter)).toBe('1');
    expect(await converge(harness.admin, [a, b, c], name)).toBe(true);
    // Two more from b trip it: the fleet counted all three.
    await settle(b.breaker, 'fail');
    await settle(b.breaker, 'fail');
    expect(await converge(harness.admin, [a, b, c], name)).toBe(true);
    expect(a.breaker.state).toBe('open');
    expect(storeErrors([a, b, c])).toEqual([]);
  });
});

describe('recordTtl and the fleet window', () => {
  it('an instance that held an expired record counts in the same window as a new one', async () => {
    const name = harness.begin('ttl window');
    const rate = {
      failMax: Number.POSITIVE_INFINITY,
      failureRateThreshold: 50,
      minimumCalls: 10,
      windowFlush: 100,
    };
    const quiet = { recordTtl: TTL, resyncInterval: 60_000, auditInterval: 600_000 };
    const a = harness.join(name, rate, quiet);
    const keys = a.store.keys(name);
    // Two changes of state (forced open, then reset): a generation a new instance lacks.
    const { windowFlush: _, ...config } = rate;
    await forceOpen(a.store, name, { create: { ...config, resetTimeout: 60_000 } });
    await reset(a.store, name);
    expect(await waitFor(() => a.breaker.context.generation === 2, 5_000)).toBe(true);
    expect(await gone(harness.admin, keys)).toBe(true);
    await a.store.resync();

    const c = harness.join(name, rate, quiet);
    await c.breaker.settled();
    for (let i = 0; i < 6; i++) {
      await settle(a.breaker, 'fail');
      await settle(c.breaker, 'fail');
    }
    await Promise.all([a.breaker.settled(), c.breaker.settled()]);
    expect(await converge(harness.admin, [a, c], name)).toBe(true);
    expect([a.breaker.state, c.breaker.state]).toEqual(['open', 'open']);
  });
});

describe('recordTtl and the operator tools', () => {
  it('a watch hears a trip written after the idle record it knew expired, lower in number', async () => {
    const name = harness.begin('ttl watch');
    const quiet = { recordTtl: TTL, resyncInterval: 60_000, auditInterval: 600_000 };
    const a = harness.join(name, { failMax: 2 }, quiet);
    const keys = a.store.keys(name);
    for (const mode of ['fail', 'ok', 'fail', 'ok'] as const) {
      await settle(a.breaker, mode);
      await a.breaker.settled();
    }
    expect(Number(await harness.admin.get(keys.version))).toBeGreaterThanOrEqual(4);
    const heard: BreakerTransition[] = [];
    const watch = watchBreakers(a.store, (transition) => heard.push(transition), { names: [name] });
    await watch.ready;
    expect(await gone(harness.admin, keys)).toBe(true);

    const b = harness.join(name, { failMax: 2 }, quiet);
    await settle(b.breaker, 'fail');
    await settle(b.breaker, 'fail');
    await b.breaker.settled();
    expect(await harness.admin.get(keys.version)).toBe('2');
    expect(await waitFor(() => heard.some((t) => t.to === 'open'), 5_000)).toBe(true);
    watch.close();
  });

  it("an operator's force open on a breaker whose idle record expired is adopted, not overwritten", async () => {
    const name = harness.begin('ttl operator');
    const quiet = { recordTtl: TTL, resyncInterval: 60_000, auditInterval: 600_000 };
    const a = harness.join(name, { failMax: 3 }, quiet);
    const keys = a.store.keys(name);
    await settle(a.breaker, 'fail');
    await a.breaker.settled();
    // The operator resets it: an idle record, which expires; the instance does not notice.
    await reset(a.store, name);
    expect(await converge(harness.admin, [a], name)).toBe(true);
    expect(await gone(harness.admin, keys)).toBe(true);

    await forceOpen(a.store, name, { create: { failMax: 3, resetTimeout: 60_000 } });
    expect(await waitFor(() => a.breaker.state === 'forcedOpen', 5_000)).toBe(true);
    await settle(a.breaker, 'fail');
    await a.breaker.settled();
    expect(a.breaker.state).toBe('forcedOpen');
    expect(await harness.admin.get(keys.state)).toBe('forcedOpen');
    expect(storeErrors([a])).toEqual([]);
  });
});

describe('recordTtl on ioredis-mock', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  function instance(redis: Redis, name: string) {
    const store = new RedisStore(redis, { recordTtl: TTL });
    const breaker = new CircuitBreaker(name, { store, failMax: 2, resetTimeout: 60_000 });
    const problems: string[] = [];
    breaker.on('storeError', ({ error }) => problems.push(String(error)));
    cleanups.push(
      () => redis.disconnect(),
      () => store.close(),
      () => breaker.dispose(),
    );
    return { store, breaker, problems };
  }

  it('expires an idle record, keeps an open one, and the next record is adopted', async () => {
    const redis = new RedisMock() as unknown as Redis;
    const name = `ttl mock ${Date.now()}`;
    const a = instance(redis, name);
    const keys = a.store.keys(name);
    // Four records: the next one, written where none is stored, is version 1 or 2.
    for (let i = 0; i < 4; i++) {
      const call = a.breaker.call(async () => {
        if (i % 2 === 0) throw new Error('down');
      });
      await call.catch(() => {});
      await a.breaker.settled();
    }
    expect(await redis.get(keys.version)).toBe('4');
    // The mock's TIME is up to 1.5 s off its expiry clock: the record lapses within TTL ± 1.5 s
    // (at once, now and then), but it does lapse.
    expect(await redis.pttl(keys.snapshot)).not.toBe(-1);
    expect(await gone(redis, keys, TTL + 3_000)).toBe(true);

    const c = instance(redis.duplicate(), name);
    for (let i = 0; i < 2; i++) {
      await expect(c.breaker.call(() => Promise.reject(new Error('down')))).rejects.toThrow();
    }
    await c.breaker.settled();
    expect(await redis.pttl(keys.snapshot)).toBe(-1);
    expect(await waitFor(() => a.breaker.state === 'open', 3_000)).toBe(true);
    expect([...a.problems, ...c.problems]).toEqual([]);
  });
});
