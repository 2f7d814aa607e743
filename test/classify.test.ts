import { describe, expect, it } from 'vitest';
import type { Outcome } from '../src/index.js';
import {
  deferred,
  fail,
  failTimes,
  flush,
  simulatedBreaker,
  trip,
  UpstreamError,
} from './support/fake-upstream.js';

// An LLM answers 400 for a bad request or an over-long context: the caller's fault, not the
// upstream's, so it must neither trip nor close the circuit.
const llmClassify = (error: unknown): Outcome =>
  error instanceof UpstreamError && error.status === 400 ? 'ignored' : 'failure';
const badRequest = (): Promise<never> => Promise.reject(new UpstreamError(400));

describe('default classification', () => {
  it('counts every error as a failure and trips on the 5th in a row', async () => {
    const { breaker } = simulatedBreaker();
    await failTimes(breaker, 4);
    expect(breaker.state).toBe('closed');
    expect(breaker.context.failures).toBe(4);
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('open');
    expect(breaker.context.reason).toBe('failMaxReached');
  });

  it('resets the count of consecutive failures on a success', async () => {
    const { breaker } = simulatedBreaker();
    await failTimes(breaker, 4);
    await expect(breaker.call(async () => 'ok')).resolves.toBe('ok');
    expect(breaker.context.failures).toBe(0);
    await failTimes(breaker, 4);
    expect(breaker.state).toBe('closed');
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('open');
  });
});

describe("classify → 'ignored'", () => {
  it('neither trips nor resets the failure count in closed', async () => {
    const { breaker } = simulatedBreaker({ classify: llmClassify });
    await failTimes(breaker, 3);
    for (let i = 0; i < 20; i++) {
      await expect(breaker.call(badRequest)).rejects.toMatchObject({ status: 400 });
    }
    expect(breaker.state).toBe('closed');
    expect(breaker.context.failures).toBe(3);
    await failTimes(breaker, 2);
    expect(breaker.state).toBe('open');
  });

  it('frees a half-open probe slot without closing or reopening', async () => {
    const { breaker, clock } = simulatedBreaker({ classify: llmClassify, successThreshold: 1 });
    await trip(breaker);
    clock.increment(breaker.config.resetTimeout);
    expect(breaker.state).toBe('halfOpen');
    const generation = breaker.context.generation;

    await expect(breaker.call(badRequest)).rejects.toMatchObject({ status: 400 });
    await flush();
    expect(breaker.state).toBe('halfOpen');
    expect(breaker.context.probes).toEqual({});
    expect(breaker.context.successes).toBe(0);
    expect(breaker.context.generation).toBe(generation);

    // The freed slot admits the next probe, whose success closes (successThreshold 1).
    let called = false;
    await breaker.call(async () => {
      called = true;
    });
    expect(called).toBe(true);
    expect(breaker.state).toBe('closed');
  });

  it('does not count towards successThreshold while half-open', async () => {
    const { breaker, clock } = simulatedBreaker({ classify: llmClassify, successThreshold: 2 });
    await trip(breaker);
    clock.increment(breaker.config.resetTimeout);
    await breaker.call(async () => 'ok');
    await breaker.call(badRequest).catch(() => undefined);
    await flush();
    expect(breaker.state).toBe('halfOpen');
    expect(breaker.context.successes).toBe(1);
  });
});

describe("classify → 'success'", () => {
  it('counts the error as a success yet still rejects the call with it', async () => {
    const notFound = new UpstreamError(404);
    const { breaker } = simulatedBreaker({
      classify: (error) => (error === notFound ? 'success' : 'failure'),
    });
    await failTimes(breaker, 4);
    await expect(breaker.call(() => Promise.reject(notFound))).rejects.toBe(notFound);
    expect(breaker.context.failures).toBe(0);
  });

  it('closes a half-open circuit like a probe success', async () => {
    const notFound = new UpstreamError(404);
    const { breaker, clock } = simulatedBreaker({
      classify: (error) => (error === notFound ? 'success' : 'failure'),
      successThreshold: 1,
    });
    await trip(breaker);
    clock.increment(breaker.config.resetTimeout);
    await expect(breaker.call(() => Promise.reject(notFound))).rejects.toBe(notFound);
    expect(breaker.state).toBe('closed');
  });
});

describe('a broken classify', () => {
  const broken: [string, (error: unknown) => Outcome][] = [
    [
      'throws',
      () => {
        throw new Error('classify bug');
      },
    ],
    ['returns garbage', () => 'maybe' as Outcome],
    ['returns undefined', () => undefined as unknown as Outcome],
  ];

  for (const [label, classify] of broken) {
    it(`counts as a failure when it ${label}, and the call rejects with the original error`, async () => {
      const { breaker } = simulatedBreaker({ classify });
      const original = new UpstreamError(500);
      for (let i = 0; i < 5; i++) {
        await expect(breaker.call(() => Promise.reject(original))).rejects.toBe(original);
      }
      expect(breaker.state).toBe('open');
    });
  }

  it('reports what it threw as a classifyError, not a storeError', async () => {
    const bug = new Error('classify bug');
    const { breaker } = simulatedBreaker({
      classify: () => {
        throw bug;
      },
    });
    const heard: unknown[] = [];
    breaker.on('classifyError', ({ name, error }) => heard.push(['classifyError', name, error]));
    breaker.on('failure', () => heard.push('failure'));
    breaker.on('storeError', () => heard.push('storeError'));
    await expect(breaker.call(fail)).rejects.toBeInstanceOf(UpstreamError);
    expect(heard).toEqual([['classifyError', 'upstream', bug], 'failure']);
    expect((heard[0] as unknown[])[2]).toBe(bug);
    expect(breaker.context.failures).toBe(1);
  });

  it('reports an answer that is not an outcome as a classifyError naming it', async () => {
    const { breaker } = simulatedBreaker({
      classify: () => Object.create(null) as Outcome,
    });
    const errors: unknown[] = [];
    breaker.on('classifyError', (event) => errors.push(event.error));
    breaker.on('storeError', (event) => errors.push(event.error));
    await expect(breaker.call(fail)).rejects.toBeInstanceOf(UpstreamError);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(TypeError);
    expect(String(errors[0])).toMatch(/classify returned an object; counted as a failure/);
    expect(breaker.context.failures).toBe(1);
  });
});

describe("a call aborted by the caller's own signal", () => {
  it('is ignored even though classify says failure', async () => {
    const { breaker } = simulatedBreaker({ classify: () => 'failure' });
    await failTimes(breaker, 4);
    for (let i = 0; i < 3; i++) {
      const controller = new AbortController();
      const pending = breaker.call(() => new Promise<never>(() => undefined), {
        signal: controller.signal,
      });
      controller.abort(new Error('user navigated away'));
      await expect(pending).rejects.toThrow('user navigated away');
    }
    expect(breaker.state).toBe('closed');
    expect(breaker.context.failures).toBe(4);
  });

  it('is ignored when fn itself rejects with the abort reason', async () => {
    const { breaker } = simulatedBreaker();
    await failTimes(breaker, 4);
    const controller = new AbortController();
    const started = deferred<void>();
    const pending = breaker.call(
      (signal) =>
        new Promise<never>((_, reject) => {
          signal.addEventListener('abort', () => reject(signal.reason));
          started.resolve();
        }),
      { signal: controller.signal },
    );
    await started.promise;
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    expect(breaker.context.failures).toBe(4);
    await expect(breaker.call(fail)).rejects.toBeInstanceOf(UpstreamError);
    expect(breaker.state).toBe('open');
  });
});
