import { MemoryStore } from 'statebreaker';
import {
  type BreakerPath,
  type BreakerPaths,
  createPathBreaker,
  createSimulatedClock,
  runBreakerPath,
} from 'statebreaker/testing';

/** Runs one path against `instances` real breakers of one name on a fresh MemoryStore. */
export async function runOnMemoryStore(
  paths: BreakerPaths,
  path: BreakerPath,
  instances = 1,
): Promise<void> {
  // A start far from 0 keeps a bug that treats `openedAt` 0 as "never opened" visible.
  const clock = createSimulatedClock(1_000_000);
  const store = new MemoryStore({ clock });
  const breakers = Array.from({ length: instances }, () =>
    createPathBreaker('model', { clock, store, config: paths.config }),
  );
  try {
    await runBreakerPath(path, { breakers, clock });
  } finally {
    for (const breaker of breakers) breaker.dispose();
  }
}

/** The coverage line the model tests print. */
export function coverageLine(name: string, paths: BreakerPaths): string {
  return (
    `${name}: ${paths.vertices} vertices, ${paths.edges} edges; ` +
    `covered ${paths.coveredVertices}/${paths.vertices} vertices, ` +
    `${paths.coveredEdges}/${paths.edges} edges, by ${paths.paths.length} paths`
  );
}
