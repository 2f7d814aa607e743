import { afterEach, describe, expect, it, vi } from 'vitest';
import type { BreakerEventMap, StateChangeEvent } from '../src/index.js';
import {
  deferred,
  fail,
  failTimes,
  flush,
  simulatedBreaker,
  succeed,
  trip,
  UpstreamError,
} from './support/fake-upstream.js';

afterEach(() => {
  vi.restoreAllMocks();
});

function recordChanges(breaker: ReturnType<typeof simulatedBreaker>['breaker']) {
  const changes: string[] = [];
  const events: StateChangeEvent[] = [];
  breaker.on('stateChange', (event) => {
    events.push(event);
    changes.push(`${event.from}→${event.to}:${event.reason}`);
  });
  return { changes, events };
}

describe("'stateChange'", () => {
  it('reports the automatic transitions with their reasons', async () => {
    const { breaker, clock } = simulatedBreaker({ probeLease: 1_000 }, 'llm');
    const { changes, events } = recordChanges(breaker);
    await trip(breaker);
    clock.increment(30_000);
    await breaker.call(fail).catch(() => undefined);
    clock.increment(30_000);
    void breaker.call(() => new Promise<never>(() => undefined));
    await flush();
    clock.increment(1_000);
    // Listeners hear what the record holds: an open state written before the next change.
    await flush();
    clock.increment(30_000);
    await breaker.call(succeed);
    await breaker.call(succeed);
    expect(changes).toEqual([
      'closed→open:failMaxReached',
      'open→halfOpen:resetTimeoutElapsed',
      'halfOpen→open:probeFailed',
      'open→halfOpen:resetTimeoutElapsed',
      'halfOpen→open:probeLeaseExpired',
      'open→halfOpen:resetTimeoutElapsed',
      'halfOpen→closed:successThresholdReached',
    ]);
    expect(events.every((event) => event.name === 'llm')).toBe(true);
    const generations = events.map((event) => event.generation);
    expect(generations).toEqual([...generations].sort((a, b) => a - b));
    expect(new Set(generations).size).toBe(generations.length);
    expect(generations.at(-1)).toBe(breaker.context.generation);
  });

  it('reports the operator transitions with their reasons, once each record holding one is written', async () => {
    const { breaker, clock } = simulatedBreaker();
    const { changes } = recordChanges(breaker);
    // Three actions in one tick are one record, closed as before: listeners hear nothing.
    breaker.forceOpen();
    breaker.disable();
    breaker.reset();
    expect(breaker.state).toBe('closed');
    await flush();
    expect(changes).toEqual([]);
    for (const [act, to] of [
      [() => breaker.forceOpen(), 'forcedOpen'],
      [() => breaker.disable(), 'disabled'],
      [() => breaker.reset(), 'closed'],
    ] as const) {
      const heard = changes.length;
      act();
      // In force for calls at once, heard once written.
      expect(breaker.state).toBe(to);
      expect(changes).toHaveLength(heard);
      await flush();
      expect(changes).toHaveLength(heard + 1);
    }
    await trip(breaker);
    await flush();
    breaker.reset();
    await flush();
    await trip(breaker);
    await flush();
    clock.increment(30_000);
    await flush();
    breaker.forceOpen();
    await flush();
    breaker.reset();
    await flush();
    expect(changes).toEqual([
      'closed→forcedOpen:forcedOpen',
      'forcedOpen→disabled:disabled',
      'disabled→closed:reset',
      'closed→open:failMaxReached',
      'open→closed:reset',
      'closed→open:failMaxReached',
      'open→halfOpen:resetTimeoutElapsed',
      'halfOpen→forcedOpen:forcedOpen',
      'forcedOpen→closed:reset',
    ]);
  });

  it('is not emitted when the top-level state does not change', async () => {
    const { breaker } = simulatedBreaker();
    const { changes } = recordChanges(breaker);
    await failTimes(breaker, 4);
    await breaker.call(succeed);
    breaker.reset();
    expect(changes).toEqual([]);
  });
});

