import type { StateChangeEvent } from 'statebreaker';
import { describe, expect, it } from 'vitest';
import {
  converge,
  type Member,
  type Settled,
  settle,
  storedRecord,
  useFaultHarness,
} from './support/fault-fleet.js';
import { waitFor } from './support/redis-wait.js';

// Redis gone while breakers work: down at start, killed under traffic, paused by CLIENT PAUSE,
// frozen during a half-open admission. Calls must settle without Redis, throw only what the
// user's function threw (or the breaker's own rejection), and the fleet must converge on Redis
// once it returns.

const harness = useFaultHarness();

function fleet(name: string, size: number, options: Record<string, number> = {}): Member[] {
  return Array.from({ length: size }, () => harness.join(name, options));
}

/** Settled calls are the user's outcome or the breaker's rejection; none hung, none foreign. */
function expectClean(results: readonly Settled[]): void {
  for (const result of results) expect(['ok', 'upstream', 'rejected']).toContain(result);
}

describe('Redis down at start', () => {
  it('calls flow on the local statechart, degraded is said, and the state is written when Redis comes up', async () => {
    const name = harness.begin('down at start');
    await harness.server.kill();
    const [a, b] = fleet(name, 2) as [Member, Member];
    const results = [
      await settle(a.breaker, 'ok'),
      await settle(a.breaker, 'fail'),
      await settle(a.breaker, 'fail'),
      await settle(a.breaker, 'ok'),
      await settle(b.breaker, 'ok'),
    ];
    expect(results).toEqual(['ok', 'upstream', 'upstream', 'rejected', 'ok']);
    expect(a.breaker.state).toBe('open');
    expect(await waitFor(() => a.events.includes('degraded'))).toBe(true);
    expect(await waitFor(() => b.events.includes('degraded'))).toBe(true);

    await harness.server.restart();
    expect(await waitFor(() => a.events.includes('recovered'), 15_000)).toBe(true);
    // The trip made while Redis was down reaches the other instance.
    expect(await converge(harness.admin, [a, b], name)).toBe(true);
    expect(b.breaker.state).toBe('open');
    expect((await storedRecord(harness.admin, a, name))?.snapshot.value).toBe('open');
  });
});

describe('Redis killed with SIGKILL under traffic, restarted empty', () => {
  it('calls keep settling, a trip made during the outage reaches the fleet, and all agree with Redis', async () => {
    const name = harness.begin('killed');
    const [a, b, c] = fleet(name, 3, { failMax: 3 }) as [Member, Member, Member];
    for (const m of [a, b, c]) await m.breaker.settled();
    const results: Settled[] = [];
    let traffic = true;
    // B and C alternate failures and successes: every call changes the record, so writes are
    // in flight when Redis dies.
    const drive = async (m: Member) => {
      for (let i = 0; traffic; i++) {
        results.push(await settle(m.breaker, i % 2 === 0 ? 'fail' : 'ok'));
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const loops = [drive(b), drive(c)];
    expect(await waitFor(() => results.length >= 20)).toBe(true);
    await harness.server.kill();
    const beforeTrip = results.length;
    expect(await waitFor(() => results.length >= beforeTrip + 20)).toBe(true);
    traffic = false;
    await Promise.all(loops);
    expectClean(results);

    // A trips while Redis is down, on failures of its own: a success first clears any failure
    // it adopted from the traffic, so that its trip holds whichever record it meets when Redis
    // returns (its unconfirmed events are applied again on top of the newer stored record).
    expect(a.breaker.state).toBe('closed');
    expect(await settle(a.breaker, 'ok')).toBe('ok');
    for (let i = 0; i < 3 && a.breaker.state === 'closed'; i++) {
      expect(await settle(a.breaker, 'fail')).toBe('upstream');
    }
    expect(a.breaker.state).toBe('open');
    expect(await settle(a.breaker, 'ok')).toBe('rejected');
    expect(await waitFor(() => a.events.includes('degraded'))).toBe(true);

    await harness.server.restart();
    expect(await converge(harness.admin, [a, b, c], name)).toBe(true);
    expect([a, b, c].map((m) => m.breaker.state)).toEqual(['open', 'open', 'open']);
    expect(await waitFor(() => a.events.includes('recovered'))).toBe(true);
  });
});

describe('Redis paused with CLIENT PAUSE', () => {
  it('calls settle before Redis answers again, and the fleet converges after', async () => {
    const name = harness.begin('client pause');
    const [a, b] = fleet(name, 2) as [Member, Member];
    await a.breaker.settled();
    await b.breaker.settled();
    const order: string[] = [];
    const pinger = harness.connect();
    try {
      await pinger.ping();
      await harness.admin.call('CLIENT', 'PAUSE', '3000', 'ALL');
      const answered = pinger.ping().then(() => order.push('redis answered'));
      const results = [
        await settle(a.breaker, 'fail'),
        await settle(a.breaker, 'fail'),
        await settle(a.breaker, 'ok'),
        await settle(b.breaker, 'ok'),
      ];
      order.push('calls settled');
      expect(results).toEqual(['upstream', 'upstream', 'rejected', 'ok']);
      expect(await waitFor(() => a.events.includes('degraded'))).toBe(true);
      await answered;
      expect(order).toEqual(['calls settled', 'redis answered']);
    } finally {
      pinger.disconnect();
    }
    expect(await waitFor(() => a.events.includes('recovered'), 15_000)).toBe(true);
    expect(await converge(harness.admin, [a, b], name)).toBe(true);
    expect(b.breaker.state).toBe('open');
  });
});

describe('Redis frozen with SIGSTOP during a half-open admission', () => {
  it('the probe is admitted by the local statechart after the store timeout and settles', async () => {
    const name = harness.begin('frozen probe');
    const [a, b] = fleet(name, 2, { resetTimeout: 300, successThreshold: 1 }) as [Member, Member];
    await a.breaker.settled();
    const changes: StateChangeEvent[] = [];
    a.breaker.on('stateChange', (change) => changes.push(change));
    await settle(a.breaker, 'fail');
    await settle(a.breaker, 'fail');
    expect(await waitFor(() => a.breaker.state === 'halfOpen')).toBe(true);
    expect(await converge(harness.admin, [a, b], name)).toBe(true);
    // Heard once the record holding it is confirmed: from here on, only the probe's close.
    expect(await waitFor(() => changes.at(-1)?.to === 'halfOpen')).toBe(true);
    changes.length = 0;
    harness.server.pause();
    let probe: Settled;
    try {
      // Admission waits for the store at most its timeout; frozen Redis never answers.
      probe = await settle(a.breaker, 'ok');
      expect(a.breaker.state).toBe('closed');
    } finally {
      harness.server.resume();
    }
    expect(probe).toBe('ok');
    // Decided alone, on an admission the store never answered: the close is speculative.
    expect(changes.map(({ to, speculative }) => ({ to, speculative }))).toEqual([
      { to: 'closed', speculative: true },
    ]);
    expect(await converge(harness.admin, [a, b], name)).toBe(true);
    expect(b.breaker.state).toBe('closed');
  });
});
