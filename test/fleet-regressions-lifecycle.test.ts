import type { Redis } from 'ioredis';
import {
  BreakerDisposedError,
  CircuitBreaker,
  getCircuitBreaker,
  resetAllBreakers,
} from 'statebreaker';
import { RedisStore, type RedisStoreOptions } from 'statebreaker/redis';
import { describe, expect, it } from 'vitest';
import { settle, useFaultHarness } from './support/fault-fleet.js';
import { waitFor } from './support/redis-wait.js';

// Regressions of a breaker's lifecycle and of the fleet's cost in Redis commands: a disposed
// breaker says nothing more and runs nothing, the registry hands out a new breaker after
// dispose, a store keeps one subscriber connection across breakers that come and go, and the
// commands the fleet sends do not grow with idle breakers nor with instances. Each test failed
// against the protocol it guards against; none measures time.

const harness = useFaultHarness();

/** A store on a client of its own, with the breakers made on it; `close` releases all three. */
function ownStore(options: RedisStoreOptions = {}) {
  const redis: Redis = harness.connect();
  const store = new RedisStore(redis, options);
  const breakers: CircuitBreaker[] = [];
  return {
    redis,
    store,
    breakers,
    breaker(name: string, options: ConstructorParameters<typeof CircuitBreaker>[1] = {}) {
      const breaker = new CircuitBreaker(name, { store, ...options });
      breakers.push(breaker);
      return breaker;
    },
    async close() {
      for (const breaker of breakers) breaker.dispose();
      await store.close();
      redis.disconnect();
    },
  };
}

/** Calls per command since the server started, without INFO itself (the test's own probe). */
async function commandCalls(): Promise<Map<string, number>> {
  const info = await harness.admin.info('commandstats');
  const calls = new Map<string, number>();
  for (const line of info.split('\n')) {
    const match = /^cmdstat_([\w|]+):calls=(\d+)/.exec(line.trim());
    if (match && match[1] !== 'info') calls.set(match[1] as string, Number(match[2]));
  }
  return calls;
}

function delta(
  before: Map<string, number>,
  after: Map<string, number>,
  only?: readonly string[],
): number {
  let total = 0;
  for (const [command, calls] of after) {
    if (only === undefined || only.includes(command)) total += calls - (before.get(command) ?? 0);
  }
  return total;
}

async function connectionsReceived(): Promise<number> {
  const info = await harness.admin.info('stats');
  return Number(/total_connections_received:(\d+)/.exec(info)?.[1]);
}

