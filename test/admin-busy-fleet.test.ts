import { Redis } from 'ioredis';
import { CircuitBreaker } from 'statebreaker';
import { disable, forceOpen, readBreaker, reset } from 'statebreaker/admin';
import { RedisStore } from 'statebreaker/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from './support/fault-proxy.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';

// Operators always win: a fleet busy writing its failure counts (every failure is a change, so
// each instance writes as fast as its round trip allows) and an operator whose replies come
// 10 ms late (a proxy between it and Redis). Each of the operator's compare-and-sets would
// meet a fleet write within its round trip; the action must land all the same.

let server: RedisServer;
let proxy: FaultProxy;
let run = 0;

beforeAll(async () => {
  server = await RedisServer.start();
  proxy = await FaultProxy.start(server.path);
  proxy.commands.delayReplies(10);
});

afterAll(async () => {
  await proxy?.close();
  await server?.stop();
});

async function busyFleet(instances: number) {
  const name = `busy ${++run}`;
  const clients = Array.from({ length: instances }, () => new Redis({ path: server.path }));
  const stores = clients.map((redis) => new RedisStore(redis));
  const breakers = stores.map(
    (store) => new CircuitBreaker(name, { store, failMax: Number.MAX_SAFE_INTEGER }),
  );
  await Promise.all(breakers.map((breaker) => breaker.settled()));
  let stop = false;
  const loops = breakers.map(async (breaker) => {
    while (!stop) {
      await breaker
        .call(async () => {
          throw new Error('upstream');
        })
        .catch(() => undefined);
      await new Promise(setImmediate);
    }
  });
  const watcher = new Redis({ path: server.path });
  const version = async () => Number(await watcher.get(`circuit_breaker:{${name}}:version`));
  // Busy before the operator acts: the fleet has written many records.
  await waitFor(async () => (await version()) > 200, 10_000);
  const close = async () => {
    stop = true;
    await Promise.all(loops);
    for (const breaker of breakers) breaker.dispose();
    await Promise.all(stores.map((store) => store.close()));
    for (const redis of clients) redis.disconnect();
    watcher.disconnect();
  };
  return { name, breakers, version, close };
}

describe('the operator fence', () => {
  it('is lifted when the action meets a conflict and then has nothing to write', async () => {
    const name = `fence ${++run}`;
    const clients = [0, 1, 2].map(() => new Redis({ path: server.path }));
    const [fleetStore, operator, other] = clients.map((redis) => new RedisStore(redis)) as [
      RedisStore,
      RedisStore,
      RedisStore,
    ];
    const breaker = new CircuitBreaker(name, { store: fleetStore });
    try {
      await breaker
        .call(async () => {
          throw new Error('upstream');
        })
        .catch(() => undefined);
      await breaker.settled();
      // Another operator's action lands within this operator's round trip: its write conflicts
      // (setting the fence), and on the record that won there is nothing left to do.
      let interfere = true;
      const racing = new Proxy(operator, {
        get(target, key) {
          if (key !== 'compareAndSet') {
            const value: unknown = Reflect.get(target, key, target);
            return typeof value === 'function' ? value.bind(target) : value;
          }
          return async (...args: Parameters<RedisStore['compareAndSet']>) => {
            if (interfere) {
              interfere = false;
              await forceOpen(other, name);
            }
            return target.compareAndSet(...args);
          };
        },
      });
      const result = await forceOpen(racing, name);
      expect(result.changed).toBe(false);
      expect(await clients[0]?.exists(`circuit_breaker:{${name}}:fence`)).toBe(0);
    } finally {
      breaker.dispose();
      await Promise.all([fleetStore.close(), operator.close(), other.close()]);
      for (const redis of clients) redis.disconnect();
    }
  });
});

