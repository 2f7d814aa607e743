import { breakerKeys, DEFAULT_PREFIX } from '../../src/stores/redis/keys.js';
import { keySlot } from '../../src/stores/redis/slots.js';

// CLUSTER KEYSLOT needs a cluster-enabled server, so tests compute slots with the store's own
// function (test/cluster-idle.test.ts checks it against CLUSTER KEYSLOT).

export { hashTag, keySlot } from '../../src/stores/redis/slots.js';

/** The slot of every key of breaker `name` (and of its sharded change channel). */
export function breakerSlot(name: string, prefix = DEFAULT_PREFIX): number {
  return keySlot(breakerKeys(prefix, name).version);
}