describe('outcome events', () => {
  it("emits 'success', 'failure', 'ignored' and 'rejected' with their payloads", async () => {
    const badRequest = new UpstreamError(400);
    const { breaker } = simulatedBreaker(
      { failMax: 1, classify: (e) => (e === badRequest ? 'ignored' : 'failure') },
      'llm',
    );
    const seen: [keyof BreakerEventMap, unknown][] = [];
    for (const type of ['success', 'failure', 'ignored', 'rejected'] as const) {
      breaker.on(type, (event) => seen.push([type, event]));
    }
    await breaker.call(succeed);
    await breaker.call(() => Promise.reject(badRequest)).catch(() => undefined);
    const failure = await breaker.call(fail).catch((e: unknown) => e);
    const rejection = await breaker.call(succeed).catch((e: unknown) => e);
    const durationMs = expect.any(Number);
    expect(seen).toEqual([
      ['success', { name: 'llm', durationMs }],
      ['ignored', { name: 'llm', error: badRequest, durationMs }],
      ['failure', { name: 'llm', error: failure, durationMs }],
      ['rejected', { name: 'llm', error: rejection }],
    ]);
  });

  it('gives the duration of a call in ms, for calls that began while someone listened', async () => {
    const { breaker } = simulatedBreaker({}, 'timed');
    const durations: (number | undefined)[] = [];
    let release = () => {};
    const early = breaker.call(() => new Promise<void>((resolve) => (release = resolve)));
    breaker.on('success', ({ durationMs }) => durations.push(durationMs));
    release();
    await early;
    // A real timer: the lower bound it guarantees shows the unit, it measures no speed.
    await breaker.call(() => new Promise((resolve) => setTimeout(resolve, 30)));
    expect(durations).toHaveLength(2);
    expect(durations[0]).toBeUndefined();
    expect(durations[1]).toBeGreaterThanOrEqual(25);
  });
});

describe('unsubscribing', () => {
  it('works with the function on() returns and with off()', async () => {
    const { breaker } = simulatedBreaker();
    const byReturn = vi.fn();
    const byOff = vi.fn();
    const kept = vi.fn();
    const unsubscribe = breaker.on('failure', byReturn);
    breaker.on('failure', byOff);
    breaker.on('failure', kept);
    await failTimes(breaker, 1);
    unsubscribe();
    breaker.off('failure', byOff);
    await failTimes(breaker, 2);
    expect(byReturn).toHaveBeenCalledTimes(1);
    expect(byOff).toHaveBeenCalledTimes(1);
    expect(kept).toHaveBeenCalledTimes(3);
  });

  it('stops stateChange listeners too', async () => {
    const { breaker } = simulatedBreaker();
    const listener = vi.fn();
    const unsubscribe = breaker.on('stateChange', listener);
    breaker.forceOpen();
    // Heard once the record holding it is written.
    await flush();
    unsubscribe();
    breaker.reset();
    await flush();
    expect(listener).toHaveBeenCalledTimes(1);
  });
});

describe('a listener that throws', () => {
  it('breaks neither the call, the transition, nor the other listeners', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const { breaker } = simulatedBreaker({ failMax: 2 });
    const later = vi.fn();
    for (const type of ['success', 'failure', 'stateChange', 'rejected'] as const) {
      breaker.on(type, () => {
        throw new Error(`listener bug on ${type}`);
      });
      breaker.on(type, later);
    }
    await expect(breaker.call(succeed)).resolves.toBe('ok');
    await expect(breaker.call(fail)).rejects.toBeInstanceOf(UpstreamError);
    await expect(breaker.call(fail)).rejects.toBeInstanceOf(UpstreamError);
    expect(breaker.state).toBe('open');
    await expect(breaker.call(succeed)).rejects.toMatchObject({ name: 'CircuitBreakerError' });
    // success, failure ×2, stateChange, rejected
    expect(later).toHaveBeenCalledTimes(5);
    expect(warn).toHaveBeenCalledTimes(5);
    expect(String(warn.mock.calls[0]?.[0])).toContain('listener bug on success');
  });

  it('is refused when it is not a function', () => {
    const { breaker } = simulatedBreaker();
    expect(() => breaker.on('success', 'log' as unknown as () => void)).toThrow(TypeError);
  });
});

