import net from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CircuitBreaker } from '../src/index.js';
import { RedisStore } from '../src/stores/redis/index.js';
import { windowKey } from '../src/stores/redis/keys.js';
import { RedisServer } from './support/redis-server.js';

// A window flush whose reply is lost to a cut connection: ioredis sends it again once it has
// reconnected, and the flush must still count once, or six calls could trip a fleet that needs
// ten.

let server: RedisServer;
let admin: Redis;
beforeAll(async () => {
  server = await RedisServer.start();
  admin = new Redis({ path: server.path });
});
afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

// A proxy that, once, forwards a flushWindow call to Redis and then cuts the client's
// connection before Redis's reply reaches it (a network blip at the wrong moment).
function proxy(): Promise<{ port: number; close: () => void; cut: () => number }> {
  let cuts = 0;
  let armed = true;
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((client) => {
    const upstream = net.connect({ path: server.path });
    sockets.add(client);
    sockets.add(upstream);
    let dropping = false;
    client.on('data', (chunk) => {
      upstream.write(chunk);
      if (armed && chunk.toString('latin1').includes(':window')) {
        armed = false;
        dropping = true;
        cuts++;
        setTimeout(() => {
          client.destroy();
          upstream.destroy();
        }, 50);
      }
    });
    upstream.on('data', (chunk) => {
      if (!dropping) client.write(chunk);
    });
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  return new Promise((resolve) =>
    srv.listen(0, '127.0.0.1', () =>
      resolve({
        port: (srv.address() as net.AddressInfo).port,
        close: () => {
          for (const s of sockets) s.destroy();
          srv.close();
        },
        cut: () => cuts,
      }),
    ),
  );
}

it('a flush whose reply was lost is not counted twice', async () => {
  const p = await proxy();
  const redis = new Redis({ port: p.port, host: '127.0.0.1' });
  const store = new RedisStore(redis, { timeout: 2_000 });
  const breaker = new CircuitBreaker('resend', {
    store,
    failMax: Number.POSITIVE_INFINITY,
    failureRateThreshold: 50,
    minimumCalls: 10,
    window: 60_000,
  });
  await breaker.settled();
  for (let i = 0; i < 6; i++)
    await breaker
      .call(async () => {
        throw new Error('x');
      })
      .catch(() => {});
  await breaker.settled();
  const stored = await admin.hgetall(windowKey(store.options.prefix, 'resend'));
  const sum = (kind: string) =>
    Object.entries(stored)
      .filter(([f]) => f.endsWith(`:${kind}`))
      .reduce((n, [, v]) => n + Number(v), 0);
  const state = breaker.state;
  breaker.dispose();
  await store.close();
  redis.disconnect();
  p.close();
  expect(p.cut()).toBe(1);
  expect({ calls: sum('c'), failures: sum('f') }).toEqual({ calls: 6, failures: 6 });
  expect(state).toBe('closed');
});
