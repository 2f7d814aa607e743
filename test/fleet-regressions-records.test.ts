import { CircuitBreaker, CorruptRecordError } from 'statebreaker';
import { DEFAULT_PREFIX, RedisStore } from 'statebreaker/redis';
import { describe, expect, it } from 'vitest';
import { breakerKeys } from '../src/stores/redis/keys.js';
import { type Member, settle, storedRecord, useFaultHarness } from './support/fault-fleet.js';
import { waitFor } from './support/redis-wait.js';
import { RECORD_CONFIG, snapshotJson } from './support/stored-snapshot.js';

// Regressions of what the fleet writes to Redis and reads back: writes must not be refused for a
// host clock that disagrees with Redis, a stored record must not wedge or degrade a breaker for
// good, and names must map to keys one to one. Each test failed against the protocol it guards
// against; none measures time.

const harness = useFaultHarness();

const config = RECORD_CONFIG;

const stateKey = (m: Member, name: string) => m.store.keys(name).state;

/** Whether the degraded mode is over: never entered, or left (`recovered`) after its last entry. */
function notDegraded(m: Member): boolean {
  const last = m.events.lastIndexOf('degraded');
  return last === -1 || m.events.indexOf('recovered', last) > last;
}

describe('a host clock that disagrees with Redis', () => {
  // Guards: a host clock 2 s behind Redis at start made writes refused. The compare-and-set
  // deadline was taken on the store's clock before its first measurement of server time, so an
  // operator's first write, made right away, was refused as late and the breaker went degraded.
  it('2 s behind Redis at start: the first write, made right away, lands, and no degraded event', async () => {
    const name = harness.begin('clock behind');
    const a = harness.join(name, config, { hostNow: () => Date.now() - 2_000 });
    a.breaker.forceOpen();
    expect(
      await waitFor(async () => (await harness.admin.get(stateKey(a, name))) === 'forcedOpen'),
    ).toBe(true);
    await a.breaker.settled();
    expect(a.events).not.toContain('degraded');
    // A trip on the same store lands as well.
    const tripName = `${name} trip`;
    const b = harness.join(tripName, config, { hostNow: () => Date.now() - 2_000 });
    expect(await settle(b.breaker, 'fail')).toBe('upstream');
    expect(await settle(b.breaker, 'fail')).toBe('upstream');
    expect(
      await waitFor(async () => (await harness.admin.get(stateKey(b, tripName))) === 'open'),
    ).toBe(true);
    expect(b.events).not.toContain('degraded');
  });

  // Guards: a wall clock stepping back by 60 s mid-run made writes refused. Every
  // compare-and-set carried a deadline 60 s in the past until the next clock measurement
  // (clockSyncInterval, a minute): the trip never reached Redis and the breaker went degraded.
  it('stepping back by 60 s mid-run: a trip still reaches Redis, and no degraded event', async () => {
    const name = harness.begin('clock steps back');
    let stepBack = 0;
    const a = harness.join(name, config, { hostNow: () => Date.now() - stepBack });
    await a.breaker.settled();
    expect(await settle(a.breaker, 'fail')).toBe('upstream');
    await a.breaker.settled();
    expect(await harness.admin.get(stateKey(a, name))).toBe('closed');

    stepBack = 60_000;
    expect(await settle(a.breaker, 'fail')).toBe('upstream');
    expect(a.breaker.state).toBe('open');
    const written = await waitFor(
      async () => (await harness.admin.get(stateKey(a, name))) === 'open',
      3_000,
    );
    expect(written, `the trip never reached Redis; events: ${a.events.join(', ')}`).toBe(true);
    expect(a.events).not.toContain('degraded');
  });
});

