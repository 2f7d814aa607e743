import { LostRecordError } from 'statebreaker';
import { describe, expect, it } from 'vitest';
import {
  converge,
  type Member,
  settle,
  storedRecord,
  useFaultHarness,
} from './support/fault-fleet.js';
import { waitFor } from './support/redis-wait.js';

// Redis losing data under an idle fleet: restarted empty or from an old dump, FLUSHALL, an
// evicted or expired key. Nobody calls afterwards: the instances holding the newer state must
// write it back by themselves (resync finds the loss), with a version above every one seen.

const harness = useFaultHarness();

/** Three instances; the first trips the circuit and every one sees it. Returns the version. */
async function trippedFleet(name: string): Promise<{ fleet: Member[]; version: number }> {
  const fleet = [0, 1, 2].map(() => harness.join(name));
  const [a] = fleet as [Member];
  for (const m of fleet) await m.breaker.settled();
  await settle(a.breaker, 'fail');
  await settle(a.breaker, 'fail');
  expect(a.breaker.state).toBe('open');
  expect(await converge(harness.admin, fleet, name)).toBe(true);
  const version = (await storedRecord(harness.admin, a, name))?.version ?? 0;
  expect(version).toBeGreaterThan(0);
  return { fleet, version };
}

async function expectRewritten(fleet: Member[], name: string, above: number): Promise<void> {
  const lost = () => fleet.some((m) => m.storeErrors.some((e) => e instanceof LostRecordError));
  expect(await waitFor(lost, 15_000)).toBe(true);
  expect(await converge(harness.admin, fleet, name)).toBe(true);
  const record = await storedRecord(harness.admin, fleet[0] as Member, name);
  expect(record?.snapshot.value).toBe('open');
  expect(record?.version).toBeGreaterThan(above);
  expect(fleet.every((m) => m.breaker.state === 'open')).toBe(true);
}

describe('Redis restarted with its old data', () => {
  it('the fleet writes its newer state over the older stored version', async () => {
    const name = harness.begin('old dump');
    const fleet = [0, 1, 2].map(() => harness.join(name));
    const [a] = fleet as [Member];
    for (const m of fleet) await m.breaker.settled();
    await settle(a.breaker, 'fail');
    expect(await converge(harness.admin, fleet, name)).toBe(true);
    const saved = (await storedRecord(harness.admin, a, name))?.version ?? 0;
    await harness.admin.save();
    await settle(a.breaker, 'fail');
    expect(await converge(harness.admin, fleet, name)).toBe(true);
    expect(a.breaker.state).toBe('open');

    await harness.restart();
    // The dump was loaded: Redis went back to the closed record with one failure.
    const info = await harness.admin.info('persistence');
    expect(Number(/rdb_last_load_keys_loaded:(\d+)/.exec(info)?.[1])).toBeGreaterThan(0);
    await expectRewritten(fleet, name, saved + 1);
  });
});

describe('Redis restarted empty', () => {
  it('an idle fleet re-creates the record above every version it saw', async () => {
    const name = harness.begin('empty');
    const { fleet, version } = await trippedFleet(name);
    await harness.restart();
    await expectRewritten(fleet, name, version);
  });
});

describe('Redis loses keys', () => {
  it('FLUSHALL: the record is re-created from the instances', async () => {
    const name = harness.begin('flushall');
    const { fleet, version } = await trippedFleet(name);
    await harness.admin.flushall();
    await expectRewritten(fleet, name, version);
  });

  it('an evicted snapshot key: the record is re-created from the instances', async () => {
    const name = harness.begin('evicted');
    const { fleet, version } = await trippedFleet(name);
    await harness.admin.del((fleet[0] as Member).store.keys(name).snapshot);
    await expectRewritten(fleet, name, version);
  });

  it('expired keys: the record is re-created from the instances', async () => {
    const name = harness.begin('expired');
    const { fleet, version } = await trippedFleet(name);
    const keys = (fleet[0] as Member).store.keys(name);
    await harness.admin.pexpire(keys.snapshot, 1);
    await harness.admin.pexpire(keys.version, 1);
    await expectRewritten(fleet, name, version);
  });
});
