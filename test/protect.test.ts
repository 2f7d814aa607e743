import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { CircuitBreakerError } from '../src/index.js';
import { simulatedBreaker, UpstreamError } from './support/fake-upstream.js';

const run = promisify(execFile);

describe('breaker.protect(fn)', () => {
  it("keeps fn's parameter types and resolves to its result type", () => {
    const { breaker } = simulatedBreaker();
    const complete = breaker.protect(async (prompt: string, maxTokens: number) => ({
      text: prompt.repeat(maxTokens),
    }));
    expectTypeOf(complete).parameters.toEqualTypeOf<[string, number]>();
    expectTypeOf(complete).returns.toEqualTypeOf<Promise<{ text: string }>>();
    const count = breaker.protect((items: readonly string[]) => items.length);
    expectTypeOf(count).parameters.toEqualTypeOf<[readonly string[]]>();
    expectTypeOf(count).returns.toEqualTypeOf<Promise<number>>();
    // @ts-expect-error: the wrapper refuses arguments fn would refuse.
    void complete('hi');
  });

  it('passes the arguments through and resolves with the result', async () => {
    const { breaker } = simulatedBreaker();
    const complete = breaker.protect(async (prompt: string, times: number) => prompt.repeat(times));
    await expect(complete('ab', 3)).resolves.toBe('ababab');
  });

  it('passes `this` through', async () => {
    const { breaker } = simulatedBreaker();
    const client = {
      base: 'https://llm.example',
      url: breaker.protect(function (this: { base: string }, path: string) {
        return `${this.base}${path}`;
      }),
    };
    await expect(client.url('/v1/chat')).resolves.toBe('https://llm.example/v1/chat');
  });

  it('records outcomes and rejects without calling fn once open', async () => {
    const { breaker } = simulatedBreaker();
    let calls = 0;
    const flaky = breaker.protect(async () => {
      calls++;
      throw new UpstreamError();
    });
    for (let i = 0; i < 5; i++) await expect(flaky()).rejects.toBeInstanceOf(UpstreamError);
    expect(breaker.state).toBe('open');
    await expect(flaky()).rejects.toBeInstanceOf(CircuitBreakerError);
    expect(calls).toBe(5);
  });

  it("keeps fn's name and length, so that stack traces and arity checks still see fn", () => {
    const { breaker } = simulatedBreaker();
    async function complete(_prompt: string, _maxTokens: number) {
      return 'ok';
    }
    const wrapped = breaker.protect(complete);
    expect(wrapped.name).toBe('complete');
    expect(wrapped.length).toBe(2);
    const anonymous = breaker.protect((_a: number, _b: number, _c: number) => _a);
    expect(anonymous.length).toBe(3);
  });

  it('refuses a non-function with a TypeError', () => {
    const { breaker } = simulatedBreaker();
    expect(() => breaker.protect(42 as unknown as () => void)).toThrow(TypeError);
  });
});

describe('@breaker.protect as a TypeScript 5 method decorator', () => {
  it('works when called without `this`, as a standard decorator is', async () => {
    const { breaker } = simulatedBreaker();
    // TC39 decorators call `@breaker.protect` as a plain function: `this` is undefined.
    const { protect } = breaker;
    const wrapped = protect(async (x: number) => x * 2);
    await expect(wrapped(21)).resolves.toBe(42);
  });

  it('protects a class method in a real TypeScript program', async () => {
    // The test runner's transformer (oxc, Vite 8) leaves standard decorators unlowered, so the
    // program runs in a child process under tsx (esbuild), as a user's app would.
    const fixture = fileURLToPath(new URL('./fixtures/decorated-client.ts', import.meta.url));
    const { stdout } = await run(process.execPath, ['--import', 'tsx', fixture], {
      timeout: 20_000,
    });
    expect(JSON.parse(stdout)).toEqual({
      reply: 'small: hello',
      errors: Array(5).fill('upstream answered 503'),
      stateAfterFailures: 'open',
      rejectedWith: 'open',
      healthyCallsDuringOpen: 0,
      failingCalls: [3, 2],
      method: { name: 'chat', length: 1 },
    });
  });
});
