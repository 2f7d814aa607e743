import { CircuitBreaker, CircuitBreakerError, MemoryStore } from 'statebreaker';
import {
  BreakerNotFoundError,
  type BreakerTransition,
  CorruptRecordError,
  disable,
  forceOpen,
  listBreakers,
  readBreaker,
  reset,
  watchBreakers,
} from 'statebreaker/admin';
import type { StoredRecord } from 'statebreaker/store';
import { createSimulatedClock } from 'statebreaker/testing';
import { describe, expect, it } from 'vitest';

// The admin API on the embedded store: operator actions go through the statechart under the
// stored configuration, reach every breaker of the name, and bad input changes nothing.

const START = 1_700_000_000_000;

function setup() {
  const clock = createSimulatedClock(START);
  const store = new MemoryStore({ clock });
  const errors: unknown[] = [];
  const breaker = (name: string, options: Record<string, number> = {}) => {
    const created = new CircuitBreaker(name, {
      store,
      failMax: 2,
      resetTimeout: 10_000,
      ...options,
    });
    created.on('storeError', ({ error }) => errors.push(error));
    return created;
  };
  return { clock, store, breaker, errors };
}

async function fail(breaker: CircuitBreaker, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    await breaker
      .call(async () => {
        throw new Error('upstream down');
      })
      .catch(() => {});
  }
  await breaker.settled();
}

describe('reading breakers', () => {
  it("counts retry-after down from the circuit's own open duration (an upstream's retry-after, backoff)", async () => {
    const { clock, store } = setup();
    const limited = new CircuitBreaker('limited', {
      store,
      failMax: 5,
      resetTimeout: 10_000,
      retryAfter: () => 45_000,
    });
    await limited.call(async () => Promise.reject(new Error('429'))).catch(() => {});
    await limited.settled();
    clock.increment(5_000);
    const [info] = await listBreakers(store);
    expect(info).toMatchObject({ name: 'limited', state: 'open', reason: 'retryAfter' });
    expect(info?.corrupt === false && info.openDurationMs).toBe(45_000);
    expect(info?.corrupt === false && info.retryAfterMs).toBe(40_000);
  });

  it('lists every breaker with a record, with its state, counters, retry-after and version', async () => {
    const { clock, store, breaker } = setup();
    expect(await listBreakers(store)).toEqual([]);
    const b = breaker('b');
    const a = breaker('a');
    breaker('never-failed');
    await fail(a, 1);
    await fail(b, 2);
    clock.increment(4_000);
    const listed = await listBreakers(store);
    expect(listed.map((entry) => entry.name)).toEqual(['a', 'b']);
    const [first, second] = listed;
    expect(first).toMatchObject({
      name: 'a',
      corrupt: false,
      state: 'closed',
      failures: 1,
      retryAfterMs: null,
      probes: 0,
    });
    expect(second).toMatchObject({
      name: 'b',
      state: 'open',
      stateValue: 'open',
      reason: 'failMaxReached',
      failures: 0,
      openedAt: START,
      retryAfterMs: 6_000,
      generation: 1,
      config: { failMax: 2, resetTimeout: 10_000 },
    });
    expect(second?.version).toBeGreaterThan(0);
    expect(await readBreaker(store, 'b')).toEqual(second);
  });

  it('counts the probes in flight of a half-open breaker', async () => {
    const { clock, store, breaker } = setup();
    const b = breaker('probing', { halfOpenMaxCalls: 2 });
    await fail(b, 2);
    clock.increment(10_000);
    const release: (() => void)[] = [];
    const probes = [1, 2].map(() =>
      b.call(() => new Promise<void>((resolve) => release.push(resolve))),
    );
    await b.settled();
    expect(await readBreaker(store, 'probing')).toMatchObject({
      state: 'halfOpen',
      stateValue: 'halfOpen.probing',
      probes: 2,
      retryAfterMs: null,
    });
    for (const done of release) done();
    await Promise.all(probes);
  });

  it('reads a breaker the store holds no record of as BreakerNotFoundError', async () => {
    const { store } = setup();
    await expect(readBreaker(store, 'nobody')).rejects.toThrow(BreakerNotFoundError);
    await expect(readBreaker(store, 'nobody')).rejects.toThrow(/no breaker named "nobody"/);
  });

  it('refuses a bad name or a store that is none, naming it', async () => {
    const { store } = setup();
    await expect(readBreaker(store, '')).rejects.toThrow(RangeError);
    await expect(forceOpen(store, 42 as unknown as string)).rejects.toThrow(
      /forceOpen: breaker name must be a string/,
    );
    await expect(listBreakers({} as MemoryStore)).rejects.toThrow(
      /listBreakers: store must be a breaker store/,
    );
  });
});

