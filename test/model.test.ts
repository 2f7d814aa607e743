import { DEFAULTS } from 'statebreaker';
import { getBreakerPaths } from 'statebreaker/testing';
import { describe, expect, it } from 'vitest';
import { checkAgainstReference } from './support/model-oracle.js';
import { coverageLine, runOnMemoryStore } from './support/model-runner.js';
import { policyPaths } from './support/policy-paths.js';

// The small config has two probe slots, so that probes overlap; the default one is the
// origin design's (5 failures, 2 successes, 1 probe), with the lease equal to resetTimeout as
// when no timeout is set.
// The policy configurations (rate windows, quorum, backoff, retry-after) run the same way; a
// quorum's paths name instances, so they run on as many breakers as the quorum.
const configs = {
  small: getBreakerPaths(),
  default: getBreakerPaths({ ...DEFAULTS, probeLease: DEFAULTS.resetTimeout }),
  ...policyPaths(),
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

    describe(`${paths.instances === 1 ? 'one breaker' : `${paths.instances} breakers`} on a MemoryStore`, () => {
      it.each(paths.paths.map((path) => [path.description, path] as const))('%s', (_, path) =>
        runOnMemoryStore(paths, path, paths.instances),
      );
    });
  });
}

for (const name of ['small', ...Object.keys(policyPaths())] as const) {
  const paths = configs[name as keyof typeof configs];
  describe(`model-based, ${name} config, a fleet of three breakers on one MemoryStore (steps dealt round-robin)`, () => {
    it.each(paths.paths.map((path) => [path.description, path] as const))('%s', (_, path) =>
      runOnMemoryStore(paths, path, 3),
    );
  });
}
