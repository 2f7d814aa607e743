import { describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { CircuitBreaker, MemoryStore } from '../src/index.js';
import type { StoredRecord } from '../src/stores/index.js';
import { flush, simulatedBreaker, T0, trip } from './support/fake-upstream.js';

const NAME = 'upstream';

/** Trips a breaker at `T0` and returns its stored record as another process would read it. */
async function persistedOpenAtT0(): Promise<StoredRecord> {
  const { breaker, store } = simulatedBreaker({}, NAME);
  await trip(breaker);
  await breaker.settled();
  expect(breaker.context.openedAt).toBe(T0);
  const record = store.peek(NAME);
  if (record === null) throw new Error('the tripped breaker wrote no record');
  expect(record.snapshot.value).toBe('open');
  expect(record.snapshot.context.openedAt).toBe(T0);
  breaker.dispose();
  // Through JSON, as the record travels through Redis.
  return JSON.parse(JSON.stringify(record)) as StoredRecord;
}

/** A new breaker, on a store that holds `record`, whose clock reads `at`. */
async function restoredAt(record: StoredRecord, at: number) {
  const clock = new SimulatedClock();
  clock.set(at);
  const store = new MemoryStore({ clock });
  const seeded = await store.compareAndSet(NAME, 0, record);
  expect(seeded.ok).toBe(true);
  const breaker = new CircuitBreaker(NAME, { store });
  await breaker.settled();
  return { breaker, clock };
}

describe('the persisted-snapshot round trip', () => {
  it('persisted open at T, restored at T+10 s, half-opens at T+30 s: not before, not later', async () => {
    const record = await persistedOpenAtT0();
    const { breaker, clock } = await restoredAt(record, T0 + 10_000);
    expect(breaker.state).toBe('open');
    expect(breaker.context.openedAt).toBe(T0);
    await expect(breaker.call(async () => 'x')).rejects.toMatchObject({
      state: 'open',
      retryAfterMs: 20_000,
    });

    clock.increment(20_000 - 1);
    expect(breaker.state).toBe('open');
    clock.increment(1);
    expect(clock.now()).toBe(T0 + 30_000);
    expect(breaker.state).toBe('halfOpen');
    expect(breaker.context.reason).toBe('resetTimeoutElapsed');
  });

  it('restored after T+30 s half-opens without waiting another resetTimeout', async () => {
    const record = await persistedOpenAtT0();
    const { breaker, clock } = await restoredAt(record, T0 + 45_000);
    // The due timer runs on the clock's next flush; no clock time passes.
    clock.increment(0);
    expect(breaker.state).toBe('halfOpen');
    await expect(breaker.call(async () => 'probe')).resolves.toBe('probe');
  });

  it('a restored probe lease expires at its recorded deadline', async () => {
    const { breaker, store, clock } = simulatedBreaker({ probeLease: 5_000 }, NAME);
    await trip(breaker);
    clock.increment(30_000);
    void breaker.call(() => new Promise<never>(() => undefined));
    await flush();
    await breaker.settled();
    const record = JSON.parse(JSON.stringify(store.peek(NAME))) as StoredRecord;
    const deadline = T0 + 35_000;
    expect(Object.values(record.snapshot.context.probes)).toEqual([deadline]);
    breaker.dispose();

    const restored = await restoredAt(record, T0 + 32_000);
    expect(restored.breaker.state).toBe('halfOpen');
    restored.clock.increment(3_000 - 1);
    expect(restored.breaker.state).toBe('halfOpen');
    restored.clock.increment(1);
    expect(restored.breaker.state).toBe('open');
    expect(restored.breaker.context.reason).toBe('probeLeaseExpired');
    expect(restored.breaker.context.openedAt).toBe(deadline);
  });

  it('a restored forced-open circuit stays forced open', async () => {
    const { breaker, store } = simulatedBreaker({}, NAME);
    breaker.forceOpen();
    await breaker.settled();
    const record = JSON.parse(JSON.stringify(store.peek(NAME))) as StoredRecord;
    const { breaker: restored, clock } = await restoredAt(record, T0 + 10_000);
    clock.increment(10 * 30_000);
    expect(restored.state).toBe('forcedOpen');
  });
});
