export { CorruptRecordError } from '../record/errors.js';
export {
  type ConfigOptions,
  type CreateOptions,
  disable,
  forceOpen,
  type OperatorAction,
  type OperatorResult,
  reset,
} from './actions.js';
export { BreakerNotFoundError, OperatorConflictError } from './errors.js';
export { listBreakers, readBreaker } from './read.js';
export type { BreakerInfo, BreakerListing, CorruptBreaker } from './view.js';
export {
  type BreakerTransition,
  type BreakerWatch,
  type WatchOptions,
  watchBreakers,
} from './watch.js';
