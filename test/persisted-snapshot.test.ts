import { CircuitBreaker, MemoryStore } from 'statebreaker';
import type { PersistedBreakerSnapshot } from 'statebreaker/store';
import { SimulatedClock } from 'statebreaker/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { breakerMachine } from '../src/machine.js';

// The local statechart persists its snapshot by hand (not with XState's copying
// getPersistedSnapshot): for every state a breaker writes, the record's snapshot must be what
// XState's own persisted snapshot of that state holds (without the `output`/`error` keys), in
// the same key order, and restore to that state.

const disposals: (() => void)[] = [];
afterEach(() => {
  for (const dispose of disposals.splice(0)) dispose();
});

/** XState's persisted snapshot of `value` with `context`, in the record's keys. */
function xstatePersisted(snapshot: PersistedBreakerSnapshot): Record<string, unknown> {
  const resolved = breakerMachine.resolveState({
    value: snapshot.value as never,
    context: snapshot.context,
  });
  const {
    output: _output,
    error: _error,
    ...persisted
  } = breakerMachine.getPersistedSnapshot(resolved) as unknown as Record<string, unknown>;
  return { ...persisted, schema: snapshot.schema };
}

function withoutWriteKeys(snapshot: PersistedBreakerSnapshot): Record<string, unknown> {
  const {
    writeId: _w,
    lineage: _l,
    origin: _o,
    ...rest
  } = snapshot as unknown as Record<string, unknown>;
  return rest;
}

describe('a persisted snapshot as the breaker writes it', () => {
  it('is XState’s persisted snapshot for every state: closed, open, half-open waiting and probing, forced open, disabled', async () => {
    const clock = new SimulatedClock();
    const store = new MemoryStore({ clock });
    const name = 'persisted-shape';
    const breaker = new CircuitBreaker(name, { store, failMax: 2, resetTimeout: 1_000 });
    disposals.push(() => breaker.dispose());
    const seen = new Map<string, PersistedBreakerSnapshot>();
    const keep = async () => {
      await breaker.settled();
      const record = store.peek(name);
      if (record === null || record === undefined) throw new Error('no record written');
      seen.set(JSON.stringify(record.snapshot.value), record.snapshot);
    };

    await breaker.call(() => Promise.reject(new Error('503'))).catch(() => {});
    await keep(); // closed, one failure counted
    await breaker.call(() => Promise.reject(new Error('503'))).catch(() => {});
    await keep(); // open
    clock.increment(1_000);
    await keep(); // half-open, waiting
    const probe = await breaker.attempt();
    await keep(); // half-open, probing
    probe.success();
    breaker.forceOpen();
    await keep();
    breaker.disable();
    await keep();

    expect([...seen.keys()].sort()).toEqual(
      [
        '"closed"',
        '"open"',
        '{"halfOpen":"waiting"}',
        '{"halfOpen":"probing"}',
        '"forcedOpen"',
        '"disabled"',
      ].sort(),
    );
    for (const snapshot of seen.values()) {
      const written = withoutWriteKeys(snapshot);
      expect(JSON.stringify(written)).toBe(JSON.stringify(xstatePersisted(snapshot)));
      const restored = breakerMachine.resolveState({
        value: snapshot.value as never,
        context: snapshot.context,
      });
      expect(
        breakerMachine.restoreSnapshot(written as never, {} as never) as unknown as object,
      ).toMatchObject({ status: 'active', value: restored.value, context: snapshot.context });
    }
  });
});
