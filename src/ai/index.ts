export {
  type FailoverModelOptions,
  type FailoverModelTarget,
  failoverModel,
} from './failover-model.js';
export {
  type BreakerMiddleware,
  type BreakerMiddlewareOptions,
  breakerMiddleware,
} from './middleware.js';
export type {
  CallOptionsLike,
  LanguageModelLike,
  StreamPartLike,
  StreamResultLike,
} from './model-types.js';
export { upstreamName } from './upstream-name.js';
