import { getBreakerPaths, PATH_CONFIG } from 'statebreaker/testing';
import { describe, expect, it } from 'vitest';

// What getBreakerPaths generates for: its own small configuration when given none, the
// breaker's defaults for what a partial configuration leaves out (as the breaker under test,
// built with the same options, would have), and a clear word on options it does not model.

describe('getBreakerPaths(config)', () => {
  it('keeps its path configuration when given none: two probe slots, a lease apart', () => {
    expect(getBreakerPaths().config).toEqual(PATH_CONFIG);
    expect(PATH_CONFIG.halfOpenMaxCalls).toBe(2);
  });

  it("fills what a partial configuration leaves out from the breaker's own defaults", () => {
    expect(getBreakerPaths({ failMax: 2 }).config).toEqual({
      failMax: 2,
      resetTimeout: 30_000,
      successThreshold: 2,
      halfOpenMaxCalls: 1,
      probeLease: 30_000,
    });
  });

  it("takes timeout for what it does to the statechart: the probe lease, as the breaker's", () => {
    const { config, paths } = getBreakerPaths({ failMax: 2, timeout: 5_000 });
    expect(config.probeLease).toBe(6_000);
    expect(config).not.toHaveProperty('timeout');
    // A probe's lease expires 6 s after it started: a path moves the clock that far.
    const advances = paths.flatMap((path) => path.steps).filter((s) => s.kind === 'advance');
    expect(advances.map((step) => step.ms)).toContain(6_000);
  });

  it.each([
    ['classify', { classify: () => 'failure' as const }, /already classified/],
    ['retryAfter', { retryAfter: () => 1_000 }, /\{ retryAfterMs \}/],
    ['windowFlush', { failureRateThreshold: 50, windowFlush: 100 }, /breaker under test/],
    ['firstChunkTimeout', { firstChunkTimeout: 100 }, /times a stream.*`fail` step/],
    ['chunkTimeout', { chunkTimeout: 100 }, /times a stream.*`fail` step/],
  ])('refuses %s with the reason', (name, options, reason) => {
    const build = () => getBreakerPaths({ failMax: 2, ...options } as never);
    expect(build).toThrow(TypeError);
    expect(build).toThrow(`getBreakerPaths does not model option ${name}`);
    expect(build).toThrow(reason);
  });
});
