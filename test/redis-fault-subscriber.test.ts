import { describe, expect, it } from 'vitest';
import { converge, type Member, settle, useFaultHarness } from './support/fault-fleet.js';
import { waitFor } from './support/redis-wait.js';

// The change feed's connection dies while the command connection lives: the messages published
// meanwhile are lost. Instances must heal through the periodic resync and through their next
// write, before the subscriber is back (its reconnect is held off by a slow retry strategy).

const harness = useFaultHarness();

// Reconnects wait this long: the subscriber stays away while the test looks at healing.
const SLOW_RECONNECT = { retryStrategy: () => 20_000 };

function join(name: string, resyncInterval: number): Member {
  return harness.join(name, {}, { resyncInterval }, SLOW_RECONNECT);
}

async function subscribers(): Promise<number> {
  const list = (await harness.admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string;
  return list.split('\n').filter((line) => line.includes('sub=1')).length;
}

describe('the subscriber connection dies', () => {
  it('instances heal by the periodic resync and by their next write while it is away', async () => {
    const name = harness.begin('subscriber');
    const tripper = join(name, 60_000);
    const resyncing = join(name, 200);
    const writing = join(name, 60_000);
    const fleet = [tripper, resyncing, writing];
    for (const m of fleet) await m.breaker.settled();
    await settle(tripper.breaker, 'ok');
    expect(await waitFor(async () => (await subscribers()) === 3)).toBe(true);

    await harness.admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    expect(await waitFor(async () => (await subscribers()) === 0)).toBe(true);
    await settle(tripper.breaker, 'fail');
    await settle(tripper.breaker, 'fail');
    expect(tripper.breaker.state).toBe('open');
    await tripper.breaker.settled();

    // The periodic resync (200 ms) brings the trip to the second instance.
    expect(await waitFor(() => resyncing.breaker.state === 'open')).toBe(true);
    // The third instance resyncs only every minute: its next write conflicts, and it adopts
    // the stored record (its own failure belongs to the older generation and is dropped).
    expect(writing.breaker.state).toBe('closed');
    expect(await settle(writing.breaker, 'fail')).toBe('upstream');
    expect(await waitFor(() => writing.breaker.state === 'open')).toBe(true);
    // All of it happened with no subscriber connected: the feed did not do it.
    expect(await subscribers()).toBe(0);
    expect(await converge(harness.admin, fleet, name)).toBe(true);
    for (const m of fleet) expect(m.events).not.toContain('degraded');
  });
});
