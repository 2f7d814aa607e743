import { describe, expect, it, vi } from 'vitest';
import { SimulatedClock } from 'xstate';
import {
  AllTargetsFailedError,
  CallTimeoutError,
  CircuitBreaker,
  type FailoverEvent,
  failover,
  MemoryStore,
  RouteTimeoutError,
} from '../src/index.js';
import { chunksOf, collectAll, manualSource } from './support/chunk-source.js';
import { deferred, flush, T0, trip, UpstreamError } from './support/fake-upstream.js';

/** Three breakers on one store and clock, a route over them, and its failover events. */
function setup(
  options: ConstructorParameters<typeof CircuitBreaker>[1] = {},
  route: Parameters<typeof failover>[1] = {},
) {
  const clock = new SimulatedClock();
  clock.set(T0);
  const store = new MemoryStore({ clock });
  const classify = (e: unknown) => ((e as UpstreamError).status === 400 ? 'ignored' : 'failure');
  const make = (name: string) => new CircuitBreaker(name, { store, classify, ...options });
  const [a, b, c] = [make('a'), make('b'), make('c')];
  const r = failover(
    [
      { breaker: a, value: 'A' },
      { breaker: b, value: 'B' },
      { breaker: c, value: 'C' },
    ],
    route,
  );
  const events: FailoverEvent[] = [];
  r.on('failover', (e) => events.push(e));
  const calls: string[] = [];
  return { clock, store, a, b, c, route: r, events, calls };
}

/** An upstream per target: those in `down` fail with `status`. */
function upstream(calls: string[], down: string[], status = 503) {
  return async (value: string) => {
    calls.push(value);
    if (down.includes(value)) throw new UpstreamError(status);
    return `from ${value}`;
  };
}

