import fc from 'fast-check';
import { Redis } from 'ioredis';
import { CircuitBreaker } from 'statebreaker';
import { RedisStore } from 'statebreaker/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from './support/redis-server.js';
import { waitFor } from './support/redis-wait.js';

// The rate rule decides on the fleet's counts, not part of them: several instances on a real
// redis-server, each on its own connection and with its own flush period drawn at random, run
// calls in rounds (one call per instance per round, rounds a few ms apart on the real clock).
// One instance fails often enough to cross the threshold on its own window; the others mostly
// succeed. Below the threshold after every round (by a margin the stated bound allows), the
// fleet never opens; above it at the end, it opens.

let server: RedisServer;
let run = 0;

beforeAll(async () => {
  server = await RedisServer.start();
});

afterAll(async () => {
  await server?.stop();
});

const THRESHOLD = 60;
const MINIMUM_CALLS = 10;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Plan {
  /** Per instance, its outcomes in order (`true`: failed). */
  readonly outcomes: boolean[][];
  /** Per instance, its windowFlush in ms. */
  readonly flushMs: number[];
  /** Per round, the pause before it in ms. */
  readonly pauses: number[];
}

async function runFleet(plan: Plan) {
  const name = `fleet window ${++run}`;
  const clients = plan.flushMs.map(() => new Redis({ path: server.path }));
  // The bound holds while the store answers; a store that does not answer within its timeout
  // leaves each instance deciding on its own window (as documented). A loaded test machine must
  // not turn a slow reply into that case.
  const stores = clients.map((redis) => new RedisStore(redis, { timeout: 10_000 }));
  const breakers = stores.map(
    (store, i) =>
      new CircuitBreaker(name, {
        store,
        failMax: Number.POSITIVE_INFINITY,
        failureRateThreshold: THRESHOLD,
        minimumCalls: MINIMUM_CALLS,
        window: 60_000,
        windowFlush: plan.flushMs[i] as number,
      }),
  );
  const opened: string[] = [];
  const storeErrors: string[] = [];
  for (const breaker of breakers) {
    breaker.on('stateChange', ({ to }) => {
      if (to === 'open') opened.push(to);
    });
    breaker.on('storeError', ({ error }) => storeErrors.push(String(error)));
  }
  await Promise.all(breakers.map((breaker) => breaker.settled()));
  const rounds = Math.max(...plan.outcomes.map((list) => list.length));
  for (let round = 0; round < rounds; round++) {
    await sleep(plan.pauses[round % plan.pauses.length] as number);
    await Promise.all(
      breakers.map((breaker, i) => {
        const failed = plan.outcomes[i]?.[round];
        if (failed === undefined) return undefined;
        return breaker
          .call(async () => {
            if (failed) throw new Error('upstream');
            return 'ok';
          })
          .catch(() => undefined);
      }),
    );
  }
  const close = async () => {
    for (const breaker of breakers) breaker.dispose();
    await Promise.all(stores.map((store) => store.close()));
    for (const redis of clients) redis.disconnect();
  };
  return { breakers, opened, storeErrors, close, quiet: 3 * Math.max(...plan.flushMs) + 200 };
}

// Rounds of one call per instance: the first instance fails every call, the others succeed
// but for `extraFailures` calls spread at random. Fleet rate after round r:
// (r + extra failures so far) / (instances × r).
const flushMs = fc.integer({ min: 20, max: 150 });
const pauses = fc.array(fc.integer({ min: 0, max: 15 }), { minLength: 1, maxLength: 8 });

describe('the fleet window decides on every instance’s counts', () => {
  it('stays closed when the fleet is below the threshold, though one instance alone is far above it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 3 }),
        fc.integer({ min: 12, max: 24 }),
        fc.array(flushMs, { minLength: 3, maxLength: 3 }),
        pauses,
        fc.integer({ min: 0, max: 1_000 }),
        async (instances, rounds, flush, pause, seed) => {
          // One failing instance; with two, the other succeeds (50 %); with three, the others
          // fail one call in five (at most 47 %): below 60 % after every round.
          const outcomes = Array.from({ length: instances }, (_, i) =>
            Array.from(
              { length: rounds },
              (_, r) => i === 0 || (instances > 2 && (r + seed + i) % 5 === 0),
            ),
          );
          const fleet = await runFleet({
            outcomes,
            flushMs: flush.slice(0, instances),
            pauses: pause,
          });
          try {
            await sleep(fleet.quiet);
            // Store errors first: an instance the store failed decides alone, outside the bound.
            expect({ opened: fleet.opened, storeErrors: fleet.storeErrors }).toEqual({
              opened: [],
              storeErrors: [],
            });
            expect(fleet.breakers.map((b) => b.state)).toEqual(
              Array.from({ length: instances }, () => 'closed'),
            );
          } finally {
            await fleet.close();
          }
        },
      ),
      { numRuns: 6 },
    );
  }, 120_000);

  it('opens when the fleet is above the threshold, whatever each instance counted alone', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 3 }),
        fc.integer({ min: 12, max: 20 }),
        fc.array(flushMs, { minLength: 3, maxLength: 3 }),
        pauses,
        fc.integer({ min: 0, max: 1_000 }),
        async (instances, rounds, flush, pause, seed) => {
          // The first instance fails every call; the others fail three calls in four, each
          // below its own minimumCalls-sized window's certainty: the fleet is ≥ 75 % failed.
          const outcomes = Array.from({ length: instances }, (_, i) =>
            Array.from({ length: rounds }, (_, r) => i === 0 || (r + seed + i) % 4 !== 0),
          );
          const fleet = await runFleet({
            outcomes,
            flushMs: flush.slice(0, instances),
            pauses: pause,
          });
          try {
            expect(
              await waitFor(() => fleet.breakers.every((b) => b.state === 'open'), 10_000),
            ).toBe(true);
            expect(fleet.breakers.map((b) => b.context.reason)).toEqual(
              Array.from({ length: instances }, () => 'failureRateReached'),
            );
          } finally {
            await fleet.close();
          }
        },
      ),
      { numRuns: 6 },
    );
  }, 120_000);

  it('a lone instance trips on its crossing without waiting for windowFlush', async () => {
    const fleet = await runFleet({
      outcomes: [Array.from({ length: MINIMUM_CALLS }, () => true)],
      // Far longer than the test waits: only the crossing's own flush can trip it.
      flushMs: [30_000],
      pauses: [0],
    });
    try {
      expect(await waitFor(() => fleet.breakers[0]?.state === 'open', 5_000)).toBe(true);
    } finally {
      await fleet.close();
    }
  });
});
