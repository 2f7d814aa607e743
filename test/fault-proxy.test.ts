import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FaultProxy, RespFrames, RespProtocolError } from './support/fault-proxy.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';

// The fault proxy against a real redis-server and real ioredis clients. Every fault is shown
// to act (and, where a run without it would look the same, a control run shows the
// difference); orderings are recorded as events, delays are never measured.

let server: RedisServer;
let admin: Redis;
let proxy: FaultProxy;
const clients: Redis[] = [];
let run = 0;

function connect(path: string, options: RedisOptions = {}): Redis {
  // Reconnect at once after a cut: ioredis's default backoff would only slow the file.
  const redis = new Redis({ path, retryStrategy: () => 10, ...options });
  // A cut or a closed proxy is reported as an 'error' event; the tests look at outcomes.
  redis.on('error', () => {});
  clients.push(redis);
  return redis;
}

/** A name no earlier test used, for keys and channels. */
function unique(label: string): string {
  return `${label} ${run}`;
}

/** A client subscribed through the proxy; `events` records `message <payload>`. */
async function subscriber(channel: string, events: string[], via = proxy) {
  const sub = connect(via.path);
  sub.on('message', (_channel: string, message: string) => events.push(`message ${message}`));
  await sub.subscribe(channel);
  return sub;
}

/** Resolves `late` unless the promise settles first: a bound on waiting, not a speed check. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | 'late'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** A promise's outcome as data, so that replies and errors compare alike. */
function outcome(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error: error instanceof Error ? error.message : error }),
  );
}

beforeAll(async () => {
  server = await RedisServer.start();
  admin = new Redis({ path: server.path });
});

beforeEach(async () => {
  run++;
  proxy = await FaultProxy.start(server.path);
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  await proxy.close();
  expect(proxy.errors).toEqual([]);
});

afterAll(async () => {
  admin.disconnect();
  await server.stop();
});