async function pubsubConnections(): Promise<number> {
  const list = String(await harness.admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
  return list.split('\n').filter(Boolean).length;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a disposed breaker', () => {
  // Guards: events after dispose(). A write or a first load in flight when the breaker was
  // disposed still failed into storeError and degraded events, to listeners of a breaker that
  // was gone. A breaker of the same store that is not disposed shows when the store timed out.
  it('emits no storeError nor degraded event after dispose(), with a write or a first load in flight', async () => {
    const name = harness.begin('disposed events');
    const own = ownStore({ timeout: 1_000, resyncInterval: 200 });
    const seen: string[] = [];
    const watch = (breaker: CircuitBreaker, label: string) => {
      breaker.on('storeError', () => seen.push(`${label} storeError`));
      breaker.on('degraded', () => seen.push(`${label} degraded`));
    };
    try {
      const writing = own.breaker(`${name} writing`, { failMax: 3 });
      const control = own.breaker(`${name} control`, { failMax: 3 });
      watch(writing, 'writing');
      watch(control, 'control');
      await writing.settled();
      await control.settled();

      harness.server.pause();
      try {
        // A write in flight: its compare-and-set waits on the frozen Redis.
        expect(await settle(writing, 'fail')).toBe('upstream');
        expect(await settle(control, 'fail')).toBe('upstream');
        writing.dispose();
        // A first load in flight.
        const loading = own.breaker(`${name} loading`);
        watch(loading, 'loading');
        loading.dispose();
        const late = own.breaker(`${name} late control`);
        watch(late, 'late control');
        expect(seen).toEqual([]);
        // The control breakers' calls to the store time out after the disposed ones' did.
        expect(
          await waitFor(
            () => seen.includes('control degraded') && seen.includes('late control degraded'),
            10_000,
          ),
        ).toBe(true);
        await pause(50);
      } finally {
        harness.server.resume();
      }
      expect(seen.filter((event) => !event.includes('control'))).toEqual([]);
    } finally {
      await own.close();
    }
  });

  // Guards: a disposed breaker went on running calls, from its last state and with nothing
  // written. call() and protect()-wrapped calls must reject with BreakerDisposedError, naming
  // the breaker, and never run the function.
  it('rejects call() and protect()-wrapped calls with BreakerDisposedError and never runs the function', async () => {
    const name = harness.begin('disposed call');
    const m = harness.join(name);
    await m.breaker.settled();
    let ran = 0;
    const work = async () => {
      ran++;
      return 'ran';
    };
    const wrapped = m.breaker.protect(work);
    m.breaker.dispose();
    const outcomes = [
      await m.breaker.call(work).then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
      await wrapped().then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
    ];
    expect(ran).toBe(0);
    for (const outcome of outcomes) {
      expect(outcome).toHaveProperty('error');
      const error = (outcome as { error: Error }).error;
      expect(error.name).toBe('BreakerDisposedError');
      expect(error.message).toContain(name);
      expect(error).toBeInstanceOf(BreakerDisposedError);
    }
  });

  // Guards: the registry kept a disposed breaker. getCircuitBreaker(name) after dispose()
  // returned the disposed breaker, which follows nothing and writes nothing; it must return a
  // new breaker that works.
  it('is not what getCircuitBreaker returns afterwards: a new, working breaker is', async () => {
    const name = harness.begin('registry');
    const own = ownStore();
    try {
      const options = { store: own.store, failMax: 2, resetTimeout: 60_000 };
      const first = getCircuitBreaker(name, options);
      await first.settled();
      first.dispose();
      const second = getCircuitBreaker(name, options);
      expect(second).not.toBe(first);
      expect(getCircuitBreaker(name)).toBe(second);
      expect(await settle(second, 'ok')).toBe('ok');
      expect(await settle(second, 'fail')).toBe('upstream');
      expect(await settle(second, 'fail')).toBe('upstream');
      expect(second.state).toBe('open');
      const stateKey = own.store.keys(name).state;
      expect(await waitFor(async () => (await harness.admin.get(stateKey)) === 'open')).toBe(true);
    } finally {
      await resetAllBreakers();
      await own.close();
    }
  });
});

describe('the subscriber connection of a store', () => {
  // Guards: a subscriber connection per breaker that comes and goes. The store closed its
  // subscriber when the last follower left and opened a new one for the next: creating and
  // disposing 20 breakers one after another opened 20 connections.
  it('20 breakers created and disposed one after another open at most one subscriber connection', async () => {
    const name = harness.begin('churn');
    const own = ownStore();
    try {
      await own.redis.ping();
      const before = await connectionsReceived();
      for (let i = 0; i < 20; i++) {
        const breaker = own.breaker(`${name} ${i}`);
        await breaker.settled();
        breaker.dispose();
      }
      const opened = (await connectionsReceived()) - before;
      expect(opened, 'connections opened for 20 breakers in turn').toBeLessThanOrEqual(1);
    } finally {
      await own.close();
    }
  });

  // Guards the same defect from the other side: with subscriberIdleTimeout the connection is
  // kept while breakers come and go, and released once no breaker has followed anything for that
  // long, so that a process may still exit on its own.
  it('is kept for subscriberIdleTimeout after the last breaker leaves, then released', async () => {
    const name = harness.begin('idle subscriber');
    // Connections closed by earlier tests may still be on their way out: wait until the count
    // holds still before taking it as the base.
    let base = await pubsubConnections();
    for (let i = 0; i < 50; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const now = await pubsubConnections();
      if (now === base) break;
      base = now;
    }
    const kept = ownStore({ subscriberIdleTimeout: 60_000 });
    const released = ownStore({ subscriberIdleTimeout: 300 });
    try {
      const a = kept.breaker(`${name} kept`);
      const b = released.breaker(`${name} released`);
      await a.settled();
      await b.settled();
      expect(await pubsubConnections()).toBe(base + 2);
      a.dispose();
      b.dispose();
      // The released store's subscriber goes once idle; the kept one's stays.
      expect(await waitFor(async () => (await pubsubConnections()) === base + 1, 10_000)).toBe(
        true,
      );
      await kept.store.close();
      expect(await waitFor(async () => (await pubsubConnections()) === base)).toBe(true);
    } finally {
      await kept.close();
      await released.close();
    }
  });
});

