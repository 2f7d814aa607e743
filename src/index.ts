export { type CallOptions, CircuitBreaker } from './breaker.js';
export { type Clock, systemClock } from './clock.js';
export { BreakerDisposedError, CallTimeoutError, CircuitBreakerError } from './errors.js';
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
export { getCircuitBreaker, resetAllBreakers } from './registry.js';
export { ConfigMismatchError, CorruptRecordError } from './snapshot.js';
export { CircuitState } from './state.js';
export { LostRecordError } from './stores/lost-record.js';
export { MemoryStore, type MemoryStoreOptions } from './stores/memory.js';
export {
  isVersion,
  MAX_VERSION,
  orderOf,
  type RecordOrder,
  type RecordStamp,
  supersedes,
} from './stores/record-order.js';
export type {
  BreakerStore,
  CompareAndSetResult,
  PersistedBreakerSnapshot,
  RecordEntry,
  StoredRecord,
  StoreFollower,
  StoreWatcher,
} from './stores/store.js';
export type { WindowRates } from './window/window-rates.js';
