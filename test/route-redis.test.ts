import { Redis } from 'ioredis';
import { AllTargetsFailedError, CircuitBreaker, CircuitBreakerError, failover } from 'statebreaker';
import { RedisStore } from 'statebreaker/redis';
import { createSimulatedClock } from 'statebreaker/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { manualSource } from './support/chunk-source.js';
import { deferred, flush, UpstreamError } from './support/fake-upstream.js';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';

// Panic probes and streamed probes on a real redis-server, with instances that share only
// the store: what the fleet shares is what these rules are about.

let server: RedisServer;
let run = 0;
const closers: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  server = await RedisServer.start();
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
afterAll(async () => {
  await server?.stop();
});

/** `count` instances, each with its own client and store, holding breakers named `names`. */
async function instances(
  count: number,
  names: readonly string[],
  options: ConstructorParameters<typeof CircuitBreaker>[1] = {},
) {
  const made = await Promise.all(
    Array.from({ length: count }, async () => {
      const redis = new Redis({ path: server.path });
      const store = new RedisStore(redis);
      const breakers = names.map((name) => new CircuitBreaker(name, { store, ...options }));
      await Promise.all(breakers.map((b) => b.settled()));
      closers.push(async () => {
        for (const b of breakers) b.dispose();
        await store.close();
        redis.disconnect();
      });
      return breakers;
    }),
  );
  return made;
}

const trip = (breaker: CircuitBreaker) =>
  breaker.call(() => Promise.reject(new UpstreamError())).catch(() => undefined);

describe('panic probes on Redis', () => {
  it("the fleet's panicking routes send the soonest-to-reopen target one call, not one each", async () => {
    const [a, b] = [`panic ${++run} a`, `panic ${run} b`];
    const fleet = await instances(3, [a, b], { failMax: 1, resetTimeout: 60_000 });
    const first = fleet[0] as CircuitBreaker[];
    await trip(first[1] as CircuitBreaker);
    await (first[1] as CircuitBreaker).settled();
    await trip(first[0] as CircuitBreaker);
    await (first[0] as CircuitBreaker).settled();
    expect(await waitFor(() => fleet.every((bs) => bs.every((x) => x.state === 'open')))).toBe(
      true,
    );

    const calls: string[] = [];
    const held = deferred<string>();
    const routes = fleet.map((bs) =>
      failover(
        bs.map((breaker) => ({ breaker, value: breaker.name })),
        { panic: true },
      ),
    );
    const outcomes = routes.map((route) =>
      route
        .call((name) => {
          calls.push(name);
          return held.promise;
        })
        .catch((error: unknown) => error),
    );
    let refused = 0;
    for (const outcome of outcomes) {
      void outcome.then((value) => {
        if (value instanceof AllTargetsFailedError) refused++;
      });
    }
    expect(await waitFor(() => refused === 2 && calls.length === 1, 10_000)).toBe(true);
    // b opened first, so its open period ends first: the one early probe goes there.
    expect(calls).toEqual([b]);
    held.resolve('recovered');
    expect((await Promise.all(outcomes)).filter((x) => x === 'recovered')).toHaveLength(1);
  });
});

describe('a streamed probe on Redis', () => {
  it('holds its slot fleet-wide for as long as its chunks flow, renewing a lease ten times shorter', async () => {
    const name = `stream probe ${++run}`;
    const clock = createSimulatedClock(Date.now());
    const [[mine], [theirs]] = (await instances(2, [name], {
      clock,
      failMax: 1,
      resetTimeout: 1_000,
      successThreshold: 1,
      probeLease: 1_000,
    })) as [[CircuitBreaker], [CircuitBreaker]];
    await trip(mine);
    await mine.settled();
    clock.increment(1_000);
    expect(await waitFor(() => mine.state === 'halfOpen' && theirs.state === 'halfOpen')).toBe(
      true,
    );

    const source = manualSource<number>();
    const iterator = mine.stream(source.open)[Symbol.asyncIterator]();
    source.push(0);
    await iterator.next();
    for (let i = 1; i <= 50; i++) {
      clock.increment(200);
      source.push(i);
      await iterator.next();
      await mine.settled();
      // The simulated clock jumps at once; in real time the feed's milliseconds are far shorter
      // than the half lease a renewal leaves: let the other instance hear it before time moves.
      const lease = JSON.stringify(mine.context.probes);
      expect(await waitFor(() => JSON.stringify(theirs.context.probes) === lease)).toBe(true);
      // The other instance sees the slot taken, through the store.
      const error = await theirs.call(async () => 'second probe').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CircuitBreakerError);
    }
    expect(theirs.state).toBe('halfOpen');
    source.end();
    await iterator.next();
    await mine.settled();
    expect(await waitFor(() => theirs.state === 'closed')).toBe(true);
    await flush();
  });
});
