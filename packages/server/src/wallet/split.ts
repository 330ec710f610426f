import { randomBytes } from 'node:crypto';

/**
 * The red-packet split, computed at open time (not pre-split), as issue 5 states it:
 *
 *   1 fen is reserved for every share up front. An open of a random-split packet with
 *   `remainingAmount` A fen over `remainingCount` P shares gets its reserved 1 fen plus
 *   floor(U × 2 × R / P) fen, where R = A − P is the unreserved remainder and U is uniform
 *   in [0, 1) from a cryptographic source. The last share takes everything left.
 *
 * Every amount is then ≥ 1 fen and ≤ 2 × the remaining average A / P:
 *   1 + floor(U·2R/P) ≤ 1 + 2(A−P)/P = 2A/P − 1 < 2A/P, and R never goes negative because
 *   floor(U·2R/P) < 2R/P ≤ R whenever P ≥ 2, so the last share gets 1 + R ≥ 1.
 * Expected amounts are equal for every position up to flooring: each earlier open loses
 * less than 1 fen in expectation to the floor, and that money stays in the packet, so it
 * drifts toward later positions (test/redpacket-split.test.ts derives the exact bound).
 *
 * A fixed-split packet gives every share the same amount (total / count, exact).
 * Everything is integer arithmetic; U × 2R / P is evaluated exactly with BigInt.
 */

/** A source of U: a 53-bit integer k, U = k / 2^53. */
export type UniformSource = () => bigint;

const TWO_53 = 1n << 53n;

/** 53 uniform bits from the OS CSPRNG, drawn from a pooled buffer (one syscall per 512 draws). */
export function cryptoUniform(): UniformSource {
  let pool = Buffer.alloc(0);
  let pos = 0;
  return () => {
    if (pos + 8 > pool.length) {
      pool = randomBytes(8 * 512);
      pos = 0;
    }
    const v = pool.readBigUInt64LE(pos) >> 11n; // 64 − 11 = 53 bits
    pos += 8;
    return v;
  };
}

/** A deterministic U source for tests (xorshift128+, top 53 bits). Not for money. */
export function seededUniform(seed: number): UniformSource {
  const M = 0xffffffffffffffffn;
  // splitmix64 to spread the seed over both state words
  let z = BigInt(seed >>> 0);
  const mix = (): bigint => {
    z = (z + 0x9e3779b97f4a7c15n) & M;
    let x = z;
    x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & M;
    return x ^ (x >> 31n);
  };
  let a = mix();
  let b = mix();
  return () => {
    let s1 = a;
    const s0 = b;
    const result = (s0 + s1) & M;
    a = s0;
    s1 = (s1 ^ (s1 << 23n)) & M;
    b = s1 ^ s0 ^ (s1 >> 18n) ^ (s0 >> 5n);
    return result >> 11n;
  };
}

/** floor(U × 2 × R / P) with U = k / 2^53, exactly. */
export function randomPart(k: bigint, unreserved: number, remainingCount: number): number {
  if (unreserved <= 0) return 0;
  return Number((k * 2n * BigInt(unreserved)) / (TWO_53 * BigInt(remainingCount)));
}

/**
 * Amount of the next open. `remainingAmount` and `remainingCount` are the packet's state
 * before this open (count ≥ 1, amount ≥ count).
 */
export function nextShare(split: 'random' | 'fixed', remainingAmount: number, remainingCount: number, draw: UniformSource): number {
  if (!Number.isSafeInteger(remainingAmount) || !Number.isSafeInteger(remainingCount) || remainingCount < 1 || remainingAmount < remainingCount) {
    throw new Error(`bad packet state: ${remainingAmount} fen over ${remainingCount} shares`);
  }
  if (remainingCount === 1) return remainingAmount;
  if (split === 'fixed') {
    // Fixed packets are created with total = count × amount, so this division is exact.
    return remainingAmount / remainingCount;
  }
  return 1 + randomPart(draw(), remainingAmount - remainingCount, remainingCount);
}

/** Split a whole packet at once (tests and the bench use this; the server splits at open time). */
export function simulateSplit(total: number, count: number, draw: UniformSource, split: 'random' | 'fixed' = 'random'): number[] {
  const out: number[] = [];
  let amount = total;
  for (let left = count; left >= 1; left--) {
    const a = nextShare(split, amount, left, draw);
    out.push(a);
    amount -= a;
  }
  return out;
}

/** "Best luck": index of the largest claim, ties to the earliest. -1 for none. */
export function bestLuckIndex(amounts: readonly number[]): number {
  let best = -1;
  for (let i = 0; i < amounts.length; i++) if (best < 0 || amounts[i]! > amounts[best]!) best = i;
  return best;
}
