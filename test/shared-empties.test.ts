import { CircuitBreaker, MemoryStore } from 'statebreaker';
import { SimulatedClock } from 'statebreaker/testing';
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { breakerMachine } from '../src/machine.js';
import { PATH_CONFIG } from '../src/testing/steps.js';

// Every closed or open breaker's context holds the one shared empty streak and probe set of
// the process: nothing may write into them, or one breaker's probe or streak would show in all.

describe('the shared empty streak and probe set', () => {
  it('cannot be written into: a write throws instead of reaching every breaker', () => {
    const one = createActor(breakerMachine, { input: PATH_CONFIG }).start();
    const two = createActor(breakerMachine, { input: PATH_CONFIG }).start();
    const { probes, streak } = one.getSnapshot().context;
    expect(Object.isFrozen(probes)).toBe(true);
    expect(Object.isFrozen(streak)).toBe(true);
    expect(() => {
      (probes as Record<string, number>).intruder = 1;
    }).toThrow(TypeError);
    expect(() => (streak as string[]).push('intruder')).toThrow(TypeError);
    expect(two.getSnapshot().context.probes).toEqual({});
    expect(two.getSnapshot().context.streak).toEqual([]);
    one.stop();
    two.stop();
  });

  it('one breaker’s probe does not show in another open breaker', async () => {
    const clock = new SimulatedClock();
    const store = new MemoryStore({ clock });
    const options = { store, failMax: 1, resetTimeout: 1_000 };
    const a = new CircuitBreaker('shared-a', options);
    const b = new CircuitBreaker('shared-b', { ...options, resetTimeout: 60_000 });
    for (const breaker of [a, b]) {
      await breaker.call(() => Promise.reject(new Error('503'))).catch(() => {});
      await breaker.settled();
    }
    clock.increment(1_000);
    const probe = await a.attempt();
    await a.settled();
    expect(Object.keys(a.context.probes)).toHaveLength(1);
    expect(b.context.probes).toEqual({});
    expect(store.peek('shared-b')?.snapshot.context.probes).toEqual({});
    probe.success();
    a.dispose();
    b.dispose();
  });
});
