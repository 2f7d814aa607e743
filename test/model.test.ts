import { DEFAULTS } from 'statebreaker';
import { getBreakerPaths } from 'statebreaker/testing';
import { describe, expect, it } from 'vitest';
import { checkAgainstReference } from './support/model-oracle.js';
import { coverageLine, runOnMemoryStore } from './support/model-runner.js';

// The small config has two probe slots, so that probes overlap; the default one is the
// origin design's (5 failures, 2 successes, 1 probe), with the lease equal to resetTimeout as
// when no timeout is set.
const configs = {
  small: getBreakerPaths(),
  default: getBreakerPaths({ ...DEFAULTS, probeLease: DEFAULTS.resetTimeout }),
};

for (const [name, paths] of Object.entries(configs)) {
  describe(`model-based, ${name} config (${JSON.stringify(paths.config)})`, () => {
    it(`covers every edge: ${coverageLine(name, paths)}`, () => {
      console.log(coverageLine(name, paths));
      expect(paths.edges).toBeGreaterThan(paths.vertices);
      expect(paths.coveredVertices).toBe(paths.vertices);
      expect(paths.coveredEdges).toBe(paths.edges);
    });

    it('every step of every path agrees with the hand-written rules', () => {
      const disagreements = paths.paths
        .map((path) => [path.description, checkAgainstReference(path, paths.config)])
        .filter(([, problem]) => problem !== null);
      expect(disagreements).toEqual([]);
    });

    describe('one breaker on a MemoryStore', () => {
      it.each(paths.paths.map((path) => [path.description, path] as const))('%s', (_, path) =>
        runOnMemoryStore(paths, path),
      );
    });
  });
}

describe('model-based, a fleet of three breakers on one MemoryStore (steps dealt round-robin)', () => {
  const paths = configs.small;
  it.each(paths.paths.map((path) => [path.description, path] as const))('%s', (_, path) =>
    runOnMemoryStore(paths, path, 3),
  );
});
