import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { windowKey } from '../src/stores/redis/keys.js';
import { converge, settle, useFaultHarness } from './support/fault-fleet.js';
import { FaultProxy } from './support/fault-proxy.js';

// The fleet's window when the network is not kind: one instance's replies come late (behind
// the change messages published after them) and its event loop stalls between calls. The fleet
// must still trip on the counts of both instances, and count no call twice.

const harness = useFaultHarness();
let proxy: FaultProxy;

beforeAll(async () => {
  proxy = await FaultProxy.start(harness.server.path);
});

afterAll(async () => {
  await proxy?.close();
});

const RATE = {
  failMax: Number.POSITIVE_INFINITY,
  failureRateThreshold: 50,
  minimumCalls: 10,
  window: 60_000,
  windowFlush: 100,
  resetTimeout: 60_000,
};

// A blocked event loop, as a long synchronous task in the service would block it.
function stall(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy
  }
}

describe('the fleet window over a network that is not kind', () => {
  it("trips on two instances' counts with late replies and a stalled loop, counting each call once", async () => {
    const name = harness.begin('window faults');
    const late = harness.join(name, RATE, { timeout: 400 }, { path: proxy.path });
    const direct = harness.join(name, RATE, { timeout: 400 });
    await Promise.all([late.breaker.settled(), direct.breaker.settled()]);
    proxy.commands.delayReplies(80);
    proxy.subscribers.delayMessages(40);

    // Neither instance reaches minimumCalls alone: 6 failures each.
    for (let i = 0; i < 6; i++) {
      await settle(late.breaker, 'fail');
      if (i % 2 === 0) stall(150);
      await settle(direct.breaker, 'fail');
    }
    await Promise.all([late.breaker.settled(), direct.breaker.settled()]);
    expect(await converge(harness.admin, [late, direct], name)).toBe(true);
    expect([late.breaker.state, direct.breaker.state]).toEqual(['open', 'open']);
    expect(direct.breaker.context.reason).toBe('failureRateReached');

    // Generation 0's window holds each counted call at most once.
    const stored = await harness.admin.hgetall(windowKey('circuit_breaker:', name));
    const sum = (kind: string) =>
      Object.entries(stored)
        .filter(([field]) => field.startsWith('0:') && field.endsWith(`:${kind}`))
        .reduce((total, [, value]) => total + Number(value), 0);
    expect(sum('c')).toBeLessThanOrEqual(12);
    expect(sum('f')).toBe(sum('c'));
    expect(sum('c')).toBeGreaterThanOrEqual(RATE.minimumCalls);
    proxy.commands.clear();
    proxy.subscribers.clear();
  });
});