describe('operator states', () => {
  it('forceOpen() rejects every call and no timer closes it', async () => {
    const { breaker, clock, store } = simulatedBreaker();
    await trip(breaker);
    breaker.forceOpen();
    await flush();
    expect(store.peek('upstream')?.snapshot.value).toBe('forcedOpen');
    expect(breaker.context.reason).toBe('forcedOpen');
    clock.increment(breaker.config.resetTimeout * 10);
    expect(breaker.state).toBe('forcedOpen');
    const fn = vi.fn(succeed);
    await expect(breaker.call(fn)).rejects.toMatchObject({ state: 'forcedOpen' });
    expect(fn).not.toHaveBeenCalled();
  });

  it('forceOpen() cancels the probes of a half-open circuit and fences them off', async () => {
    const { breaker, clock } = simulatedBreaker({ successThreshold: 1 });
    await trip(breaker);
    clock.increment(breaker.config.resetTimeout);
    const probe = deferred<string>();
    const pending = breaker.call(() => probe.promise);
    await flush();
    breaker.forceOpen();
    probe.resolve('late');
    await pending;
    await flush();
    expect(breaker.state).toBe('forcedOpen');
    clock.increment(breaker.config.probeLease * 2);
    expect(breaker.state).toBe('forcedOpen');
  });

  it('disable() lets every call through and records nothing', async () => {
    const { breaker, clock, store } = simulatedBreaker();
    await failTimes(breaker, 3);
    breaker.disable();
    await flush();
    expect(store.peek('upstream')?.snapshot.value).toBe('disabled');
    const context = structuredClone(breaker.context);
    const failures = vi.fn();
    breaker.on('failure', failures);
    for (let i = 0; i < 20; i++) {
      await expect(breaker.call(fail)).rejects.toBeInstanceOf(UpstreamError);
    }
    await expect(breaker.call(succeed)).resolves.toBe('ok');
    clock.increment(breaker.config.resetTimeout * 10);
    await flush();
    expect(breaker.state).toBe('disabled');
    expect(breaker.context).toEqual(context);
    expect(failures).not.toHaveBeenCalled();
  });

  it('reset() closes from every state and clears the counters', async () => {
    const { breaker, clock, store } = simulatedBreaker();
    const reached: string[] = [];
    const resetFrom = async (setUp: () => Promise<void> | void) => {
      await setUp();
      reached.push(breaker.state);
      breaker.reset();
      await flush();
      expect(breaker.state).toBe('closed');
      expect(breaker.context.failures).toBe(0);
      expect(breaker.context.probes).toEqual({});
      expect(store.peek('upstream')?.snapshot.value).toBe('closed');
    };
    await resetFrom(() => failTimes(breaker, 3));
    await resetFrom(() => trip(breaker));
    await resetFrom(async () => {
      await trip(breaker);
      clock.increment(breaker.config.resetTimeout);
      void breaker.call(() => new Promise<never>(() => undefined)).catch(() => undefined);
      await flush();
    });
    await resetFrom(() => breaker.forceOpen());
    await resetFrom(() => breaker.disable());
    expect(reached).toEqual(['closed', 'open', 'halfOpen', 'forcedOpen', 'disabled']);
    // A reset circuit counts afresh: it takes failMax new failures to trip again.
    await failTimes(breaker, 4);
    expect(breaker.state).toBe('closed');
  });

  it('reset() in closed fences the streak: a call admitted before it that fails late counts nowhere', async () => {
    const { breaker } = simulatedBreaker({ failMax: 2 });
    const late = deferred<never>();
    const admitted = breaker.call(() => late.promise).catch(() => undefined);
    await failTimes(breaker, 1);
    breaker.reset();
    late.reject(new UpstreamError(500));
    await admitted;
    await flush();
    expect(breaker.context.failures).toBe(0);
    // One new failure after the reset does not trip: only the reset's own streak counts.
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('closed');
  });
});