describe('failover routes: call', () => {
  it('calls the first target when it answers', async () => {
    const { route, calls, events } = setup();
    await expect(route.call(upstream(calls, []))).resolves.toBe('from A');
    expect(calls).toEqual(['A']);
    expect(events).toEqual([]);
    expect(route.name).toBe('a>b>c');
  });

  it('moves on when an admitted call fails, and counts the failure on its breaker', async () => {
    const { route, calls, events, a } = setup({ failMax: 3 });
    await expect(route.call(upstream(calls, ['A']))).resolves.toBe('from B');
    expect(calls).toEqual(['A', 'B']);
    expect(a.context.failures).toBe(1);
    expect(events).toEqual([
      { route: 'a>b>c', from: 'a', to: 'b', reason: 'failure', state: 'closed' },
    ]);
  });

  it("keeps the caller's answer and the other listeners when a failover listener throws", async () => {
    const { route, calls, events } = setup();
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      route.on('failover', () => {
        throw new Error('bug in a logging listener');
      });
      const after: string[] = [];
      route.on('failover', (e) => after.push(e.from));
      await expect(route.call(upstream(calls, ['A']))).resolves.toBe('from B');
      expect({ calls, heard: events.length, after }).toEqual({
        calls: ['A', 'B'],
        heard: 1,
        after: ['a'],
      });
      expect(String(warn.mock.calls[0]?.[0])).toContain('bug in a logging listener');
    } finally {
      warn.mockRestore();
    }
  });

  it('skips a target whose breaker rejects, at once, without calling it', async () => {
    const { route, calls, events, a } = setup();
    await trip(a);
    await expect(route.call(upstream(calls, []))).resolves.toBe('from B');
    expect(calls).toEqual(['B']);
    expect(events).toMatchObject([{ from: 'a', to: 'b', reason: 'rejected', state: 'open' }]);
  });

  it('throws an ignored error to the caller and tries no other target', async () => {
    const { route, calls, a } = setup();
    const error = await route.call(upstream(calls, ['A'], 400)).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 400 });
    expect(calls).toEqual(['A']);
    expect(a.context.failures).toBe(0);
  });

  it('tries each target at most once and then says how each one failed', async () => {
    const { route, calls, events, b } = setup();
    await trip(b);
    const error = await route.call(upstream(calls, ['A', 'C'])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AllTargetsFailedError);
    const all = error as AllTargetsFailedError;
    expect(all.route).toBe('a>b>c');
    expect(all.attempts.map((x) => [x.name, x.state])).toEqual([
      ['a', 'closed'],
      ['b', 'open'],
      ['c', 'closed'],
    ]);
    expect(all.attempts[0]?.error).toBeInstanceOf(UpstreamError);
    expect(all.attempts[1]?.retryAfterMs).toBe(30_000);
    expect(calls).toEqual(['A', 'C']);
    expect(events.map((e) => [e.from, e.to, e.reason])).toEqual([
      ['a', 'b', 'failure'],
      ['b', 'c', 'rejected'],
      ['c', null, 'failure'],
    ]);
  });

  it('names in its message the error of a target whose failure tripped it', async () => {
    const { route, calls } = setup({ failMax: 1 });
    const error = (await route.call(upstream(calls, ['A', 'B', 'C'])).catch((e) => e)) as Error;
    expect(error).toBeInstanceOf(AllTargetsFailedError);
    expect(error.message).toBe(
      'every target of route "a>b>c" rejected or failed: a failed: upstream answered 503 (now open); b failed: upstream answered 503 (now open); c failed: upstream answered 503 (now open)',
    );
  });

  it("moves on when a target exceeds its breaker's timeout, even if the call ignores its signal", async () => {
    const { route, clock, events } = setup({ timeout: 1_000 });
    const hung = deferred<string>();
    const pending = route.call((value) => (value === 'A' ? hung.promise : `from ${value}`));
    await flush();
    clock.increment(1_000);
    await expect(pending).resolves.toBe('from B');
    expect(events).toMatchObject([{ from: 'a', to: 'b', reason: 'timeout' }]);
  });

  it("stops everything on the caller's abort: no further target, counted nowhere", async () => {
    const { route, calls, a, b } = setup({ failMax: 1 });
    const controller = new AbortController();
    const pending = route.call(
      async (value, signal) => {
        calls.push(value);
        await new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason)),
        );
      },
      { signal: controller.signal },
    );
    await flush();
    controller.abort(new Error('user left'));
    await expect(pending).rejects.toThrow('user left');
    expect(calls).toEqual(['A']);
    expect([a.state, b.state]).toEqual(['closed', 'closed']);
  });

  it('gives up at the route timeout, whatever the targets are doing', async () => {
    const { route, clock, calls, a } = setup({ failMax: 1 }, { timeout: 500 });
    const pending = route.call(async (value) => {
      calls.push(value);
      return new Promise<string>(() => undefined);
    });
    await flush();
    clock.increment(500);
    const error = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RouteTimeoutError);
    expect(error).toBeInstanceOf(CallTimeoutError);
    expect(calls).toEqual(['A']);
    // The route's budget ran out, not the upstream's: the breaker counts nothing.
    expect(a.state).toBe('closed');
  });

  it('gives up at the route timeout while a half-open admission waits on the store, and frees the slot', async () => {
    const clock = new SimulatedClock();
    clock.set(T0);
    let held: ReturnType<typeof deferred<void>> | undefined;
    class HeldStore extends MemoryStore {
      override async compareAndSet(...args: Parameters<MemoryStore['compareAndSet']>) {
        await held?.promise;
        return super.compareAndSet(...args);
      }
    }
    const breaker = new CircuitBreaker('held', { store: new HeldStore({ clock }), failMax: 1 });
    await trip(breaker);
    clock.increment(breaker.config.resetTimeout);
    expect(breaker.state).toBe('halfOpen');
    held = deferred<void>();
    const route = failover([{ breaker, value: 'A' }], { timeout: 100 });
    const calls: string[] = [];
    let storeAnswered = false;
    const rejected = route.call(upstream(calls, [])).then(
      () => 'answered',
      (error: unknown) => ({ error, storeAnswered }),
    );
    await flush();
    clock.increment(100);
    expect(await rejected).toEqual({ error: expect.any(RouteTimeoutError), storeAnswered: false });
    storeAnswered = true;
    held.resolve();
    await flush();
    expect({ calls, probes: Object.keys(breaker.context.probes) }).toEqual({
      calls: [],
      probes: [],
    });
    breaker.dispose();
  });

  it('refuses bad targets and options, naming them', () => {
    const { a } = setup();
    expect(() => failover([])).toThrow('failover() needs a non-empty array of targets');
    expect(() => failover([{ breaker: {} as CircuitBreaker, value: 1 }])).toThrow(
      'failover() target 0 must be { breaker: CircuitBreaker, value }',
    );
    expect(() =>
      failover([
        { breaker: a, value: 1 },
        { breaker: a, value: 2 },
      ]),
    ).toThrow('failover() target 1: breaker "a" is already a target of this route');
    expect(() => failover([{ breaker: a, value: 1 }], { timeout: -5 })).toThrow(
      'failover() option timeout must be more than 0',
    );
    expect(() => failover([{ breaker: a, value: 1 }], { panic: 'yes' as never })).toThrow(
      'failover() option panic must be a boolean, got "yes"',
    );
    expect(() => failover([{ breaker: a, value: 1 }], { retries: 2 } as never)).toThrow(
      'unknown failover() option "retries"',
    );
  });
});