describe('a stored record that would wedge or degrade the breaker', () => {
  // Guards: a record in halfOpen.waiting holding a probe lease wedged the breaker. waiting runs
  // no lease timer and its only slot was taken, so no probe was ever admitted and the circuit
  // rejected every call forever. It must be reported as corrupt and a call admitted.
  it('halfOpen.waiting holding a probe lease: reported as a CorruptRecordError, and a call is admitted', async () => {
    const name = harness.begin('waiting with lease');
    const keys = breakerKeys(DEFAULT_PREFIX, name);
    const now = Date.now();
    await harness.admin.mset(
      keys.snapshot,
      snapshotJson(
        { halfOpen: 'waiting' },
        {
          openedAt: now - 61_000,
          probes: { 'gone-instance:1': now + 1_500 },
          generation: 2,
          reason: 'resetTimeoutElapsed',
        },
      ),
      keys.version,
      '7',
      keys.state,
      'halfOpen',
      keys.counter,
      '0',
    );

    const a = harness.join(name, config);
    await a.breaker.settled();
    const admitted = await waitFor(async () => (await settle(a.breaker, 'ok')) === 'ok', 5_000);
    expect(admitted, `every call rejected, the breaker stays ${a.breaker.state}`).toBe(true);
    expect(a.storeErrors.some((e) => e instanceof CorruptRecordError)).toBe(true);
    expect(a.events).not.toContain('degraded');
  });

  // Guards: a snapshot without `children` passed the schema check, and XState threw a
  // TypeError out of call() when the breaker restored it. It must be reported as corrupt, and
  // calls must go on.
  it('a snapshot without children: reported as a CorruptRecordError, and calls go on', async () => {
    const name = harness.begin('no children');
    const keys = breakerKeys(DEFAULT_PREFIX, name);
    const { children: _, ...withoutChildren } = JSON.parse(snapshotJson('closed')) as Record<
      string,
      unknown
    >;
    await harness.admin.mset(keys.snapshot, JSON.stringify(withoutChildren), keys.version, '3');
    const a = harness.join(name, config);
    await a.breaker.settled();
    expect(await settle(a.breaker, 'ok')).toBe('ok');
    expect(await settle(a.breaker, 'fail')).toBe('upstream');
    expect(a.storeErrors.some((e) => e instanceof CorruptRecordError)).toBe(true);
    expect(a.events).not.toContain('degraded');
    await a.breaker.settled();
    expect(JSON.parse((await harness.admin.get(keys.snapshot)) ?? '{}').children).toEqual({});
  });

  // Guards: a stored version of 2^53 - 1 left the breaker degraded for good. The next write
  // needed version 2^53, which compare-and-set refuses (not a safe integer), so every retry failed
  // and the trip never reached Redis.
  it('version 2^53 - 1 with a valid snapshot: the trip is written, and degraded is not stuck', async () => {
    const name = harness.begin('last version');
    const keys = breakerKeys(DEFAULT_PREFIX, name);
    await harness.admin.mset(
      keys.snapshot,
      snapshotJson('closed'),
      keys.version,
      String(Number.MAX_SAFE_INTEGER),
      keys.state,
      'closed',
      keys.counter,
      '0',
    );

    const a = harness.join(name, config);
    await a.breaker.settled();
    expect(a.breaker.state).toBe('closed');
    expect(await settle(a.breaker, 'fail')).toBe('upstream');
    expect(await settle(a.breaker, 'fail')).toBe('upstream');
    expect(a.breaker.state).toBe('open');
    const written = await waitFor(
      async () => (await harness.admin.get(keys.state)) === 'open',
      3_000,
    );
    expect(written, `the trip never reached Redis; events: ${a.events.join(', ')}`).toBe(true);
    expect((await storedRecord(harness.admin, a, name))?.snapshot.value).toBe('open');
    expect(await waitFor(() => notDegraded(a), 3_000), a.events.join(', ')).toBe(true);
    // Another instance starting now follows the trip.
    const late = harness.join(name, config);
    await late.breaker.settled();
    expect(late.breaker.state).toBe('open');
  });
});

describe('names and keys', () => {
  // Guards: names with a lone UTF-16 surrogate shared one key. Redis keys are bytes and a lone
  // surrogate encodes to U+FFFD in UTF-8, so 'a\uD800' and 'a\uDBFF' were one breaker in Redis
  // and two in the process. Such names must be refused, by the breaker and by RedisStore.
  it('a name with a lone surrogate is refused with a RangeError naming UTF-16', async () => {
    const redis = harness.connect();
    const store = new RedisStore(redis);
    try {
      for (const name of ['a\uD800', 'a\uDBFF', '\uDC00b']) {
        expect(() => new CircuitBreaker(name), JSON.stringify(name)).toThrow(RangeError);
        expect(() => new CircuitBreaker(name), JSON.stringify(name)).toThrow(/UTF-16/);
        expect(() => new CircuitBreaker(name, { store }), JSON.stringify(name)).toThrow(/UTF-16/);
        expect(() => store.keys(name), JSON.stringify(name)).toThrow(RangeError);
        expect(() => store.keys(name), JSON.stringify(name)).toThrow(/UTF-16/);
        expect(() => store.subscribe(name, () => {}), JSON.stringify(name)).toThrow(/UTF-16/);
        await expect(store.load(name), JSON.stringify(name)).rejects.toThrow(/UTF-16/);
      }
      // A well-formed pair is a character like any other.
      const emoji = new CircuitBreaker('a\uD83D\uDE00', { store });
      await emoji.settled();
      expect(store.keys('a\uD83D\uDE00').state).toContain('a\uD83D\uDE00');
      emoji.dispose();
    } finally {
      await store.close();
      redis.disconnect();
    }
  });
});
