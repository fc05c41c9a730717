/**
 * Sticky percentage routing, bucket for bucket the same as Unleash's flexibleRollout:
 * bucket = murmur3_x86_32(`${groupId}:${key}`, seed 0) % 100 + 1, and a key reads from
 * PostgreSQL when bucket <= percent. Raising the percentage only moves keys toward
 * PostgreSQL, and the routing agrees with Unleash's own evaluation of the toggle.
 */
export function rolloutBucket(groupId: string, key: string): number {
  return (murmur3(`${groupId}:${key}`) % 100) + 1;
}

export function routesToPostgres(groupId: string, key: string, percent: number): boolean {
  return percent > 0 && (percent >= 100 || rolloutBucket(groupId, key) <= percent);
}

/**
 * MurmurHash3 x86 32-bit over the low byte of each UTF-16 unit, as the murmurhash3js
 * package that unleash-client uses reads strings; matching it keeps buckets identical.
 */
function murmur3(text: string): number {
  const length = text.length;
  const blocks = length - (length % 4);
  let h = 0;
  for (let i = 0; i < blocks; i += 4) {
    let k =
      (text.charCodeAt(i) & 0xff) |
      ((text.charCodeAt(i + 1) & 0xff) << 8) |
      ((text.charCodeAt(i + 2) & 0xff) << 16) |
      ((text.charCodeAt(i + 3) & 0xff) << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = length % 4;
  if (tail > 0) {
    let k = text.charCodeAt(blocks) & 0xff;
    if (tail > 1) k ^= (text.charCodeAt(blocks + 1) & 0xff) << 8;
    if (tail > 2) k ^= (text.charCodeAt(blocks + 2) & 0xff) << 16;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