describe('failover routes: panic', () => {
  it('lets the target whose open period ends soonest take one early probe, fleet-wide bounded', async () => {
    const { route, calls, a, b, c, clock, events } = setup(
      { successThreshold: 1 },
      { panic: true },
    );
    await trip(b);
    clock.increment(10_000);
    await trip(c);
    clock.increment(5_000);
    await trip(a);
    // b's open period ends first (in 20 s), then c's (25 s), then a's (30 s).
    const held = deferred<string>();
    const first = route.call((value) => {
      calls.push(value);
      return held.promise;
    });
    await flush();
    expect(calls).toEqual(['B']);
    expect(b.state).toBe('halfOpen');
    expect(b.context.reason).toBe('panicProbe');
    expect(Object.keys(b.context.probes)).toHaveLength(1);
    expect(events.map((e) => [e.from, e.to])).toEqual([
      ['a', 'b'],
      ['b', 'c'],
      ['c', 'b'],
    ]);
    // While the early probe is out, its slot is taken: the next call is refused everywhere.
    const second = await route.call(upstream(calls, [])).catch((e: unknown) => e);
    expect(second).toBeInstanceOf(AllTargetsFailedError);
    expect(calls).toEqual(['B']);
    held.resolve('recovered');
    await expect(first).resolves.toBe('recovered');
    expect(b.state).toBe('closed');
  });

  it('takes an ordinary probe when the panic target half-opened meanwhile', async () => {
    const { route, calls, a, b, c, clock } = setup({ successThreshold: 1 }, { panic: true });
    await trip(b);
    clock.increment(10_000);
    await trip(a);
    await trip(c);
    // As the route leaves c for its panic target b, b's open period ends.
    route.on('failover', (e) => {
      if (e.from === 'c') clock.increment(20_000);
    });
    await expect(route.call(upstream(calls, []))).resolves.toBe('from B');
    expect(calls).toEqual(['B']);
    expect(b.state).toBe('closed');
  });

  it('reopens the target when the early probe fails, and reports every attempt', async () => {
    const { route, calls, a, b } = setup({}, { panic: true });
    await trip(a);
    await trip(b);
    const { c } = { c: route.targets[2]?.breaker as CircuitBreaker };
    await trip(c);
    const error = (await route
      .call(upstream(calls, ['A', 'B', 'C']))
      .catch((e: unknown) => e)) as AllTargetsFailedError;
    expect(error).toBeInstanceOf(AllTargetsFailedError);
    expect(calls).toEqual(['A']);
    expect(a.state).toBe('open');
    expect(a.context.reason).toBe('probeFailed');
    expect(error.attempts.map((x) => x.name)).toEqual(['a', 'b', 'c', 'a']);
  });

  it('takes no early probe without the option, nor when a target is forced open', async () => {
    const plain = setup();
    await trip(plain.a);
    await trip(plain.b);
    await trip(plain.c);
    await expect(plain.route.call(upstream(plain.calls, []))).rejects.toBeInstanceOf(
      AllTargetsFailedError,
    );
    expect(plain.calls).toEqual([]);
    const forced = setup({}, { panic: true });
    forced.a.forceOpen();
    await trip(forced.b);
    await trip(forced.c);
    await expect(forced.route.call(upstream(forced.calls, []))).rejects.toBeInstanceOf(
      AllTargetsFailedError,
    );
    expect(forced.calls).toEqual([]);
  });
});

