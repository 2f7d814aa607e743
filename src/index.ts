export type { Attempt, AttemptOptions } from './attempt.js';
export { type CallOptions, CircuitBreaker } from './breaker.js';
export { type Clock, systemClock } from './clock.js';
export {
  BreakerDisposedError,
  CallTimeoutError,
  ChunkTimeoutError,
  CircuitBreakerError,
  FirstChunkTimeoutError,
} from './errors.js';
export type { BreakerEventMap, BreakerListener, StateChangeEvent } from './events.js';
export {
  type BreakerConfig,
  type BreakerContext,
  type BreakerEvent,
  type BreakerMachine,
  breakerMachine,
  type TransitionReason,
} from './machine.js';
export { MAX_NAME_LENGTH } from './name.js';
export { type BreakerOptions, DEFAULTS, type InspectOption, type Outcome } from './options.js';
export {
  ConfigMismatchError,
  CorruptRecordError,
  LostRecordError,
} from './record/errors.js';
export { getCircuitBreaker, resetAllBreakers } from './registry.js';
export { AllTargetsFailedError, RouteTimeoutError, type TargetAttempt } from './route/errors.js';
export {
  failover,
  type Route,
  type RouteCallOptions,
  type RouteOptions,
  type RouteTarget,
} from './route/failover.js';
export type { FailoverEvent, FailoverReason } from './route/failover-feed.js';
export { CircuitState } from './state.js';
export { MemoryStore, type MemoryStoreOptions } from './stores/memory.js';
export type { StreamSource } from './stream/source.js';
export type { StreamFunction, StreamOptions } from './stream/stream-options.js';
export type { WindowRates } from './window/window-rates.js';
