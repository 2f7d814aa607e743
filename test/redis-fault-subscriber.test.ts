import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { converge, type Member, member, settle, watchRejections } from './support/fault-fleet.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';

// The change feed's connection dies while the command connection lives: the messages published
// meanwhile are lost. Instances must heal through the periodic resync and through their next
// write, before the subscriber is back (its reconnect is held off by a slow retry strategy).

let server: RedisServer;
let admin: Redis;
const members: Member[] = [];
let rejections: ReturnType<typeof watchRejections>;
let run = 0;

beforeAll(async () => {
  server = await RedisServer.start();
  admin = new Redis({ path: server.path });
});

afterEach(async () => {
  for (const m of members.splice(0)) await m.close();
  rejections?.stop();
  expect(rejections?.seen ?? []).toEqual([]);
});

afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

// Reconnects wait this long: the subscriber stays away while the test looks at healing.
const SLOW_RECONNECT = { retryStrategy: () => 20_000 };

function join(name: string, resyncInterval: number): Member {
  const m = member(server.path, name, {}, { resyncInterval }, SLOW_RECONNECT);
  members.push(m);
  return m;
}

async function subscribers(): Promise<number> {
  const list = (await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string;
  return list.split('\n').filter((line) => line.includes('sub=1')).length;
}

describe('the subscriber connection dies', () => {
  it('instances heal by the periodic resync and by their next write while it is away', async () => {
    rejections = watchRejections();
    const name = `subscriber ${++run}`;
    const tripper = join(name, 60_000);
    const resyncing = join(name, 200);
    const writing = join(name, 60_000);
    const fleet = [tripper, resyncing, writing];
    for (const m of fleet) await m.breaker.settled();
    await settle(tripper.breaker, 'ok');
    expect(await waitFor(async () => (await subscribers()) === 3)).toBe(true);

    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    expect(await waitFor(async () => (await subscribers()) === 0)).toBe(true);
    await settle(tripper.breaker, 'fail');
    await settle(tripper.breaker, 'fail');
    expect(tripper.breaker.state).toBe('open');
    await tripper.breaker.settled();

    // The periodic resync (200 ms) brings the trip to the second instance.
    expect(await waitFor(() => resyncing.breaker.state === 'open')).toBe(true);
    // The third instance resyncs only every minute: its next write conflicts, and it adopts
    // the stored record (its own failure belongs to the older generation and is dropped).
    expect(writing.breaker.state).toBe('closed');
    expect(await settle(writing.breaker, 'fail')).toBe('upstream');
    expect(await waitFor(() => writing.breaker.state === 'open')).toBe(true);
    // All of it happened with no subscriber connected: the feed did not do it.
    expect(await subscribers()).toBe(0);
    expect(await converge(admin, fleet, name)).toBe(true);
    for (const m of fleet) expect(m.events).not.toContain('degraded');
  });
});
