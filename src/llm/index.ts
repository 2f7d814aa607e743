export { CIRCUIT_OPEN, circuitOpenResponse } from './circuit-open-response.js';
export { llmClassify } from './classify.js';
export { type BreakerFetchOptions, breakerFetch, type FetchFunction } from './fetch.js';
export { HttpStatusError } from './http-status-error.js';
export { llmRetryAfter } from './retry-after.js';
export type { Classify } from './settle.js';
export type { StreamRules } from './watch-stream.js';
