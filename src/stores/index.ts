// statebreaker/store: what a store author needs. The breaker's users import from statebreaker.
export { ConfigMismatchError, CorruptRecordError, LostRecordError } from '../record/errors.js';
export { isIdleRecord } from '../record/lapse.js';
export {
  isVersion,
  MAX_VERSION,
  orderOf,
  type RecordOrder,
  type RecordStamp,
  stampOf,
  supersedes,
  versionAbove,
} from '../record/order.js';
export type {
  BreakerStateValue,
  PersistedBreakerSnapshot,
  StoredRecord,
} from '../record/shape.js';
export {
  decodeSnapshot,
  encodeSnapshot,
  parseVersion,
  recordProblem,
  snapshotProblem,
} from '../record/validation.js';
export { MemoryStore, type MemoryStoreOptions } from './memory.js';
export {
  asFollower,
  type BreakerStore,
  type CompareAndSetResult,
  type RecordEntry,
  type StoreFollower,
  type StoreWatcher,
} from './store.js';
