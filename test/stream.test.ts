import { describe, expect, it } from 'vitest';
import {
  CallTimeoutError,
  ChunkTimeoutError,
  CircuitBreakerError,
  FirstChunkTimeoutError,
} from '../src/index.js';
import { chunksOf, collectAll, manualSource } from './support/chunk-source.js';
import { deferred, flush, simulatedBreaker, trip, UpstreamError } from './support/fake-upstream.js';

/** A breaker with every outcome it records listed in order. */
function recorded(options: Parameters<typeof simulatedBreaker>[0] = {}) {
  const setup = simulatedBreaker(options);
  const outcomes: string[] = [];
  setup.breaker.on('success', () => outcomes.push('success'));
  setup.breaker.on('failure', (e) => outcomes.push(`failure:${(e.error as Error).name}`));
  setup.breaker.on('ignored', () => outcomes.push('ignored'));
  return { ...setup, outcomes };
}

describe('breaker.stream: admission', () => {
  it('calls nothing and takes no slot until the consumer asks for a chunk', async () => {
    const { breaker, clock, outcomes } = recorded({ halfOpenMaxCalls: 1 });
    await trip(breaker);
    clock.increment(breaker.config.resetTimeout);
    expect(breaker.state).toBe('halfOpen');
    const source = manualSource<string>();
    const stream = breaker.stream(source.open);
    await flush();
    expect(source.state.opened).toBe(0);
    expect(Object.keys(breaker.context.probes)).toHaveLength(0);
    // An ordinary call still gets the one probe slot.
    await expect(breaker.call(async () => 'probe')).resolves.toBe('probe');
    expect(outcomes.filter((o) => o === 'success')).toHaveLength(1);
    void stream;
  });

  it('rejects at once while open, on the first pull, without calling the function', async () => {
    const { breaker } = simulatedBreaker();
    await trip(breaker);
    const source = manualSource<string>();
    const iterator = breaker.stream(source.open)[Symbol.asyncIterator]();
    const error = await iterator.next().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CircuitBreakerError);
    expect(error).toMatchObject({ state: 'open' });
    expect(source.state.opened).toBe(0);
    await expect(iterator.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it('passes every chunk through, from an async iterable, a promise of one, or a ReadableStream', async () => {
    const { breaker, outcomes } = recorded();
    expect(await collectAll(breaker.stream(() => chunksOf('a', 'b')))).toEqual(['a', 'b']);
    expect(await collectAll(breaker.stream(async () => chunksOf(1, 2, 3)))).toEqual([1, 2, 3]);
    const web = () =>
      new ReadableStream<string>({
        start(controller) {
          controller.enqueue('x');
          controller.enqueue('y');
          controller.close();
        },
      });
    expect(await collectAll(breaker.stream(web))).toEqual(['x', 'y']);
    expect(outcomes).toEqual(['success', 'success', 'success']);
  });

  it('names what the function returned when it is not a stream, and counts nothing', async () => {
    const { breaker, outcomes } = recorded();
    const stream = breaker.stream(() => 42 as unknown as AsyncIterable<number>);
    await expect(collectAll(stream)).rejects.toThrow(
      'stream() function must return an AsyncIterable or a ReadableStream, got 42',
    );
    expect(outcomes).toEqual(['ignored']);
    expect(() => breaker.stream('nope' as never)).toThrow('stream() needs a function, got "nope"');
    expect(() => breaker.stream(() => chunksOf(1), { chunkTimeout: -1 })).toThrow(
      'stream() option chunkTimeout must be more than 0',
    );
  });
});

describe('breaker.stream: outcomes', () => {
  it('counts a success only when the stream ends normally', async () => {
    const { breaker, outcomes } = recorded();
    const source = manualSource<string>();
    const iterator = breaker.stream(source.open)[Symbol.asyncIterator]();
    source.push('a', 'b');
    await iterator.next();
    await iterator.next();
    expect(outcomes).toEqual([]);
    source.end();
    await expect(iterator.next()).resolves.toMatchObject({ done: true });
    expect(outcomes).toEqual(['success']);
  });

  it('counts an error before the first chunk or mid-stream as a failure, and hands it on', async () => {
    const { breaker, outcomes } = recorded({ failMax: 2 });
    const before = breaker.stream(async (): Promise<AsyncIterable<string>> => {
      throw new UpstreamError(500);
    });
    await expect(collectAll(before)).rejects.toBeInstanceOf(UpstreamError);
    const source = manualSource<string>();
    const during = collectAll(breaker.stream(source.open));
    source.push('a');
    source.fail(new UpstreamError(502));
    await expect(during).rejects.toMatchObject({ status: 502 });
    expect(outcomes).toEqual(['failure:UpstreamError', 'failure:UpstreamError']);
    expect(breaker.state).toBe('open');
  });

  it('classifies errors like a call: an ignored error counts nothing', async () => {
    const { breaker, outcomes } = recorded({
      classify: (e) => ((e as UpstreamError).status === 400 ? 'ignored' : 'failure'),
    });
    const source = manualSource<string>();
    const during = collectAll(breaker.stream(source.open));
    source.push('a');
    source.fail(new UpstreamError(400));
    await expect(during).rejects.toMatchObject({ status: 400 });
    expect(outcomes).toEqual(['ignored']);
  });

  it('ignores a consumer that stops early, aborts the upstream and closes it', async () => {
    const { breaker, outcomes } = recorded({ failMax: 1 });
    const source = manualSource<string>();
    source.push('a', 'b', 'c');
    for await (const chunk of breaker.stream(source.open)) {
      expect(chunk).toBe('a');
      break;
    }
    expect(outcomes).toEqual(['ignored']);
    expect(source.state.signal?.aborted).toBe(true);
    expect(source.state.returned).toBe(true);
    expect(breaker.state).toBe('closed');
  });

  it("ignores the caller's abort, mid-stream, and rejects the pending pull with its reason", async () => {
    const { breaker, outcomes } = recorded({ failMax: 1 });
    const source = manualSource<string>();
    const controller = new AbortController();
    const iterator = breaker
      .stream(source.open, { signal: controller.signal })
      [Symbol.asyncIterator]();
    source.push('a');
    await iterator.next();
    const pending = iterator.next();
    controller.abort(new Error('user left'));
    await expect(pending).rejects.toThrow('user left');
    expect(outcomes).toEqual(['ignored']);
    expect(source.state.signal?.aborted).toBe(true);
    expect(breaker.state).toBe('closed');
  });
  it("rejects the next read with the caller's abort reason when it came while the consumer held a chunk", async () => {
    const { breaker, outcomes } = recorded();
    const source = manualSource<string>();
    source.push('one', 'two', 'three');
    const controller = new AbortController();
    const got: string[] = [];
    const reading = (async () => {
      for await (const chunk of breaker.stream(source.open, { signal: controller.signal })) {
        got.push(chunk);
        if (chunk === 'one') controller.abort(new Error('client went away'));
      }
    })();
    await expect(reading).rejects.toThrow('client went away');
    expect({ got, outcomes }).toEqual({ got: ['one'], outcomes: ['ignored'] });
  });
});

describe('breaker.stream: a source opened after its stream was cut', () => {
  /** A source `fn` opens only when the test says so. */
  function lateSource() {
    const source = manualSource<string>();
    const opening = deferred<void>();
    const fn = (signal: AbortSignal) => {
      const opened = source.open(signal);
      return opening.promise.then(() => opened);
    };
    return { source, fn, open: () => opening.resolve() };
  }

  it("closes it after the caller's abort during opening", async () => {
    const { breaker, outcomes } = recorded();
    const { source, fn, open } = lateSource();
    const controller = new AbortController();
    const pending = breaker
      .stream(fn, { signal: controller.signal })
      [Symbol.asyncIterator]()
      .next();
    await flush();
    controller.abort(new Error('client went away'));
    await expect(pending).rejects.toThrow('client went away');
    open();
    await flush();
    expect({ returned: source.state.returned, outcomes }).toEqual({
      returned: true,
      outcomes: ['ignored'],
    });
  });

  it('closes it after a first-chunk breach during opening', async () => {
    const { breaker, clock, outcomes } = recorded({ firstChunkTimeout: 100 });
    const { source, fn, open } = lateSource();
    const pending = breaker.stream(fn)[Symbol.asyncIterator]().next();
    await flush();
    clock.increment(100);
    await expect(pending).rejects.toBeInstanceOf(FirstChunkTimeoutError);
    open();
    await flush();
    expect({ returned: source.state.returned, outcomes }).toEqual({
      returned: true,
      outcomes: ['failure:FirstChunkTimeoutError'],
    });
  });
});

describe('breaker.stream: pulls asked for at once', () => {
  it('gives each its own chunk, in order, on the watched path', async () => {
    const { breaker, outcomes } = recorded({ chunkTimeout: 5_000 });
    const source = manualSource<string>();
    const iterator = breaker.stream(source.open)[Symbol.asyncIterator]();
    source.push('a');
    expect(await iterator.next()).toEqual({ done: false, value: 'a' });
    const pulls = [iterator.next(), iterator.next(), iterator.next(), iterator.next()];
    source.push('b', 'c', 'd');
    source.end();
    expect(await Promise.all(pulls)).toEqual([
      { done: false, value: 'b' },
      { done: false, value: 'c' },
      { done: false, value: 'd' },
      { done: true, value: undefined },
    ]);
    expect(outcomes).toEqual(['success']);
  });
});

describe('breaker.stream: deadlines', () => {
  it('cuts a stream with no first chunk within firstChunkTimeout, as a failure', async () => {
    const { breaker, clock, outcomes } = recorded({ firstChunkTimeout: 1_000, failMax: 1 });
    const source = manualSource<string>();
    const pending = collectAll(breaker.stream(source.open));
    pending.catch(() => undefined);
    await flush();
    clock.increment(999);
    await flush();
    expect(outcomes).toEqual([]);
    clock.increment(1);
    const error = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FirstChunkTimeoutError);
    expect(error).toBeInstanceOf(CallTimeoutError);
    expect(error).toMatchObject({ timeoutMs: 1_000, breaker: 'upstream' });
    expect(source.state.signal?.reason).toBe(error);
    expect(outcomes).toEqual(['failure:FirstChunkTimeoutError']);
    expect(breaker.state).toBe('open');
  });

  it("uses the breaker's timeout as the first-chunk deadline when firstChunkTimeout is unset", async () => {
    const { breaker, clock } = simulatedBreaker({ timeout: 500 });
    const source = manualSource<string>();
    const pending = collectAll(breaker.stream(source.open)).catch((e: unknown) => e);
    await flush();
    clock.increment(500);
    expect(await pending).toMatchObject({ name: 'FirstChunkTimeoutError', timeoutMs: 500 });
  });

  it('cuts a stream that stalls longer than chunkTimeout; time the consumer holds a chunk does not count', async () => {
    const { breaker, clock, outcomes } = recorded({ chunkTimeout: 1_000 });
    const source = manualSource<string>();
    const iterator = breaker
      .stream(source.open, { firstChunkTimeout: 10_000 })
      [Symbol.asyncIterator]();
    source.push('a');
    await iterator.next();
    // The consumer works on its chunk for a long time: not the upstream's stall.
    clock.increment(5_000);
    source.push('b');
    await expect(iterator.next()).resolves.toEqual({ done: false, value: 'b' });
    const stalled = iterator.next().catch((e: unknown) => e);
    clock.increment(600);
    clock.increment(399);
    await flush();
    expect(outcomes).toEqual([]);
    clock.increment(1);
    const error = await stalled;
    expect(error).toBeInstanceOf(ChunkTimeoutError);
    expect(outcomes).toEqual(['failure:ChunkTimeoutError']);
    expect(source.state.signal?.aborted).toBe(true);
  });

  it('per-stream deadlines override the breaker options', async () => {
    const { breaker, clock } = simulatedBreaker({ firstChunkTimeout: 60_000 });
    const source = manualSource<string>();
    const pending = collectAll(breaker.stream(source.open, { firstChunkTimeout: 10 })).catch(
      (e: unknown) => e,
    );
    await flush();
    clock.increment(10);
    expect(await pending).toMatchObject({ name: 'FirstChunkTimeoutError', timeoutMs: 10 });
  });

  it('holds no timer when it has no deadline, and none after it ends', async () => {
    const { breaker, clock } = simulatedBreaker({ chunkTimeout: 100, firstChunkTimeout: 100 });
    const timers = clock as unknown as { timeouts: Map<unknown, unknown> };
    await collectAll(breaker.stream(() => chunksOf(1, 2, 3)));
    expect(timers.timeouts.size).toBe(0);
  });
});

describe('breaker.stream: probes', () => {
  async function halfOpen(options: Parameters<typeof simulatedBreaker>[0]) {
    const setup = recorded(options);
    await trip(setup.breaker);
    setup.clock.increment(setup.breaker.config.resetTimeout);
    expect(setup.breaker.state).toBe('halfOpen');
    return setup;
  }

  it('holds its probe slot until it ends, and renews its lease while chunks flow, with bounded writes', async () => {
    const { breaker, clock, store, outcomes } = await halfOpen({
      probeLease: 1_000,
      successThreshold: 1,
    });
    let writes = 0;
    const compareAndSet = store.compareAndSet.bind(store);
    store.compareAndSet = (...args) => {
      writes++;
      return compareAndSet(...args);
    };
    const source = manualSource<number>();
    const iterator = breaker.stream(source.open)[Symbol.asyncIterator]();
    source.push(0);
    await iterator.next();
    expect(Object.keys(breaker.context.probes)).toHaveLength(1);
    const before = writes;
    // Ten seconds of chunks every 100 ms: ten leases long.
    for (let i = 1; i <= 100; i++) {
      clock.increment(100);
      source.push(i);
      await iterator.next();
      await expect(breaker.call(async () => 'second')).rejects.toBeInstanceOf(CircuitBreakerError);
    }
    await breaker.settled();
    expect(breaker.state).toBe('halfOpen');
    expect(breaker.context.reason).toBe('resetTimeoutElapsed');
    // At most one renewal per half lease: 2 × 10 s / 1 s.
    expect(writes - before).toBeLessThanOrEqual(20);
    expect(writes - before).toBeGreaterThanOrEqual(9);
    source.end();
    await iterator.next();
    expect(outcomes.at(-1)).toBe('success');
    expect(breaker.state).toBe('closed');
  });

  it('loses its lease when chunks stop flowing for longer than the lease', async () => {
    const { breaker, clock } = await halfOpen({ probeLease: 1_000 });
    const source = manualSource<number>();
    const iterator = breaker.stream(source.open)[Symbol.asyncIterator]();
    source.push(0);
    await iterator.next();
    clock.increment(1_000);
    expect(breaker.state).toBe('open');
    expect(breaker.context.reason).toBe('probeLeaseExpired');
    await iterator.return?.();
  });
});

describe('breaker.stream: the slow-call rule', () => {
  it('judges a stream by its time to first chunk, not its length', async () => {
    const { breaker, clock } = simulatedBreaker({
      failMax: Number.POSITIVE_INFINITY,
      slowCallDuration: 1_000,
      slowCallRateThreshold: 50,
      minimumCalls: 2,
    });
    const run = async (firstMs: number, restMs: number) => {
      const source = manualSource<number>();
      const iterator = breaker.stream(source.open)[Symbol.asyncIterator]();
      const first = iterator.next();
      await flush();
      clock.increment(firstMs);
      source.push(1);
      await first;
      clock.increment(restMs);
      source.end();
      await iterator.next();
    };
    // Judged by their length, both would be slow (and trip at 50 %).
    await run(10, 2_000);
    await run(999, 2_000);
    await breaker.settled();
    expect(breaker.state).toBe('closed');
    await run(1_000, 0);
    await run(1_000, 0);
    await breaker.settled();
    expect(breaker.state).toBe('open');
    expect(breaker.context.reason).toBe('slowCallRateReached');
  });
});