describe('delayed replies', () => {
  /**
   * GETs through the proxy and, once the server has answered (the reply is at the proxy),
   * publishes from a direct client to a subscriber through the proxy. Returns the order in
   * which the subscriber got the message and the GET resolved.
   */
  async function getThenPublish(delayMs: number): Promise<string[]> {
    const [key, channel] = [unique('key'), unique('channel')];
    const events: string[] = [];
    await subscriber(channel, events);
    const commands = connect(proxy.path);
    await commands.set(key, 'value');
    proxy.commands.delayReplies(delayMs);
    const answered = proxy.counters.replies + 1;
    const get = commands.get(key).then((value) => events.push(`get ${value}`));
    expect(await waitFor(() => proxy.counters.replies === answered)).toBe(true);
    await admin.publish(channel, 'hello');
    await get;
    expect(await waitFor(() => events.length === 2)).toBe(true);
    return events;
  }

  it('a reply delayed at the proxy arrives behind a feed message published after it', async () => {
    expect(await getThenPublish(300)).toEqual(['message hello', 'get value']);
    expect(proxy.counters).toMatchObject({
      connections: { command: 1, subscriber: 1 },
      repliesDelayed: 1,
      messagesDelayed: 0,
    });
  });

  it('control: without the delay the same reply arrives first', async () => {
    expect(await getThenPublish(0)).toEqual(['get value', 'message hello']);
    expect(proxy.counters.repliesDelayed).toBe(0);
  });

  it('replies keep their order, and a delay on one connection slows only that one', async () => {
    const key = unique('counter');
    const slow = connect(proxy.path);
    await slow.ping();
    const [slowConnection] = proxy.connections('command');
    const fast = connect(proxy.path);
    await fast.ping();
    slowConnection?.faults.delayReplies(300);

    const events: string[] = [];
    const pipeline = slow.pipeline();
    for (let i = 0; i < 50; i++) pipeline.incr(key);
    const incrs = pipeline.exec().then((results) => {
      events.push('slow');
      return results;
    });
    expect(await waitFor(() => slowConnection?.queued.replies === 50)).toBe(true);
    await fast.get(key).then((value) => events.push(`fast ${value}`));
    const results = await incrs;
    expect(events).toEqual(['fast 50', 'slow']);
    expect(results?.map(([error, value]) => error ?? value)).toEqual(
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    expect(proxy.counters.repliesDelayed).toBe(50);
  });
});

describe('held replies', () => {
  it('wait until released while feed messages pass', async () => {
    const [key, channel] = [unique('key'), unique('channel')];
    const events: string[] = [];
    await subscriber(channel, events);
    const commands = connect(proxy.path);
    await commands.set(key, 'value');

    proxy.commands.hold();
    const answered = proxy.counters.replies + 1;
    const get = commands.get(key).then((value) => events.push(`get ${value}`));
    expect(await waitFor(() => proxy.counters.replies === answered)).toBe(true);
    await admin.publish(channel, 'first');
    expect(await waitFor(() => events.length === 1)).toBe(true);
    expect(await within(get, 100)).toBe('late');
    expect(proxy.connections('command')[0]?.queued).toEqual({ replies: 1, messages: 0 });

    proxy.commands.release();
    await get;
    expect(events).toEqual(['message first', 'get value']);
    expect(await commands.get(key)).toBe('value');
    expect(proxy.counters.repliesDelayed).toBe(0);
  });
});

describe('message faults on subscriber connections', () => {
  it('drops the next K messages: the subscriber receives exactly the others', async () => {
    const channel = unique('channel');
    const events: string[] = [];
    await subscriber(channel, events);
    proxy.subscribers.dropMessages(2);
    for (const payload of ['m1', 'm2', 'm3', 'm4', 'm5', 'end']) {
      await admin.publish(channel, payload);
    }
    expect(await waitFor(() => events.includes('message end'))).toBe(true);
    expect(events).toEqual(['message m3', 'message m4', 'message m5', 'message end']);
    expect(proxy.counters).toMatchObject({ messages: 6, messagesDropped: 2 });
  });

  it('drops every message for a while, yet subscribe confirmations pass', async () => {
    const [channel, other] = [unique('channel'), unique('other')];
    const events: string[] = [];
    const sub = await subscriber(channel, events);
    proxy.subscribers.dropMessages();
    await admin.publish(channel, 'lost 1');
    await admin.publish(channel, 'lost 2');
    expect(await sub.subscribe(other)).toBe(2);
    expect(await waitFor(() => proxy.counters.messagesDropped === 2)).toBe(true);

    proxy.subscribers.dropMessages(0);
    await admin.publish(other, 'kept');
    expect(await waitFor(() => events.length === 1)).toBe(true);
    expect(events).toEqual(['message kept']);
  });

  it('drops on one connection only when told so on that connection', async () => {
    const channel = unique('channel');
    const dropping: string[] = [];
    const intact: string[] = [];
    await subscriber(channel, dropping);
    await subscriber(channel, intact);
    proxy.connections('subscriber')[0]?.faults.dropMessages(1);
    await admin.publish(channel, 'x');
    await admin.publish(channel, 'y');
    expect(await waitFor(() => dropping.length === 1 && intact.length === 2)).toBe(true);
    expect(dropping).toEqual(['message y']);
    expect(intact).toEqual(['message x', 'message y']);
  });

  it('delays messages in order; replies, even on the subscriber connection, overtake them', async () => {
    const [key, channel] = [unique('key'), unique('channel')];
    const events: string[] = [];
    const sub = await subscriber(channel, events);
    const commands = connect(proxy.path);
    await commands.set(key, 'value');

    proxy.subscribers.delayMessages(300);
    await admin.publish(channel, 'm1');
    // A delay is given on arrival at the proxy: m1 must be there before the delay goes.
    expect(await waitFor(() => proxy.counters.messages === 1)).toBe(true);
    // Not delayed itself, m2 still waits behind m1.
    proxy.subscribers.delayMessages(0);
    await admin.publish(channel, 'm2');
    expect(await waitFor(() => proxy.counters.messages === 2)).toBe(true);
    await commands.get(key).then((value) => events.push(`get ${value}`));
    await sub.subscribe(unique('other')).then((count) => events.push(`subscribed ${count}`));
    expect(await waitFor(() => events.length === 4)).toBe(true);
    expect(events).toEqual(['get value', 'subscribed 2', 'message m1', 'message m2']);
    expect(proxy.counters.messagesDelayed).toBe(1);
  });
});

describe('partition and cut', () => {
  it('a partition answers nothing and executes nothing until healed', async () => {
    const [key, channel] = [unique('counter'), unique('channel')];
    const events: string[] = [];
    await subscriber(channel, events);
    const commands = connect(proxy.path);
    await commands.ping();
    commands.on('close', () => events.push('close'));

    proxy.partition();
    const incr = commands.incr(key);
    expect(await within(incr, 200)).toBe('late');
    // The command is buffered at the proxy: the server has not executed it.
    expect(await admin.get(key)).toBeNull();
    await admin.publish(channel, 'during');
    expect(await waitFor(() => events.length > 0, 200)).toBe(false);

    proxy.heal();
    expect(await incr).toBe(1);
    expect(await waitFor(() => events.length === 1)).toBe(true);
    expect(events).toEqual(['message during']);
    expect(await admin.get(key)).toBe('1');
  });

  it('a cut closes every connection; ioredis reconnects, resubscribes and works again', async () => {
    const [key, channel] = [unique('key'), unique('channel')];
    const events: string[] = [];
    await subscriber(channel, events);
    const commands = connect(proxy.path);
    await commands.set(key, 'value');
    commands.on('close', () => events.push('close'));
    commands.on('ready', () => events.push('ready'));

    proxy.cut();
    expect(await waitFor(() => events.includes('ready'))).toBe(true);
    expect(await commands.get(key)).toBe('value');
    expect(await waitFor(() => proxy.counters.connections.subscriber === 2)).toBe(true);
    await admin.publish(channel, 'after');
    expect(await waitFor(() => events.includes('message after'))).toBe(true);
    expect(events).toEqual(['close', 'ready', 'message after']);
    expect(proxy.counters.connections).toEqual({ command: 2, subscriber: 2 });
  });

  it('cutting the subscribers leaves the command connections alone', async () => {
    const events: string[] = [];
    await subscriber(unique('channel'), events);
    const commands = connect(proxy.path);
    await commands.ping();
    commands.on('close', () => events.push('command close'));
    const [before] = proxy.connections('command');

    proxy.cut('subscriber');
    expect(await waitFor(() => proxy.counters.connections.subscriber === 2)).toBe(true);
    expect(await commands.ping()).toBe('PONG');
    expect(proxy.connections('command')).toEqual([before]);
    expect(events).toEqual([]);
  });
});

describe('frames pass intact', () => {
  it('a 1 MB value, both ways, also delayed', async () => {
    const key = unique('big');
    const big = randomBytes(1024 * 1024);
    const commands = connect(proxy.path);
    await commands.set(key, big);
    expect((await admin.getBuffer(key))?.equals(big)).toBe(true);
    expect((await commands.getBuffer(key))?.equals(big)).toBe(true);

    proxy.commands.delayReplies(20);
    const [value, length] = await Promise.all([commands.getBuffer(key), commands.strlen(key)]);
    expect(value?.equals(big)).toBe(true);
    expect(length).toBe(big.length);
    expect(proxy.counters.repliesDelayed).toBe(2);
  });

  it('nested arrays, nil, errors, integers and large strings in EVAL replies', async () => {
    const scripts = [
      `return {1, -2, 'two', {3, {'four', false, {}}, {ok = 'fine'}}, string.rep('x', 300000)}`,
      `return {redis.error_reply('inner'), {string.rep('y', 70000), {string.rep('z', 70000)}}}`,
      `return redis.error_reply('boom')`,
      `return false`,
      `return ''`,
    ];
    const commands = connect(proxy.path);
    proxy.commands.delayReplies(10);
    for (const script of scripts) {
      const direct = await outcome(admin.eval(script, 0));
      expect(await outcome(commands.eval(script, 0))).toEqual(direct);
    }
    // Pipelined, the replies share chunks and split across them.
    const pipeline = commands.pipeline();
    for (const script of [...scripts, ...scripts]) pipeline.eval(script, 0);
    const results = (await pipeline.exec())?.map(([error, value]) => error?.message ?? value);
    const expected = [];
    for (const script of [...scripts, ...scripts]) {
      expected.push(await admin.eval(script, 0).catch((error: Error) => error.message));
    }
    expect(results).toEqual(expected);
  });

  it('the frame splitter finds the same frames whatever the chunking', () => {
    const frames = [
      '+OK\r\n',
      '-ERR wrong\r\n',
      ':-42\r\n',
      '$-1\r\n',
      '$0\r\n\r\n',
      `$12\r\nhas\r\nCRLF\r\n!\r\n`,
      '*-1\r\n',
      '*0\r\n',
      '*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nhey\r\n',
      '*2\r\n*2\r\n:1\r\n*0\r\n*3\r\n$-1\r\n*1\r\n-E x\r\n+s\r\n',
      `*1\r\n$100000\r\n${'b'.repeat(100000)}\r\n`,
      // RESP3: null, boolean, double, big number, verbatim string, bulk error, a push, a map
      // (two elements per entry, as HELLO 3 answers), a set.
      '_\r\n',
      '#t\r\n',
      ',1.5\r\n',
      '(12345678901234567890\r\n',
      '=8\r\ntxt:hey!\r\n',
      '!5\r\nERR x\r\n',
      '>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nhey\r\n',
      '%2\r\n+server\r\n+redis\r\n+modules\r\n*0\r\n',
      '~2\r\n:1\r\n:2\r\n',
    ].map((frame) => Buffer.from(frame, 'latin1'));
    const stream = Buffer.concat(frames);
    const split = (sizes: () => number) => {
      const splitter = new RespFrames();
      const found: Buffer[] = [];
      for (let at = 0; at < stream.length; ) {
        const size = sizes();
        found.push(...splitter.push(stream.subarray(at, at + size)));
        at += size;
      }
      return found.map((frame) => frame.toString('latin1'));
    };
    const expected = frames.map((frame) => frame.toString('latin1'));
    expect(split(() => stream.length)).toEqual(expected);
    expect(split(() => 1)).toEqual(expected);
    let seed = 7;
    const random = () => {
      seed = (seed * 48271) % 2147483647;
      return 1 + (seed % 9000);
    };
    expect(split(random)).toEqual(expected);
    expect(() => new RespFrames().push(Buffer.from('?what\r\n'))).toThrow(RespProtocolError);
    expect(() => new RespFrames().push(Buffer.from('$x\r\n'))).toThrow(RespProtocolError);
  });
});

describe('several proxies', () => {
  it('are independent, and a closed one leaves nothing behind', async () => {
    const other = await FaultProxy.start(server.path);
    try {
      const viaThis = connect(proxy.path);
      const viaOther = connect(other.path);
      await Promise.all([viaThis.ping(), viaOther.ping()]);
      const closes: string[] = [];
      viaOther.on('close', () => closes.push('close'));

      proxy.partition();
      expect(await within(viaThis.ping(), 100)).toBe('late');
      expect(await viaOther.ping()).toBe('PONG');

      await other.close();
      expect(await waitFor(() => closes.length > 0)).toBe(true);
      expect(existsSync(other.path)).toBe(false);
      expect(other.connections()).toEqual([]);
      proxy.heal();
      expect(await viaThis.ping()).toBe('PONG');
    } finally {
      await other.close();
    }
  });
});
