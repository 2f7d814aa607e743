export { llmClassify } from './classify.js';
export { llmRetryAfter } from './retry-after.js';
