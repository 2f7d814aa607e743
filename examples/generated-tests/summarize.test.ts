// Tests generated from the breaker's statechart: summarize() driven through every transition of
// it (every edge of its graph: tripping, rejecting, half-opening, probes that succeed, fail or
// never answer, operator actions), on a simulated clock, checked after every step.
//
//   npx vitest run examples/generated-tests
import { MemoryStore } from 'statebreaker';
import {
  type BreakerPath,
  type BreakerStep,
  type CallOutcome,
  createPathBreaker,
  createSimulatedClock,
  getBreakerPaths,
  runBreakerPath,
} from 'statebreaker/testing';
import { describe, expect, it } from 'vitest';
import { type Summary, summarize } from './summarize.js';

// The thresholds your breaker runs with: the paths are generated for them. Build the breakers
// under test with the `config` that comes back (the thresholds, completed with the defaults).
const { paths, config } = getBreakerPaths({
  failMax: 3,
  successThreshold: 2,
  resetTimeout: 30_000,
});
const cases = paths.map((path) => [path.description, path] as const);

/** Every call the breaker rejects falls back, and no other call does. */
function fallsBackExactlyWhenRejected(event: {
  startedBy: BreakerStep;
  outcome: CallOutcome<Summary>;
}): void {
  const { startedBy, outcome } = event;
  const fellBack = outcome.status === 'fulfilled' && outcome.value.fallback;
  expect(fellBack).toBe(startedBy.rejects === true);
}

/** Runs `path` on `breakers`; `upstream` plays the LLM, answering as the path's step says. */
async function run(path: BreakerPath, fleet: number): Promise<void> {
  const clock = createSimulatedClock();
  // Breakers of one name on one store share one statechart: a fleet, as processes on Redis.
  const store = new MemoryStore({ clock });
  const breakers = Array.from({ length: fleet }, () =>
    createPathBreaker('llm', { clock, config, store }),
  );
  try {
    await runBreakerPath(path, {
      breakers,
      clock,
      call: (breaker, upstream) => summarize(breaker, (_, signal) => upstream(signal), 'a text'),
      onCallSettled: fallsBackExactlyWhenRejected,
    });
  } finally {
    for (const breaker of breakers) breaker.dispose();
  }
}

describe('summarize() on every path of the statechart', () => {
  it.each(cases)('%s', (_, path) => run(path, 1));
});

describe('summarize() in a fleet of two sharing one store, steps dealt in turn', () => {
  it.each(cases)('%s', (_, path) => run(path, 2));
});
