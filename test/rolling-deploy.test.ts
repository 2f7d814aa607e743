import { readFileSync } from 'node:fs';
import { CircuitBreakerError } from 'statebreaker';
import { reset } from 'statebreaker/admin';
import { DEFAULT_PREFIX, RedisStore } from 'statebreaker/redis';
import { MAX_VERSION } from 'statebreaker/store';
import { afterEach, describe, expect, it } from 'vitest';
import { breakerKeys, fenceKey, sequenceKey } from '../src/stores/redis/keys.js';
import { type Member, settle, storedRecord, useFaultHarness } from './support/fault-fleet.js';
import { waitFor } from './support/redis-wait.js';

// A rolling deploy runs the release before this one (0.1.0) beside this one on the same records:
// each reads what the other writes and writes on top of it. The old release is its records, as
// its code wrote them to Redis (the keys of one breaker, stored in fixtures/), and its
// compare-and-set script, run as it ran it.

const fixtures = new URL('./fixtures/release-0.1.0/', import.meta.url);
type Keys = Record<
  'snapshot' | 'version' | 'state' | 'counter' | 'openedAt' | 'write',
  string | null
>;
const old = JSON.parse(readFileSync(new URL('records.json', fixtures), 'utf8')) as Record<
  'closed' | 'forcedOpen',
  Keys
>;
const oldScript = readFileSync(new URL('compareAndSet-7.lua', fixtures), 'utf8');

// The fleet's options in the fixture's records: the old instances ran with these.
const options = { failMax: 3, resetTimeout: 60_000 };

const harness = useFaultHarness();
const stores: RedisStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

/** Writes one breaker's keys as the old release left them. */
async function plant(name: string, keys: Keys): Promise<void> {
  const target = breakerKeys(DEFAULT_PREFIX, name);
  for (const [field, value] of Object.entries(keys)) {
    const key = target[field as keyof Keys];
    if (value === null) await harness.admin.del(key);
    else await harness.admin.set(key, value);
  }
}

/**
 * A write of an old instance: the 0.1.0 script with the arguments its store gave it (the same
 * layout as today's), on standalone Redis's numbered change feed.
 */
function oldWrite(
  member: Member,
  name: string,
  expected: { version: number; writeId: string },
  next: { version: number; snapshot: Record<string, unknown> & { writeId: string } },
): Promise<unknown> {
  const keys = member.store.keys(name);
  const prefix = DEFAULT_PREFIX;
  const { snapshot } = next;
  const context = snapshot.context as { failures: number; openedAt: number | null };
  return harness.admin.eval(
    oldScript,
    7,
    keys.snapshot,
    keys.version,
    keys.state,
    keys.counter,
    keys.openedAt,
    keys.write,
    sequenceKey(prefix),
    expected.version,
    next.version,
    JSON.stringify(snapshot),
    typeof snapshot.value === 'string' ? snapshot.value : 'halfOpen',
    context.failures,
    context.openedAt ?? '',
    `${prefix}changes`,
    name,
    expected.writeId,
    Date.now() + 60_000,
    snapshot.writeId,
    MAX_VERSION,
    'numbered',
    '',
  );
}

/** An instance of this release that counted one failure, and the record it wrote. */
async function oneFailure(name: string) {
  const member = harness.join(name, options);
  expect(await settle(member.breaker, 'fail')).toBe('upstream');
  await member.breaker.settled();
  const mine = await storedRecord(harness.admin, member, name);
  if (mine === null) throw new Error('no record written');
  return { member, mine };
}

