import { Redis } from 'ioredis';
import { CircuitBreaker, type StateChangeEvent } from 'statebreaker';
import { RedisStore } from 'statebreaker/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from './support/fault-proxy.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';

// Listeners hear only what the fleet's record holds, each change once: the record an instance
// first reads is the state it starts in (no change), and a local trip that a newer record
// overrules was never the fleet's (nothing heard), on a real redis-server.

let server: RedisServer;
let proxy: FaultProxy;
let run = 0;

beforeAll(async () => {
  server = await RedisServer.start();
  proxy = await FaultProxy.start(server.path);
});

afterAll(async () => {
  await proxy?.close();
  await server?.stop();
});

const fail = (breaker: CircuitBreaker) =>
  breaker
    .call(async () => {
      throw new Error('upstream');
    })
    .catch(() => undefined);

function heard(breaker: CircuitBreaker): string[] {
  const changes: string[] = [];
  breaker.on('stateChange', (event: StateChangeEvent) =>
    changes.push(`${event.from}→${event.to}:${event.reason}`),
  );
  return changes;
}

describe('what listeners hear on Redis', () => {
  it('nothing when an instance starts on a record already open', async () => {
    const name = `started open ${++run}`;
    const clients = [0, 1].map(() => new Redis({ path: server.path }));
    const [first, second] = clients.map((redis) => new RedisStore(redis)) as [
      RedisStore,
      RedisStore,
    ];
    const tripper = new CircuitBreaker(name, { store: first, failMax: 2 });
    try {
      await fail(tripper);
      await fail(tripper);
      await tripper.settled();
      expect(tripper.state).toBe('open');
      const started = new CircuitBreaker(name, { store: second, failMax: 2 });
      const changes = heard(started);
      await started.settled();
      expect(started.state).toBe('open');
      expect(changes).toEqual([]);
      started.dispose();
    } finally {
      tripper.dispose();
      await Promise.all([first.close(), second.close()]);
      for (const redis of clients) redis.disconnect();
    }
  });

  it('nothing when a local trip is overruled by a newer record (a success elsewhere reset the streak)', async () => {
    const name = `overruled ${++run}`;
    const viaProxy = new Redis({ path: proxy.path });
    const direct = new Redis({ path: server.path });
    const lagging = new RedisStore(viaProxy);
    const other = new RedisStore(direct);
    const a = new CircuitBreaker(name, { store: lagging, failMax: 3 });
    const b = new CircuitBreaker(name, { store: other, failMax: 3 });
    try {
      await Promise.all([a.settled(), b.settled()]);
      await fail(a);
      await fail(a);
      await a.settled();
      expect(await waitFor(() => b.context.failures === 2)).toBe(true);
      const changes = heard(a);
      // a misses b's success: its next failure trips on its own count.
      proxy.subscribers.dropMessages();
      await b.call(async () => 'ok');
      await b.settled();
      await fail(a);
      expect(a.state).toBe('open');
      await a.settled();
      // The write met b's record (the streak reset), replayed the failure on it: one failure.
      expect(a.state).toBe('closed');
      expect(a.context.failures).toBe(1);
      expect(changes).toEqual([]);
    } finally {
      proxy.subscribers.clear();
      a.dispose();
      b.dispose();
      await Promise.all([lagging.close(), other.close()]);
      viaProxy.disconnect();
      direct.disconnect();
    }
  });
});
