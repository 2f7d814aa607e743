import { CorruptRecordError, listBreakers, reset } from 'statebreaker/admin';
import { RedisStore } from 'statebreaker/redis';
import { MAX_VERSION } from 'statebreaker/store';
import { afterEach, describe, expect, it } from 'vitest';
import { type Member, settle, storedRecord, useFaultHarness } from './support/fault-fleet.js';
import { waitFor } from './support/redis-wait.js';
import { snapshotJson } from './support/stored-snapshot.js';

// A reset replaces a stored record that no instance can use, and reaches the whole fleet: the
// operator's reset (admin API, CLI, dashboard) and the breaker's own `reset()`, on a real
// redis-server.

const harness = useFaultHarness();
const stores: RedisStore[] = [];

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

function adminStore(): RedisStore {
  const store = new RedisStore(harness.connect());
  stores.push(store);
  return store;
}

const options = { failMax: 2, resetTimeout: 60_000, probeLease: 60_000, successThreshold: 1 };

async function trip(member: Member): Promise<void> {
  for (let i = 0; i < 2; i++) await settle(member.breaker, 'fail');
  await member.breaker.settled();
}

describe('a reset over a record whose version key is corrupt', () => {
  // Guards: the operator's reset wrote the new record at version 1; instances holding a higher
  // version ignored it as a late message, kept rejecting while `list` said closed, and wrote
  // their open state back over it at their next change.
  it('reaches every instance: they close, and their next writes build on the reset', async () => {
    const name = harness.begin('reset garbled version');
    const a = harness.join(name, options);
    const b = harness.join(name, options);
    await b.breaker.settled();
    await trip(a);
    await waitFor(() => b.breaker.state === 'open');
    // Several versions in, so that a record at a low version is older than what they hold.
    a.breaker.forceOpen();
    await a.breaker.settled();
    await waitFor(() => b.breaker.state === 'forcedOpen');
    const held = (await storedRecord(harness.admin, a, name))?.version ?? 0;
    expect(held).toBeGreaterThan(1);
    await harness.admin.set(a.store.keys(name).version, 'garbled');

    await reset(adminStore(), name);

    expect(await waitFor(() => a.breaker.state === 'closed' && b.breaker.state === 'closed')).toBe(
      true,
    );
    expect(await settle(b.breaker, 'ok')).toBe('ok');
    // Their next change builds on the reset instead of writing the old state back.
    expect(await settle(a.breaker, 'fail')).toBe('upstream');
    await a.breaker.settled();
    await waitFor(() => b.breaker.context.failures === 1);
    const stored = await storedRecord(harness.admin, a, name);
    expect(stored?.snapshot.value).toBe('closed');
    expect(stored?.snapshot.context.failures).toBe(1);
    const listed = (await listBreakers(adminStore())).find((entry) => entry.name === name);
    expect(listed).toMatchObject({ corrupt: false, state: 'closed', failures: 1 });
    expect(b.breaker.state).toBe('closed');
    expect(a.events).not.toContain('storeError:LostRecordError');
    expect(b.events).not.toContain('storeError:LostRecordError');
  });
});

describe("the breaker's own reset() over a record it cannot use", () => {
  // Guards: `reset()` on a breaker that is closed locally changed nothing in the statechart, so
  // nothing was written, and the record no instance could restore stayed.
  it('replaces a record whose version key is garbled; the instance holding the old record adopts it', async () => {
    const name = harness.begin('own reset garbled');
    const a = harness.join(name, options);
    await trip(a);
    expect(a.breaker.state).toBe('open');
    await harness.admin.set(a.store.keys(name).version, 'garbled');
    const b = harness.join(name, options);
    await b.breaker.settled();
    expect(b.breaker.state).toBe('closed');
    expect(b.storeErrors.some((error) => error instanceof CorruptRecordError)).toBe(true);

    b.breaker.reset();
    await b.breaker.settled();

    const stored = await storedRecord(harness.admin, b, name);
    expect(stored?.snapshot.value).toBe('closed');
    expect(await waitFor(() => a.breaker.state === 'closed')).toBe(true);
    expect(await settle(a.breaker, 'ok')).toBe('ok');
  });

  it(`replaces a record at version ${MAX_VERSION} (the limit, where no write has room)`, async () => {
    const name = harness.begin('own reset at the limit');
    const c = harness.join(name, options);
    const keys = c.store.keys(name);
    await harness.admin.mset(
      keys.version,
      String(MAX_VERSION),
      keys.snapshot,
      snapshotJson('open', { openedAt: Date.now(), reason: 'failMaxReached', generation: 1 }),
      keys.write,
      'another-instance:1',
    );
    await c.breaker.settled();
    expect(c.storeErrors.some((error) => error instanceof CorruptRecordError)).toBe(true);

    c.breaker.reset();
    await c.breaker.settled();

    const stored = await storedRecord(harness.admin, c, name);
    expect(stored?.version).toBeLessThan(MAX_VERSION);
    expect(stored?.snapshot.value).toBe('closed');
    // A new instance reads it as it is: no problem to report.
    const d = harness.join(name, options);
    await d.breaker.settled();
    expect(d.storeErrors).toEqual([]);
    expect(d.breaker.state).toBe('closed');
  });
});