describe('a rolling deploy from 0.1.0', () => {
  it('reads a record the old release wrote and writes on top of it, comparing its write id', async () => {
    const name = harness.begin('old closed');
    await plant(name, old.closed);
    const member = harness.join(name, options);
    await member.breaker.settled();
    expect(member.breaker.state).toBe('closed');
    expect(member.breaker.context.failures).toBe(2);
    expect(member.storeErrors).toEqual([]);

    expect(await settle(member.breaker, 'fail')).toBe('upstream');
    await member.breaker.settled();
    expect(member.breaker.state).toBe('open');
    const stored = await storedRecord(harness.admin, member, name);
    // The next version, on top of the old write (its id in the lineage): no conflict, no re-creation.
    expect(stored?.version).toBe(Number(old.closed.version) + 1);
    expect(stored?.snapshot.lineage?.split(' ')).toContain(old.closed.write);
    expect(member.storeErrors).toEqual([]);
  });

  it('follows an old forced-open record, and an operator of this release resets it', async () => {
    const name = harness.begin('old forced open');
    await plant(name, old.forcedOpen);
    const member = harness.join(name, options);
    await member.breaker.settled();
    expect(member.breaker.state).toBe('forcedOpen');
    await expect(member.breaker.call(async () => 'ok')).rejects.toThrow(CircuitBreakerError);
    const store = new RedisStore(harness.connect());
    stores.push(store);
    const { breaker } = await reset(store, name);
    expect(breaker).toMatchObject({ state: 'closed', version: Number(old.forcedOpen.version) + 1 });
    expect(await waitFor(() => member.breaker.state === 'closed')).toBe(true);
  });

  it('an old instance writes on top of a record of this release, and this release follows its write', async () => {
    const name = harness.begin('old writes on new');
    const { member, mine } = await oneFailure(name);
    // This release's records keep the old shape: the same fields, the same schema
    const oldFields = Object.keys(JSON.parse(old.closed.snapshot as string)).sort();
    // (a first record has no lineage yet).
    expect(oldFields).toEqual(expect.arrayContaining(Object.keys(mine.snapshot)));
    expect(mine.snapshot.schema).toBe(JSON.parse(old.closed.snapshot as string).schema);

    // The old instance counts the second failure on what it read, as its store would write it.
    const writeId = 'old-instance.1:7';
    const snapshot = {
      ...mine.snapshot,
      context: { ...mine.snapshot.context, failures: 2 },
      writeId,
      lineage: `${mine.snapshot.lineage ?? ''} ${mine.snapshot.writeId}`.trim(),
    };
    const reply = await oldWrite(
      member,
      name,
      { version: mine.version, writeId: mine.snapshot.writeId as string },
      { version: mine.version + 1, snapshot },
    );
    expect((reply as unknown[])[0]).toBe(1); // WRITTEN
    expect(await waitFor(() => member.breaker.context.failures === 2)).toBe(true);

    // And this release writes on top of the old write.
    expect(await settle(member.breaker, 'fail')).toBe('upstream');
    await member.breaker.settled();
    const after = await storedRecord(harness.admin, member, name);
    expect(after?.version).toBe(mine.version + 2);
    expect(after?.snapshot.value).toBe('open');
    expect(after?.snapshot.lineage?.split(' ')).toContain(writeId);
    expect(member.storeErrors).toEqual([]);
  });

  it("the old script's compare-and-set on a record of this release refuses a stale write id", async () => {
    const name = harness.begin('old refused');
    const { member, mine } = await oneFailure(name);
    const reply = await oldWrite(
      member,
      name,
      { version: mine.version, writeId: 'someone-else:1' },
      { version: mine.version + 1, snapshot: { ...mine.snapshot, writeId: 'old-instance.2:1' } },
    );
    expect((reply as unknown[])[0]).toBe(0); // CONFLICT
    expect((await storedRecord(harness.admin, member, name))?.version).toBe(mine.version);
  });

  it('compares write ids by the write key alone: a record without one is refused, then written on its version', async () => {
    const name = harness.begin('no write key');
    const member = harness.join(name, options);
    await plant(name, { ...old.closed, write: null });
    const stored = await storedRecord(harness.admin, member, name);
    if (stored === null) throw new Error('no record planted');
    const next = {
      version: stored.version + 1,
      snapshot: { ...stored.snapshot, writeId: 'new:1' },
    };
    // The JSON names the write, but the script no longer reads it there.
    const refused = await member.store.compareAndSet(
      name,
      stored.version,
      next,
      stored.snapshot.writeId,
    );
    expect(refused).toMatchObject({ ok: false, currentVersion: stored.version });
    expect(refused.ok === false && refused.current?.snapshot.writeId).toBe(old.closed.write);
    // What the breaker does then: the very base it expected, written over on the version alone.
    expect(await member.store.compareAndSet(name, stored.version, next)).toMatchObject({
      ok: true,
    });
    expect(await harness.admin.get(member.store.keys(name).write)).toBe('new:1');
  });

  it("an old instance knows no operator fence: its write lands through one, and the operator's next write lands on it", async () => {
    const name = harness.begin('old through a fence');
    const { member, mine } = await oneFailure(name);
    const fence = fenceKey(DEFAULT_PREFIX, name);
    // An operator of this release wrote on an older record: its conflict set its fence.
    const operator = (version: number, writeId: string) => ({
      version,
      snapshot: {
        ...mine.snapshot,
        value: 'forcedOpen',
        context: { ...mine.snapshot.context, failures: 0, reason: 'forcedOpen' as const },
        writeId,
      },
    });
    const conflict = await member.store.compareAndSet(
      name,
      mine.version - 1,
      operator(mine.version, 'op:1'),
      undefined,
      'op',
    );
    expect(conflict).toMatchObject({ ok: false, currentVersion: mine.version });
    expect(await harness.admin.get(fence)).toBe('op');

    // The old script reads neither the fence's key nor its arguments: it writes as it did.
    const writeId = 'old-instance.3:1';
    const reply = await oldWrite(
      member,
      name,
      { version: mine.version, writeId: mine.snapshot.writeId as string },
      { version: mine.version + 1, snapshot: { ...mine.snapshot, writeId } },
    );
    expect((reply as unknown[])[0]).toBe(1); // WRITTEN
    expect(await harness.admin.get(fence)).toBe('op');

    // The operator's next write, built on the old write, lands and lifts the fence.
    const landed = await member.store.compareAndSet(
      name,
      mine.version + 1,
      operator(mine.version + 2, 'op:2'),
      writeId,
      'op',
    );
    expect(landed.ok).toBe(true);
    expect(await harness.admin.get(fence)).toBeNull();
    expect(await waitFor(() => member.breaker.state === 'forcedOpen')).toBe(true);
    expect(member.storeErrors).toEqual([]);
  });
});
