import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { CircuitBreaker, MemoryStore } from '../src/index.js';
import { type Due, Scheduler } from '../src/replica/scheduler.js';

const failing = async (): Promise<never> => {
  throw new Error('upstream 503');
};

function simulated(start = 1_000_000): SimulatedClock {
  const clock = new SimulatedClock();
  clock.set(start);
  return clock;
}

/** The timers a simulated clock holds (XState keeps them in a map). */
function timers(clock: SimulatedClock): number {
  return (clock as unknown as { timeouts: Map<unknown, unknown> }).timeouts.size;
}

describe('one scheduler for the delayed transitions of a process', () => {
  it('holds one timer for many open breakers, each half-opening exactly when its delay ends', async () => {
    const clock = simulated();
    const store = new MemoryStore({ clock });
    const resetTimeout = 30_000;
    const breakers = Array.from(
      { length: 200 },
      (_, i) => new CircuitBreaker(`tenant-${i}`, { store, failMax: 1, resetTimeout }),
    );
    const halfOpenedAt = new Map<string, number>();
    const openedAt = new Map<string, number>();
    for (const breaker of breakers) {
      breaker.on('stateChange', ({ name, to }) => {
        if (to === 'halfOpen') halfOpenedAt.set(name, clock.now());
      });
    }
    // Trips spread over 2 s, several in the same millisecond.
    for (const [i, breaker] of breakers.entries()) {
      await expect(breaker.call(failing)).rejects.toThrow('503');
      if (i % 3 === 2) clock.increment(30);
    }
    expect(breakers.every((b) => b.state === 'open')).toBe(true);
    for (const breaker of breakers) openedAt.set(breaker.name, breaker.context.openedAt ?? 0);
    expect(timers(clock)).toBe(1);

    // One millisecond before each deadline nothing half-opens; at it, exactly the due ones do.
    const deadlines = [...new Set([...openedAt.values()].map((at) => at + resetTimeout))].sort(
      (a, b) => a - b,
    );
    for (const deadline of deadlines) {
      clock.set(deadline - 1);
      const early = breakers.filter((b) => b.state === 'halfOpen').length;
      expect(early).toBe(
        [...openedAt.values()].filter((at) => at + resetTimeout < deadline).length,
      );
      clock.set(deadline);
      // Listeners hear a change once the store confirms it (a microtask on a MemoryStore).
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (const breaker of breakers) {
      expect(breaker.state).toBe('halfOpen');
      expect(halfOpenedAt.get(breaker.name)).toBe((openedAt.get(breaker.name) ?? 0) + resetTimeout);
    }
    // Nothing left to wait for: no timer at all.
    expect(timers(clock)).toBe(0);
    for (const breaker of breakers) breaker.dispose();
  });

  it('leaves no timer behind a breaker that leaves the timed state or is disposed', async () => {
    const clock = simulated();
    const store = new MemoryStore({ clock });
    const a = new CircuitBreaker('a', { store, failMax: 1 });
    const b = new CircuitBreaker('b', { store, failMax: 1 });
    await expect(a.call(failing)).rejects.toThrow('503');
    await expect(b.call(failing)).rejects.toThrow('503');
    expect(timers(clock)).toBe(1);
    a.reset();
    expect(timers(clock)).toBe(1);
    b.dispose();
    expect(timers(clock)).toBe(0);
    clock.increment(a.config.resetTimeout);
    expect(a.state).toBe('closed');
    a.dispose();
  });

  it('runs due entries earliest first, never early, and forgets cancelled ones', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.integer({ min: 0, max: 1_000 }), cancel: fc.boolean() }), {
          maxLength: 60,
        }),
        fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 8 }),
        (plans, steps) => {
          const clock = simulated(0);
          const scheduler = new Scheduler(clock);
          const fired: { id: number; at: number; now: number }[] = [];
          const entries: Due[] = plans.map((plan, id) => ({
            dueAt: 0,
            dueSlot: -1,
            fireDue: () => fired.push({ id, at: plan.at, now: clock.now() }),
          }));
          plans.forEach((plan, id) => {
            scheduler.schedule(entries[id] as Due, plan.at);
          });
          plans.forEach((plan, id) => {
            if (plan.cancel) scheduler.cancel(entries[id] as Due);
          });
          for (const step of steps) clock.increment(step);
          clock.increment(1_000);
          const expected = plans
            .map((plan, id) => ({ id, at: plan.at }))
            .filter(({ id }) => !plans[id]?.cancel);
          expect(fired.map((f) => f.id).sort((x, y) => x - y)).toEqual(expected.map((e) => e.id));
          for (const f of fired) expect(f.now).toBeGreaterThanOrEqual(f.at);
          // Earliest first within the run (ties in any order).
          for (let i = 1; i < fired.length; i++) {
            expect((fired[i] as { at: number }).at).toBeGreaterThanOrEqual(
              (fired[i - 1] as { at: number }).at,
            );
          }
          expect(scheduler.size).toBe(0);
          expect(timers(clock)).toBe(0);
        },
      ),
    );
  });
});
