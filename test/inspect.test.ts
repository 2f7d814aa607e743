import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createWebSocketInspector } from '@statelyai/inspect';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { type InspectionEvent, SimulatedClock } from 'xstate';
import { CircuitBreaker, CircuitState, MemoryStore } from '../src/index.js';
import { RedisStore } from '../src/stores/redis/index.js';
import { RedisServer } from './support/redis-server.js';

/** What a receiver gets from `createWebSocketInspector`: JSON, one inspection event a message. */
interface Received {
  type: string;
  name?: string;
  sessionId?: string;
  definition?: string;
  event?: { type?: string };
  snapshot?: { value?: unknown; context?: { reason?: string; generation?: number } };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const failing = async (): Promise<never> => {
  throw new Error('upstream 503');
};

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startReceiver() {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  const received: Received[] = [];
  server.on('connection', (socket) => {
    socket.on('message', (data) => received.push(JSON.parse(String(data)) as Received));
  });
  cleanups.push(async () => {
    for (const client of server.clients) client.terminate();
    await new Promise<void>((resolve, reject) =>
      server.close((error) => (error ? reject(error) : resolve())),
    );
  });
  return { url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

describe('inspection', () => {
  it('streams a real breaker to a WebSocket receiver through @statelyai/inspect', async () => {
    const { url, received } = await startReceiver();
    const inspector = createWebSocketInspector({ url });
    cleanups.push(() => inspector.stop());
    const breaker = new CircuitBreaker('inspected-llm', {
      store: new MemoryStore(),
      failMax: 2,
      inspect: inspector.inspect,
    });
    cleanups.push(() => breaker.dispose());

    for (let i = 0; i < 2; i++) await expect(breaker.call(failing)).rejects.toThrow('503');
    expect(breaker.state).toBe(CircuitState.OPEN);

    const openSnapshot = () =>
      received.find((e) => e.type === '@xstate.snapshot' && e.snapshot?.value === 'open');
    await waitFor(() => openSnapshot() !== undefined, 'an open snapshot at the receiver');

    const actor = received.find((e) => e.type === '@xstate.actor');
    // The actor is named after the breaker, so the inspector tells breakers apart.
    expect(actor?.name).toBe('inspected-llm');
    const definition = JSON.parse(actor?.definition ?? '{}') as { id?: string; states?: object };
    expect(definition.id).toBe('breaker');
    // The inspector serializes with sorted keys.
    expect(Object.keys(definition.states ?? {}).sort()).toEqual(
      ['closed', 'open', 'halfOpen', 'forcedOpen', 'disabled'].sort(),
    );
    const open = openSnapshot();
    expect(open?.sessionId).toBe(actor?.sessionId);
    // The inspector shows the records the breaker holds, each a restore of its one actor: the
    // first failure's (closed, one failure counted), then the trip's.
    expect(open?.event?.type).toBe('statebreaker.restore');
    expect(open?.snapshot?.context?.reason).toBe('failMaxReached');
    const snapshots = received.filter((e) => e.type === '@xstate.snapshot');
    expect(snapshots.map((e) => e.snapshot?.value)).toEqual(['closed', 'closed', 'open']);
    expect(
      snapshots.map((e) => (e.snapshot?.context as { failures?: number } | undefined)?.failures),
    ).toEqual([0, 1, 0]);
    // The local steps themselves are not sent to it.
    expect(received.some((e) => e.event?.type === 'FAILURE')).toBe(false);
  });

  it('shows a step once its record is written, not while it is only local', async () => {
    // A store whose writes wait until the test lets them through.
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    class HeldStore extends MemoryStore {
      override async compareAndSet(...args: Parameters<MemoryStore['compareAndSet']>) {
        await held;
        return super.compareAndSet(...args);
      }
    }
    const values: unknown[] = [];
    const breaker = new CircuitBreaker('inspected-held', {
      store: new HeldStore(),
      failMax: 1,
      inspect: (event: InspectionEvent) => {
        if (event.type === '@xstate.snapshot' && 'value' in event.snapshot) {
          values.push(event.snapshot.value);
        }
      },
    });
    cleanups.push(() => breaker.dispose());

    await expect(breaker.call(failing)).rejects.toThrow('503');
    // In force for calls at once, unconfirmed: the inspector still shows the record held.
    expect(breaker.state).toBe(CircuitState.OPEN);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(values).toEqual(['closed']);

    release();
    await breaker.settled();
    expect(values).toEqual(['closed', 'open']);
  });

  it('starts from the record the store holds when created after another instance wrote it', async () => {
    const store = new MemoryStore();
    const writer = new CircuitBreaker('inspected-late', { store, failMax: 1 });
    cleanups.push(() => writer.dispose());
    await expect(writer.call(failing)).rejects.toThrow('503');
    await writer.settled();

    const values: unknown[] = [];
    const watched = new CircuitBreaker('inspected-late', {
      store,
      failMax: 1,
      inspect: (event: InspectionEvent) => {
        if (event.type === '@xstate.snapshot' && 'value' in event.snapshot) {
          values.push(event.snapshot.value);
        }
      },
    });
    cleanups.push(() => watched.dispose());
    expect(watched.state).toBe(CircuitState.OPEN);
    expect(values.at(-1)).toBe('open');
  });

  it('hands XState inspection events to a plain function, through open and half-open', async () => {
    const clock = new SimulatedClock();
    clock.set(1_000_000);
    const events: InspectionEvent[] = [];
    const breaker = new CircuitBreaker('inspected-fn', {
      store: new MemoryStore({ clock }),
      failMax: 2,
      resetTimeout: 30_000,
      inspect: (event: InspectionEvent) => {
        events.push(event);
      },
    });
    cleanups.push(() => breaker.dispose());

    for (let i = 0; i < 2; i++) await expect(breaker.call(failing)).rejects.toThrow('503');
    clock.increment(30_000);
    await waitFor(() => breaker.state === CircuitState.HALF_OPEN, 'half-open');
    await breaker.settled();

    const snapshots = events.flatMap((e) =>
      e.type === '@xstate.snapshot' && 'value' in e.snapshot
        ? [
            {
              value: e.snapshot.value,
              event: e.event.type,
              context: (e.snapshot as { context?: unknown }).context,
            },
          ]
        : [],
    );
    const values = snapshots.map(({ value }) => value);
    expect(values).toContainEqual('open');
    expect(values.at(-1)).toEqual({ halfOpen: 'waiting' });
    // The delayed transition's record, restored into the one actor.
    expect(snapshots.at(-1)?.event).toBe('statebreaker.restore');
    expect((snapshots.at(-1)?.context as { reason?: string } | undefined)?.reason).toBe(
      'resetTimeoutElapsed',
    );
    expect(events.filter((e) => e.type === '@xstate.actor')).toHaveLength(1);
  });

  it('shows an instance that follows another one as one actor for its whole life', async () => {
    const server = await RedisServer.start();
    cleanups.push(() => server.stop());
    const { url, received } = await startReceiver();
    const inspector = createWebSocketInspector({ url });
    cleanups.push(() => inspector.stop());
    const instance = (inspect?: typeof inspector.inspect) => {
      const redis = new Redis({ path: server.path });
      const breaker = new CircuitBreaker('inspected-fleet', {
        store: new RedisStore(redis),
        failMax: 2,
        resetTimeout: 200,
        ...(inspect === undefined ? {} : { inspect }),
      });
      cleanups.push(async () => {
        breaker.dispose();
        await redis.quit();
      });
      return breaker;
    };
    const watched = instance(inspector.inspect);
    const driver = instance();
    const seen = (state: CircuitState) =>
      waitFor(() => watched.state === state, `the watched instance ${state}`);
    await watched.settled();

    // Another instance trips, probes and closes: the watched one only adopts its records.
    for (let i = 0; i < 2; i++) await expect(driver.call(failing)).rejects.toThrow('503');
    await seen(CircuitState.OPEN);
    await waitFor(() => driver.state === CircuitState.HALF_OPEN, 'the driver half-open');
    await driver.call(async () => 'ok');
    await driver.call(async () => 'ok');
    await seen(CircuitState.CLOSED);
    await driver.settled();

    const values = () =>
      received.flatMap((e) => (e.type === '@xstate.snapshot' ? [e.snapshot?.value] : []));
    await waitFor(() => values().at(-1) === 'closed' && values().includes('open'), 'closed');
    const actors = received.filter((e) => e.type === '@xstate.actor');
    expect(actors).toHaveLength(1);
    expect(actors[0]?.name).toBe('inspected-fleet');
    // Every snapshot belongs to that one actor, none shows it stopped, and the adoptions show
    // as restores.
    const sessions = new Set(received.map((e) => e.sessionId));
    expect([...sessions]).toEqual([actors[0]?.sessionId]);
    expect(received.some((e) => e.event?.type === 'xstate.stop')).toBe(false);
    expect(received.some((e) => e.event?.type === 'statebreaker.restore')).toBe(true);
    expect(values()).toContainEqual({ halfOpen: 'waiting' });
  });
});