describe('operator actions', () => {
  it('force open, disable and reset reach every breaker of the name, with no mismatch reported', async () => {
    const { store, breaker, errors } = setup();
    const one = breaker('llm');
    const two = breaker('llm');
    await fail(one, 1);
    const versionBefore = (await readBreaker(store, 'llm')).version;

    const opened = await forceOpen(store, 'llm');
    expect(opened).toMatchObject({ from: 'closed', changed: true });
    expect(opened.breaker).toMatchObject({
      state: 'forcedOpen',
      reason: 'forcedOpen',
      failures: 0,
    });
    expect(opened.breaker.version).toBe(versionBefore + 1);
    await Promise.resolve();
    expect([one.state, two.state]).toEqual(['forcedOpen', 'forcedOpen']);
    await expect(two.call(async () => 1)).rejects.toThrow(CircuitBreakerError);

    const disabled = await disable(store, 'llm');
    expect(disabled).toMatchObject({ from: 'forcedOpen', changed: true });
    await Promise.resolve();
    expect(one.state).toBe('disabled');
    await fail(one, 5);
    expect(one.state).toBe('disabled');

    const closed = await reset(store, 'llm');
    expect(closed).toMatchObject({ from: 'disabled', changed: true });
    expect(closed.breaker).toMatchObject({ state: 'closed', reason: 'reset', failures: 0 });
    await Promise.resolve();
    expect([one.state, two.state]).toEqual(['closed', 'closed']);
    expect(errors).toEqual([]);
  });

  it('writes under the stored configuration, whatever the admin side knows', async () => {
    const { store, breaker, errors } = setup();
    const b = breaker('configured', { failMax: 7, resetTimeout: 1_234 });
    await fail(b, 1);
    const { breaker: after } = await forceOpen(store, 'configured');
    expect(after.config).toMatchObject({ failMax: 7, resetTimeout: 1_234 });
    await reset(store, 'configured');
    await b.settled();
    expect(errors).toEqual([]);
  });

  it('changes nothing when the breaker is already there', async () => {
    const { store, breaker } = setup();
    await fail(breaker('calm'), 1);
    const first = await forceOpen(store, 'calm');
    const again = await forceOpen(store, 'calm');
    expect(again).toMatchObject({ from: 'forcedOpen', changed: false });
    expect(again.breaker.version).toBe(first.breaker.version);
    await reset(store, 'calm');
    const closedAgain = await reset(store, 'calm');
    expect(closedAgain.changed).toBe(false);
  });

  it('a breaker that does not exist: BreakerNotFoundError, nothing written', async () => {
    const { store } = setup();
    for (const action of [forceOpen, disable, reset]) {
      await expect(action(store, 'ghost')).rejects.toThrow(BreakerNotFoundError);
    }
    expect(await listBreakers(store)).toEqual([]);
  });

  it('creates the record of a breaker that never failed when given the fleet configuration', async () => {
    const { store, breaker, errors } = setup();
    const healthy = breaker('healthy', { failMax: 3 });
    await healthy.call(async () => 'fine');
    const { breaker: after } = await forceOpen(store, 'healthy', {
      create: { failMax: 3, resetTimeout: 10_000 },
    });
    expect(after).toMatchObject({ state: 'forcedOpen', version: 1 });
    await Promise.resolve();
    expect(healthy.state).toBe('forcedOpen');
    expect(errors).toEqual([]);
    await expect(forceOpen(store, 'x', { create: { store } as never })).rejects.toThrow(
      /option create takes the configuration options/,
    );
  });

  it("creates a record under any configuration a stored record holds: the record's config is what create takes", async () => {
    const { store } = setup();
    const fleet = {
      failMax: 4,
      resetTimeout: 20_000,
      backoff: { multiplier: 2, max: 120_000 },
      retryAfterFloor: 500,
      failureRateThreshold: 50,
      minimumCalls: 10,
    };
    const member = new CircuitBreaker('fleet-member', { store, ...fleet });
    await fail(member, 4);
    const { config } = await readBreaker(store, 'fleet-member');
    expect(config).toMatchObject({
      backoffMultiplier: 2,
      backoffMax: 120_000,
      retryAfterFloor: 500,
    });
    // The stored config, field for field, creates the same configuration...
    const { breaker: created } = await forceOpen(store, 'created-from-config', { create: config });
    expect(created.config).toEqual(config);
    // ...and so do the breaker's own options.
    const { breaker: fromOptions } = await forceOpen(store, 'created-from-options', {
      create: fleet,
    });
    expect(fromOptions.config).toEqual(config);
    member.dispose();

    await expect(
      forceOpen(store, 'half-a-backoff', { create: { backoffMax: 120_000 } }),
    ).rejects.toThrow(/backoffMultiplier and backoffMax together .*got only backoffMax/);
    await expect(
      forceOpen(store, 'two-backoffs', {
        create: { backoffMultiplier: 2, backoffMax: 120_000, backoff: { multiplier: 2, max: 1 } },
      }),
    ).rejects.toThrow(/not both/);
    expect((await listBreakers(store)).map((entry) => entry.name).sort()).toEqual([
      'created-from-config',
      'created-from-options',
      'fleet-member',
    ]);
  });

  it('applies the action again to the record that won a conflict', async () => {
    const { store, breaker } = setup();
    const b = breaker('contended', { failMax: 10 });
    await fail(b, 1);
    // Another writer lands between the operator's read and its write, once.
    const compareAndSet = store.compareAndSet.bind(store);
    let raced = false;
    store.compareAndSet = async (name, expected, record, writeId) => {
      if (!raced && record.snapshot.writeId?.startsWith('operator-')) {
        raced = true;
        await fail(b, 1);
      }
      return compareAndSet(name, expected, record, writeId);
    };
    const result = await forceOpen(store, 'contended');
    expect(raced).toBe(true);
    expect(result.changed).toBe(true);
    // Built on the winner: its version and lineage follow the record the other writer wrote.
    const stored = store.peek('contended') as StoredRecord;
    expect(stored.snapshot.value).toBe('forcedOpen');
    expect(result.breaker.version).toBe(stored.version);
    await Promise.resolve();
    expect(b.state).toBe('forcedOpen');
  });
});

