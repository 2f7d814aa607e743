// The `statebreaker/redis` entry: the store, its options and errors.
export { LostRecordError } from '../../record/errors.js';
export type { IORedisLikeClient, NodeRedisLikeClient, RedisClient } from './client.js';
export { RedisClock } from './clock.js';
export { type BreakerKeys, DEFAULT_PREFIX, encodeName } from './keys.js';
export { REDIS_STORE_DEFAULTS, type RedisStoreOptions } from './options.js';
export type { Publication } from './publication.js';
export { RedisStore, RedisStoreTimeoutError } from './store.js';
