/**
 * PostgreSQL's hashtextextended(text, 0) in JavaScript: Bob Jenkins' lookup3 over the
 * text's UTF-8 bytes (hash_bytes_extended with seed 0), as two 32-bit halves. Written by
 * hand because the verifier needs a row hash both sides compute identically, and this is
 * the cheapest one PostgreSQL has built in (several times cheaper per row than md5); no npm
 * package reproduces PostgreSQL's variant bit for bit. Tested against PostgreSQL itself.
 */

let scratch = Buffer.allocUnsafe(4096);

/** hashtextextended(text, 0) as a signed 64-bit BigInt. */
export function hashTextExtended(text: string): bigint {
  // UTF-8 takes at most 3 bytes per UTF-16 code unit.
  if (text.length * 3 > scratch.length) scratch = Buffer.allocUnsafe(text.length * 3);
  const length = scratch.write(text, 0, 'utf8');
  hashBytes(scratch, length);
  return BigInt.asIntN(64, (BigInt(out.high) << 32n) | BigInt(out.low));
}

const out = { high: 0, low: 0 };

function hashBytes(k: Uint8Array, length: number): void {
  let a = (0x9e3779b9 + length + 3923095) | 0;
  let b = a;
  let c = a;
  let i = 0;
  let left = length;
  while (left >= 12) {
    a = (a + (k[i]! | (k[i + 1]! << 8) | (k[i + 2]! << 16) | (k[i + 3]! << 24))) | 0;
    b = (b + (k[i + 4]! | (k[i + 5]! << 8) | (k[i + 6]! << 16) | (k[i + 7]! << 24))) | 0;
    c = (c + (k[i + 8]! | (k[i + 9]! << 8) | (k[i + 10]! << 16) | (k[i + 11]! << 24))) | 0;
    // mix(a, b, c)
    a = (a - c) | 0;
    a ^= rot(c, 4);
    c = (c + b) | 0;
    b = (b - a) | 0;
    b ^= rot(a, 6);
    a = (a + c) | 0;
    c = (c - b) | 0;
    c ^= rot(b, 8);
    b = (b + a) | 0;
    a = (a - c) | 0;
    a ^= rot(c, 16);
    c = (c + b) | 0;
    b = (b - a) | 0;
    b ^= rot(a, 19);
    a = (a + c) | 0;
    c = (c - b) | 0;
    c ^= rot(b, 4);
    b = (b + a) | 0;
    i += 12;
    left -= 12;
  }
  // The last 0-11 bytes, little-endian; the lowest byte of c stays free (it held the length in the original design).
  if (left >= 11) c = (c + (k[i + 10]! << 24)) | 0;
  if (left >= 10) c = (c + (k[i + 9]! << 16)) | 0;
  if (left >= 9) c = (c + (k[i + 8]! << 8)) | 0;
  if (left >= 8) b = (b + (k[i + 7]! << 24)) | 0;
  if (left >= 7) b = (b + (k[i + 6]! << 16)) | 0;
  if (left >= 6) b = (b + (k[i + 5]! << 8)) | 0;
  if (left >= 5) b = (b + k[i + 4]!) | 0;
  if (left >= 4) a = (a + (k[i + 3]! << 24)) | 0;
  if (left >= 3) a = (a + (k[i + 2]! << 16)) | 0;
  if (left >= 2) a = (a + (k[i + 1]! << 8)) | 0;
  if (left >= 1) a = (a + k[i]!) | 0;
  // final(a, b, c)
  c ^= b;
  c = (c - rot(b, 14)) | 0;
  a ^= c;
  a = (a - rot(c, 11)) | 0;
  b ^= a;
  b = (b - rot(a, 25)) | 0;
  c ^= b;
  c = (c - rot(b, 16)) | 0;
  a ^= c;
  a = (a - rot(c, 4)) | 0;
  b ^= a;
  b = (b - rot(a, 14)) | 0;
  c ^= b;
  c = (c - rot(b, 24)) | 0;
  out.high = b >>> 0;
  out.low = c >>> 0;
}

function rot(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
