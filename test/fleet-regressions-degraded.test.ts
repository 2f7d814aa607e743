import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InspectionEvent } from 'xstate';
import { settle, useFaultHarness } from './support/fault-fleet.js';
import { FaultProxy } from './support/fault-proxy.js';
import { waitFor } from './support/redis-wait.js';

const harness = useFaultHarness();
let proxy: FaultProxy;

beforeAll(async () => {
  proxy = await FaultProxy.start(harness.server.path);
});

afterAll(async () => {
  await proxy?.close();
});

describe('a long outage of one instance', () => {
  // Guards: the events an instance kept while its store did not answer grew without bound
  // (about 150 B each), and replaying them all onto the record another instance wrote meanwhile
  // blocked the event loop for seconds when the store returned. Replayed events are counted
  // through the inspector, which sees every event sent to the statechart.
  it('replays at most a bounded number of kept events when the store returns, however long the outage', async () => {
    const name = harness.begin('long outage');
    const options = { failMax: 1_000_000, resetTimeout: 60_000 };
    let sent = 0;
    const inspect = (event: InspectionEvent) => {
      if (event.type === '@xstate.event') sent++;
    };
    const a = harness.join(name, { ...options, inspect }, {}, { path: proxy.path });
    const b = harness.join(name, options);
    await a.breaker.settled();
    await b.breaker.settled();

    // A is cut off (a black hole: no answer, no close); it keeps deciding locally.
    proxy.partition();
    const changes = 20_000;
    for (let i = 0; i < changes; i++) {
      // Alternating outcomes: every one changes the statechart (count, reset, count, ...).
      await settle(a.breaker, i % 2 === 0 ? 'fail' : 'ok');
    }
    expect(await waitFor(() => a.events.includes('degraded'))).toBe(true);
    // Meanwhile B changes the shared record, so A's writes will conflict and A must replay.
    b.breaker.forceOpen();
    await b.breaker.settled();

    const before = sent;
    proxy.heal();
    expect(await waitFor(() => a.breaker.state === 'forcedOpen', 10_000)).toBe(true);
    await a.breaker.settled();
    const replayed = sent - before;
    expect(replayed, `events sent to A's statechart while it reconciled`).toBeLessThanOrEqual(300);
    expect(a.breaker.state).toBe('forcedOpen');
  }, 60_000);
});
