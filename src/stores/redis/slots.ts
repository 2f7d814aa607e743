// Redis Cluster hash slots, as the cluster specification defines them: CRC16/XMODEM of the hash
// tag (the text between the first `{` and the next `}`, when not empty) modulo 16384. The store
// groups a Cluster's breakers by the master of their slot, so that one script per master
// checks them (see node-stamps.ts).

/** The number of hash slots of a Redis Cluster. */
export const SLOTS = 16_384;

const TABLE = Array.from({ length: 256 }, (_, byte) => {
  let crc = byte << 8;
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : crc << 1;
  return crc & 0xffff;
});

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes)
    crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ byte) & 0xff] as number);
  return crc;
}

/** The part of `key` Redis Cluster hashes. */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

/** The Redis Cluster slot of `key`. */
export function keySlot(key: string): number {
  return crc16(Buffer.from(hashTag(key), 'utf8')) % SLOTS;
}
