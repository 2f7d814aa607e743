import { describe, expect, it } from 'vitest';
import { listBreakers, readBreaker } from '../src/admin/index.js';
import type { BreakerConfig, BreakerContext } from '../src/index.js';
import { failTimes, simulatedBreaker } from './support/fake-upstream.js';

// What the statechart owns is read through the breaker, never written through it: a write
// would change the local statechart and reach the shared record without the configuration
// check. ESM modules run in strict mode, so writing a frozen property throws.

type Writable<T> = { -readonly [K in keyof T]: T[K] };

describe('the breaker surface the statechart owns', () => {
  it('config is a frozen view: a write throws and reaches neither the statechart nor the store', async () => {
    const { breaker, store } = simulatedBreaker({ failMax: 3 });
    expect(() => {
      (breaker.config as Writable<BreakerConfig>).failMax = 10;
    }).toThrow(TypeError);
    expect(breaker.config.failMax).toBe(3);
    await failTimes(breaker, 3);
    expect(breaker.state).toBe('open');
    await breaker.settled();
    const stored = await store.load(breaker.name);
    expect(stored?.snapshot.context.config.failMax).toBe(3);
  });

  it('context is a frozen view, its probes and streak too', async () => {
    const { breaker } = simulatedBreaker({ failMax: 3, quorum: 2 });
    await failTimes(breaker, 1);
    const context = breaker.context;
    expect(() => {
      (context as Writable<BreakerContext>).failures = 0;
    }).toThrow(TypeError);
    expect(() => {
      (context.probes as Record<string, number>).p = 1;
    }).toThrow(TypeError);
    expect(() => (context.streak as string[]).push('x')).toThrow(TypeError);
    expect(() => {
      (context.config as Writable<BreakerConfig>).failMax = 10;
    }).toThrow(TypeError);
    expect(breaker.context.failures).toBe(1);
    // The view follows the statechart.
    await failTimes(breaker, 1);
    expect(breaker.context.failures).toBe(2);
  });

  it('name, store and clock cannot be reassigned', () => {
    const { breaker, store, clock } = simulatedBreaker({}, 'openai');
    const writable = breaker as unknown as { name: string; store: unknown; clock: unknown };
    expect(() => {
      writable.name = 'other';
    }).toThrow(TypeError);
    expect(() => {
      writable.store = null;
    }).toThrow(TypeError);
    expect(() => {
      writable.clock = null;
    }).toThrow(TypeError);
    expect([breaker.name, breaker.store, breaker.clock]).toEqual(['openai', store, clock]);
  });
});

describe("the store's record and the inspector's snapshot (MemoryStore, the default)", () => {
  it('are no handle on the live statechart: a write into what a reader got throws and changes nothing', async () => {
    const { breaker, store } = simulatedBreaker({ failMax: 5 });
    await failTimes(breaker, 1);
    await breaker.settled();
    const read = [
      (await readBreaker(store, breaker.name)).record,
      (await store.load(breaker.name)) ?? undefined,
      ...(await listBreakers(store)).map((entry) => ('record' in entry ? entry.record : undefined)),
    ];
    for (const record of read) {
      if (record === undefined) throw new Error('no record read');
      expect(() => {
        (record.snapshot.context as Writable<BreakerContext>).failures = 4;
      }).toThrow(TypeError);
      expect(() => {
        (record.snapshot.context.config as Writable<BreakerConfig>).failMax = 1;
      }).toThrow(TypeError);
      expect(() => {
        (record.snapshot.context.probes as Record<string, number>).x = 1;
      }).toThrow(TypeError);
      expect(() => {
        (record.snapshot as { context: unknown }).context = {};
      }).toThrow(TypeError);
      expect(() => {
        (record as { version: number }).version = 99;
      }).toThrow(TypeError);
    }
    // One more failure: 2 of failMax 5, still closed.
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('closed');
    expect(breaker.context.failures).toBe(2);
  });

  it("an inspector's snapshot context cannot be written either", async () => {
    let seen: Writable<BreakerContext> | undefined;
    const { breaker } = simulatedBreaker({
      failMax: 5,
      inspect: (event) => {
        if (event.type === '@xstate.snapshot') {
          seen = (event.snapshot as unknown as { context: Writable<BreakerContext> }).context;
        }
      },
    });
    await failTimes(breaker, 1);
    const context = seen;
    if (context === undefined) throw new Error('the inspector saw no snapshot');
    expect(() => {
      context.failures = 4;
    }).toThrow(TypeError);
    expect(breaker.context.failures).toBe(1);
    await failTimes(breaker, 1);
    expect(breaker.context.failures).toBe(2);
  });
});
