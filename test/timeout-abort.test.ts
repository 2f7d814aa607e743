import { describe, expect, it } from 'vitest';
import { CallTimeoutError } from '../src/index.js';
import { deferred, failTimes, flush, simulatedBreaker, trip } from './support/fake-upstream.js';

/** Starts a call whose fn never settles and ignores its signal; resolves with that signal. */
async function hangingCall(
  breaker: ReturnType<typeof simulatedBreaker>['breaker'],
  signal?: AbortSignal,
) {
  const handed = deferred<AbortSignal>();
  const pending = breaker.call(
    (s) => {
      handed.resolve(s);
      return new Promise<never>(() => undefined);
    },
    signal === undefined ? undefined : { signal },
  );
  pending.catch(() => undefined);
  return { pending, signal: await handed.promise };
}

/** Calls with a signal aborted beforehand and expects `reason` back; says whether fn ran. */
async function callAlreadyAborted(
  breaker: ReturnType<typeof simulatedBreaker>['breaker'],
  reason: Error,
): Promise<boolean> {
  let called = false;
  await expect(
    breaker.call(
      () => {
        called = true;
      },
      { signal: AbortSignal.abort(reason) },
    ),
  ).rejects.toBe(reason);
  await flush();
  return called;
}

describe('timeout', () => {
  it('aborts the signal handed to fn with a CallTimeoutError and rejects with it', async () => {
    const { breaker, clock } = simulatedBreaker({ timeout: 2_000 });
    const { pending, signal } = await hangingCall(breaker);
    clock.increment(1_999);
    await flush();
    expect(signal.aborted).toBe(false);
    clock.increment(1);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(CallTimeoutError);
    const error = await pending.catch((e: unknown) => e);
    expect(error).toBe(signal.reason);
    expect(error).toMatchObject({
      name: 'CallTimeoutError',
      breaker: 'upstream',
      timeoutMs: 2_000,
    });
  });

  it('counts as a failure, and five timeouts trip the circuit', async () => {
    const { breaker, clock } = simulatedBreaker({ timeout: 500 });
    for (let i = 1; i <= 5; i++) {
      const { pending } = await hangingCall(breaker);
      clock.increment(500);
      await expect(pending).rejects.toBeInstanceOf(CallTimeoutError);
      if (i < 5) expect(breaker.context.failures).toBe(i);
    }
    expect(breaker.state).toBe('open');
  });

  it('counts as a failure even when classify would ignore every error', async () => {
    const { breaker, clock } = simulatedBreaker({ timeout: 500, classify: () => 'ignored' });
    const { pending } = await hangingCall(breaker);
    clock.increment(500);
    await expect(pending).rejects.toBeInstanceOf(CallTimeoutError);
    expect(breaker.context.failures).toBe(1);
  });

  it('does not abort a call that answered in time', async () => {
    const { breaker, clock } = simulatedBreaker({ timeout: 500 });
    let handed: AbortSignal | undefined;
    await expect(
      breaker.call(async (signal) => {
        handed = signal;
        return 42;
      }),
    ).resolves.toBe(42);
    clock.increment(10_000);
    expect(handed?.aborted).toBe(false);
    expect(breaker.context.failures).toBe(0);
  });
});

describe("the caller's signal", () => {
  it('aborted mid-call rejects with its reason, aborts fn, and is ignored', async () => {
    const { breaker } = simulatedBreaker({ timeout: 5_000 });
    await failTimes(breaker, 4);
    const controller = new AbortController();
    const { pending, signal } = await hangingCall(breaker, controller.signal);
    const reason = new Error('caller gave up');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
    expect(breaker.state).toBe('closed');
    expect(breaker.context.failures).toBe(4);
  });

  it('already aborted: fn is not called, the call rejects with its reason, nothing changes', async () => {
    const { breaker } = simulatedBreaker();
    await failTimes(breaker, 2);
    const before = structuredClone(breaker.context);
    const reason = new Error('aborted before the call');
    expect(await callAlreadyAborted(breaker, reason)).toBe(false);
    expect(breaker.state).toBe('closed');
    expect(breaker.context).toEqual(before);
  });

  it('already aborted in half-open: takes no probe slot', async () => {
    const { breaker, clock } = simulatedBreaker();
    await trip(breaker);
    clock.increment(breaker.config.resetTimeout);
    expect(breaker.state).toBe('halfOpen');
    const before = structuredClone(breaker.context);
    const reason = new Error('aborted before the call');
    expect(await callAlreadyAborted(breaker, reason)).toBe(false);
    expect(breaker.context).toEqual(before);
  });
});