describe('commands the fleet sends to Redis', () => {
  // Guards: the cost of idle breakers. Every resync round reloaded every followed record, one
  // command per breaker: 2,000 idle breakers cost 2,000 commands every resyncInterval. A round
  // must cost about the same for 2,000 breakers as for 10.
  it('an idle store resyncing 2,000 followed breakers sends about as many commands as one with 10', async () => {
    const name = harness.begin('idle cost');
    const commandsWhileIdle = async (count: number) => {
      const own = ownStore({
        resyncInterval: 200,
        clockSyncInterval: 600_000,
        timeout: 10_000,
      });
      try {
        const breakers = Array.from({ length: count }, (_, i) =>
          own.breaker(`${name} ${count} ${i}`),
        );
        // Each breaker has a record: one failure written, then nothing more.
        await Promise.all(breakers.map((b) => settle(b, 'fail')));
        await Promise.all(breakers.map((b) => b.settled()));
        expect(breakers.every((b) => b.context.failures === 1)).toBe(true);
        const before = await commandCalls();
        // About five resync rounds.
        await pause(1_000);
        return delta(before, await commandCalls());
      } finally {
        await own.close();
      }
    };
    const few = await commandsWhileIdle(10);
    const many = await commandsWhileIdle(2_000);
    expect(many, `commands over ~5 resync rounds: ${few} for 10 breakers`).toBeLessThanOrEqual(
      2 * few + 4,
    );
  });

  // Guards: the cost of timed transitions. open → halfOpen is decided by each instance's own
  // timer; every instance wrote it, and all but one met a conflict: about three compare-and-sets
  // per breaker with three instances. The fleet must write it about once per breaker.
  it('30 breakers on 3 instances half-opening on their timers: about one compare-and-set each', async () => {
    const name = harness.begin('timed writes');
    const names = Array.from({ length: 30 }, (_, i) => `${name} ${i}`);
    const instances = Array.from({ length: 3 }, () =>
      ownStore({ resyncInterval: 600_000, clockSyncInterval: 600_000, timeout: 10_000 }),
    );
    try {
      const options = { failMax: 1, resetTimeout: 1_000, probeLease: 60_000 };
      const fleet = instances.map((own) => names.map((n) => own.breaker(n, options)));
      for (const breakers of fleet) await Promise.all(breakers.map((b) => b.settled()));
      const [tripper, ...followers] = fleet as [CircuitBreaker[], ...CircuitBreaker[][]];
      await Promise.all(tripper.map((b) => settle(b, 'fail')));
      await Promise.all(tripper.map((b) => b.settled()));
      expect(
        await waitFor(() => followers.every((bs) => bs.every((b) => b.state === 'open'))),
      ).toBe(true);
      const before = await commandCalls();
      expect(fleet.every((bs) => bs.every((b) => b.state === 'open'))).toBe(true);

      expect(
        await waitFor(() => fleet.every((bs) => bs.every((b) => b.state === 'halfOpen')), 10_000),
      ).toBe(true);
      for (const breakers of fleet) await Promise.all(breakers.map((b) => b.settled()));
      const writes = delta(before, await commandCalls(), ['evalsha', 'eval']);
      expect(writes, 'compare-and-sets for 30 open → halfOpen transitions').toBeLessThanOrEqual(36);
      for (const n of names) {
        expect(await harness.admin.get(instances[0]?.store.keys(n).state ?? '')).toBe('halfOpen');
      }
    } finally {
      for (const own of instances) await own.close();
    }
  });
});