describe('failover routes: stream', () => {
  it('fails over before the first chunk, from a failed or stalled target', async () => {
    const { route, clock, events, a } = setup({ firstChunkTimeout: 1_000 });
    const sources = {
      A: manualSource<string>(),
      B: manualSource<string>(),
      C: manualSource<string>(),
    };
    const pending = collectAll(
      route.stream((value, signal) => sources[value as 'A' | 'B' | 'C'].open(signal)),
    );
    await flush();
    sources.A.fail(new UpstreamError(503));
    await flush();
    expect(sources.B.state.opened).toBe(1);
    clock.increment(1_000);
    await flush();
    expect(sources.B.state.signal?.aborted).toBe(true);
    sources.C.push('c1', 'c2');
    sources.C.end();
    await expect(pending).resolves.toEqual(['c1', 'c2']);
    expect(events.map((e) => [e.from, e.to, e.reason])).toEqual([
      ['a', 'b', 'failure'],
      ['b', 'c', 'timeout'],
    ]);
    expect(a.context.failures).toBe(1);
  });

  it('hands an error after the first chunk to the consumer, without failing over', async () => {
    const { route, b } = setup();
    const source = manualSource<string>();
    const opened: string[] = [];
    const stream = route.stream((value, signal) => {
      opened.push(value);
      return source.open(signal);
    });
    const seen: string[] = [];
    source.push('a1');
    const done = (async () => {
      for await (const chunk of stream) {
        seen.push(chunk);
        source.fail(new UpstreamError(502));
      }
    })();
    await expect(done).rejects.toMatchObject({ status: 502 });
    expect(seen).toEqual(['a1']);
    expect(opened).toEqual(['A']);
    expect(b.context.failures).toBe(0);
  });

  it('calls nothing until iterated, and skips open targets', async () => {
    const { route, a } = setup();
    await trip(a);
    const opened: string[] = [];
    const stream = route.stream((value) => {
      opened.push(value);
      return chunksOf(value);
    });
    await flush();
    expect(opened).toEqual([]);
    expect(await collectAll(stream)).toEqual(['B']);
  });

  it('takes the panic probe for a stream too, when every target is open', async () => {
    const { route, a, b, c, clock } = setup({ successThreshold: 1 }, { panic: true });
    await trip(c);
    clock.increment(1_000);
    await trip(a);
    await trip(b);
    const opened: string[] = [];
    const stream = route.stream((value) => {
      opened.push(value);
      return chunksOf(`${value}1`, `${value}2`);
    });
    expect(await collectAll(stream)).toEqual(['C1', 'C2']);
    expect(opened).toEqual(['C']);
    expect(c.state).toBe('closed');
    expect([a.state, b.state]).toEqual(['open', 'open']);
  });

  it('gives two pulls asked for while it opens a chunk each', async () => {
    const { route } = setup();
    const source = manualSource<string>();
    const iterator = route
      .stream(() => source.open(new AbortController().signal))
      [Symbol.asyncIterator]();
    const pulls = [iterator.next(), iterator.next()];
    source.push('a', 'b');
    expect(await Promise.all(pulls)).toEqual([
      { done: false, value: 'a' },
      { done: false, value: 'b' },
    ]);
    await iterator.return?.();
  });

  it('ignores an early stop by the consumer', async () => {
    const { route, a } = setup({ failMax: 1 });
    for await (const chunk of route.stream(() => chunksOf(1, 2, 3))) {
      expect(chunk).toBe(1);
      break;
    }
    expect(a.state).toBe('closed');
  });
});

describe('failover routes: operator states', () => {
  it('moves on from a disabled target that fails, recording nothing on it', async () => {
    const { route, calls, a, events } = setup({ failMax: 1 });
    a.disable();
    await expect(route.call(upstream(calls, ['A']))).resolves.toBe('from B');
    expect(a.state).toBe('disabled');
    expect(events).toMatchObject([{ from: 'a', to: 'b', reason: 'failure', state: 'disabled' }]);
  });
});
