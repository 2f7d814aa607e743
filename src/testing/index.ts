/**
 * Model-based testing for code that uses a breaker: every transition of `breakerMachine`,
 * generated with `@xstate/graph`, as plain steps a person can drive their own code with, and a
 * runner that drives real breakers through them on a simulated clock.
 *
 * @example
 * import { createPathBreaker, createSimulatedClock, getBreakerPaths, runBreakerPath }
 *   from 'statebreaker/testing';
 * for (const path of getBreakerPaths().paths) {
 *   const clock = createSimulatedClock();
 *   await runBreakerPath(path, { breakers: [createPathBreaker('llm', { clock })], clock });
 * }
 *
 * @packageDocumentation
 */
export { createSimulatedClock, SimulatedClock } from './clock.js';
export {
  classifyPathError,
  createPathBreaker,
  type PathBreaker,
  type PathBreakerOptions,
  PathFailureError,
  PathIgnoredError,
  pathRetryAfter,
} from './path-breaker.js';
export { getBreakerPaths, type PathConfig } from './paths.js';
export {
  BreakerPathError,
  type CallOutcome,
  type RunPathOptions,
  runBreakerPath,
} from './runner.js';
export {
  type BreakerCounters,
  type BreakerPath,
  type BreakerPaths,
  type BreakerStep,
  type BreakerStepKind,
  PATH_CONFIG,
} from './steps.js';