describe("the breaker's own operator fence", () => {
  it('is lifted when its write meets a conflict and the record that won leaves nothing to write', async () => {
    const name = `own fence ${++run}`;
    const clients = [0, 1].map(() => new Redis({ path: server.path }));
    const [mine, other] = clients.map((redis) => new RedisStore(redis)) as [RedisStore, RedisStore];
    let interfere = true;
    const racing = new Proxy(mine, {
      get(target, key) {
        if (key !== 'compareAndSet') {
          const value: unknown = Reflect.get(target, key, target);
          return typeof value === 'function' ? value.bind(target) : value;
        }
        return async (...args: Parameters<RedisStore['compareAndSet']>) => {
          if (interfere && args[4] !== undefined) {
            interfere = false;
            await forceOpen(other, name, { create: {} });
          }
          return target.compareAndSet(...args);
        };
      },
    });
    const breaker = new CircuitBreaker(name, { store: racing });
    try {
      await breaker.settled();
      breaker.forceOpen();
      await breaker.settled();
      expect(interfere).toBe(false);
      expect(breaker.state).toBe('forcedOpen');
      expect(await clients[0]?.exists(`circuit_breaker:{${name}}:fence`)).toBe(0);
    } finally {
      breaker.dispose();
      await Promise.all([mine.close(), other.close()]);
      for (const redis of clients) redis.disconnect();
    }
  });
});

describe('an operator behind a slow link, on a fleet writing hundreds of records a second', () => {
  it('force open, disable and reset land, and every instance follows', async () => {
    const fleet = await busyFleet(3);
    const operatorClient = new Redis({ path: proxy.path });
    const operator = new RedisStore(operatorClient);
    try {
      const before = await fleet.version();
      const started = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 200));
      const rate = ((await fleet.version()) - before) / ((Date.now() - started) / 1000);
      console.log(`fleet writes: ${Math.round(rate)} records/s`);
      const opened = await forceOpen(operator, fleet.name);
      expect(opened.breaker.state).toBe('forcedOpen');
      expect(await waitFor(() => fleet.breakers.every((b) => b.state === 'forcedOpen'))).toBe(true);
      // Forced open: the fleet's calls are rejected, it writes nothing; back to counting after
      // a reset, and busy again before the next action.
      const reopened = await reset(operator, fleet.name);
      expect(reopened.breaker.state).toBe('closed');
      const busyAgain = await fleet.version();
      await waitFor(async () => (await fleet.version()) > busyAgain + 100, 10_000);
      const disabled = await disable(operator, fleet.name);
      expect(disabled.breaker.state).toBe('disabled');
      expect(await waitFor(() => fleet.breakers.every((b) => b.state === 'disabled'))).toBe(true);
      await reset(operator, fleet.name);
      const busyOnceMore = await fleet.version();
      await waitFor(async () => (await fleet.version()) > busyOnceMore + 100, 10_000);
      const closed = await reset(operator, fleet.name);
      expect(closed.changed).toBe(true);
      expect((await readBreaker(operator, fleet.name)).state).toBe('closed');
    } finally {
      await operator.close();
      operatorClient.disconnect();
      await fleet.close();
    }
  }, 60_000);

  it("the breaker's own forceOpen() on the slow link lands in the store", async () => {
    const fleet = await busyFleet(3);
    const operatorClient = new Redis({ path: proxy.path });
    const operator = new RedisStore(operatorClient);
    const own = new CircuitBreaker(fleet.name, {
      store: operator,
      failMax: Number.MAX_SAFE_INTEGER,
    });
    try {
      await own.settled();
      own.forceOpen();
      expect(
        await waitFor(() => fleet.breakers.every((b) => b.state === 'forcedOpen'), 10_000),
      ).toBe(true);
      own.reset();
      const busyAgain = await fleet.version();
      await waitFor(async () => (await fleet.version()) > busyAgain + 100, 10_000);
      own.disable();
      expect(await waitFor(() => fleet.breakers.every((b) => b.state === 'disabled'), 10_000)).toBe(
        true,
      );
    } finally {
      own.dispose();
      await operator.close();
      operatorClient.disconnect();
      await fleet.close();
    }
  }, 60_000);
});