describe('corrupt records', () => {
  async function plantCorrupt(store: MemoryStore, name: string, context: Record<string, unknown>) {
    const good = (await readBreaker(store, name)).record;
    const bad = {
      version: good.version + 1,
      snapshot: { ...good.snapshot, context: { ...good.snapshot.context, ...context } },
    } as StoredRecord;
    const written = await store.compareAndSet(name, good.version, bad, good.snapshot.writeId);
    expect(written.ok).toBe(true);
    return bad;
  }

  // No breaker of the name follows the store meanwhile: one would replace the corrupt record
  // from its own state at once.
  it('lists a corrupt record as corrupt, reads it as CorruptRecordError, and only reset replaces it', async () => {
    const { store, breaker } = setup();
    const b = breaker('garbled');
    await fail(b, 1);
    b.dispose();
    await fail(breaker('fine'), 1);
    const bad = await plantCorrupt(store, 'garbled', { failures: -3 });
    const listed = await listBreakers(store);
    expect(listed.map((entry) => [entry.name, entry.corrupt])).toEqual([
      ['fine', false],
      ['garbled', true],
    ]);
    expect(listed[1]).toMatchObject({ problem: expect.stringMatching(/failures is -3/) });
    await expect(readBreaker(store, 'garbled')).rejects.toThrow(CorruptRecordError);
    await expect(forceOpen(store, 'garbled')).rejects.toThrow(/only a reset replaces/);
    await expect(disable(store, 'garbled')).rejects.toThrow(CorruptRecordError);
    expect(store.peek('garbled')).toBe(bad);

    const { breaker: after } = await reset(store, 'garbled');
    expect(after).toMatchObject({ state: 'closed', reason: 'reset' });
    // Above any version an instance may hold: the stored one says nothing it can be trusted with.
    expect(after.version).toBeGreaterThan(bad.version);
    expect(after.config).toEqual(bad.snapshot.context.config);
  });

  it('refuses to reset a corrupt record whose configuration cannot be read', async () => {
    const { store, breaker } = setup();
    const b = breaker('lost-config');
    await fail(b, 1);
    b.dispose();
    const bad = await plantCorrupt(store, 'lost-config', { config: { failMax: 'five' } });
    await expect(reset(store, 'lost-config')).rejects.toThrow(/configuration cannot be read/);
    expect(store.peek('lost-config')).toBe(bad);
  });
});

describe('watching breakers', () => {
  it('hears every transition of every breaker, with the state before, and every change', async () => {
    const { store, breaker } = setup();
    const a = breaker('a');
    await fail(a, 1);
    const transitions: BreakerTransition[] = [];
    const changes: string[] = [];
    const watch = watchBreakers(store, (t) => transitions.push(t), {
      onChange: (listing) => changes.push(listing.name),
    });
    const ready = await watch.ready;
    expect(ready.map((entry) => [entry.name, entry.corrupt ? 'corrupt' : entry.state])).toEqual([
      ['a', 'closed'],
    ]);
    await fail(a, 1);
    const b = breaker('b');
    await fail(b, 1);
    await forceOpen(store, 'b');
    await reset(store, 'a');
    await Promise.resolve();
    expect(transitions.map((t) => [t.name, t.from, t.to, t.reason])).toEqual([
      ['a', 'closed', 'open', 'failMaxReached'],
      ['b', 'closed', 'forcedOpen', 'forcedOpen'],
      ['a', 'open', 'closed', 'reset'],
    ]);
    expect(transitions[0]).toMatchObject({ generation: 1, at: START, breaker: { state: 'open' } });
    // A failure counted is a change but no transition.
    expect(changes).toEqual(['a', 'b', 'b', 'a']);
    watch.close();
    await forceOpen(store, 'a');
    await Promise.resolve();
    expect(transitions).toHaveLength(3);
  });

  it('follows only the named breakers when asked', async () => {
    const { store, breaker } = setup();
    const transitions: string[] = [];
    const watch = watchBreakers(store, (t) => transitions.push(`${t.name}:${t.to}`), {
      names: ['x'],
    });
    expect(await watch.ready).toEqual([]);
    await fail(breaker('x'), 2);
    await fail(breaker('y'), 2);
    await Promise.resolve();
    expect(transitions).toEqual(['x:open']);
    watch.close();
  });
});
