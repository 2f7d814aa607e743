import { breakerKeys, DEFAULT_PREFIX } from '../../src/stores/redis/keys.js';

// Redis Cluster key slots, as the cluster specification defines them: CRC16/XMODEM of the
// hash tag (the text between the first `{` and the next `}`, when not empty) modulo 16384.
// CLUSTER KEYSLOT needs a cluster-enabled server, so tests compute slots here.

/** The part of `key` Redis Cluster hashes. */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

/** The Redis Cluster slot of `key`. */
export function keySlot(key: string): number {
  return crc16(Buffer.from(hashTag(key), 'utf8')) % 16384;
}

/** The slot of every key of breaker `name` (and of its sharded change channel). */
export function breakerSlot(name: string, prefix = DEFAULT_PREFIX): number {
  return keySlot(breakerKeys(prefix, name).version);
}
