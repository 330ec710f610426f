/**
 * Read bitmaps: one bit per member of a snapshot, in the snapshot's order (bit i of byte
 * i >> 3, least significant first). Pure functions on Buffers; the store keeps the bytes.
 */

export function emptyBitmap(members: number): Buffer {
  return Buffer.alloc(Math.ceil(members / 8));
}

export function hasBit(bitmap: Uint8Array, i: number): boolean {
  return i >= 0 && i >> 3 < bitmap.length && (bitmap[i >> 3]! & (1 << (i & 7))) !== 0;
}

/** A copy of `bitmap` with the bits `indices` set, and how many of them were newly set. */
export function withBits(bitmap: Uint8Array, indices: Iterable<number>): { bitmap: Buffer; added: number } {
  const out = Buffer.from(bitmap);
  let added = 0;
  for (const i of indices) {
    if (i < 0 || i >> 3 >= out.length) continue;
    const mask = 1 << (i & 7);
    if ((out[i >> 3]! & mask) === 0) {
      out[i >> 3] = out[i >> 3]! | mask;
      added++;
    }
  }
  return { bitmap: out, added };
}

export function popcount(bitmap: Uint8Array): number {
  let n = 0;
  for (let b of bitmap) {
    while (b) {
      b &= b - 1;
      n++;
    }
  }
  return n;
}

/** Indices of set bits (read) and clear bits (unread) below `size`. */
export function splitBits(bitmap: Uint8Array, size: number): { set: number[]; clear: number[] } {
  const set: number[] = [];
  const clear: number[] = [];
  for (let i = 0; i < size; i++) (hasBit(bitmap, i) ? set : clear).push(i);
  return { set, clear };
}
