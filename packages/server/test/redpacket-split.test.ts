/**
 * The red-packet split (src/wallet/split.ts): property tests over many random (total, count)
 * pairs, and the statistical claims of issue 5 with tolerances derived below.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bestLuckIndex, cryptoUniform, nextShare, randomPart, seededUniform, simulateSplit, type UniformSource } from '../src/wallet/split.ts';

const MAX_K = (1n << 53n) - 1n;
const zeros: UniformSource = () => 0n;
const maxes: UniformSource = () => MAX_K;

/** Check one split against the rules; returns the amounts. */
function checkSplit(total: number, count: number, draw: UniformSource): number[] {
  const amounts: number[] = [];
  let left = total;
  for (let p = count; p >= 1; p--) {
    const a = nextShare('random', left, p, draw);
    assert.ok(Number.isSafeInteger(a), `integer amount, got ${a}`);
    assert.ok(a >= 1, `≥ 1 fen: ${a} (total ${total}, count ${count}, left ${left}/${p})`);
    // a ≤ 2 × (left / p), in integers: a·p ≤ 2·left; strictly below for every share but the last.
    assert.ok(a * p <= 2 * left, `≤ 2 × remaining average: ${a} with ${left} fen over ${p}`);
    if (p > 1) assert.ok(a * p < 2 * left, `strictly below 2 × remaining average before the last: ${a} with ${left}/${p}`);
    amounts.push(a);
    left -= a;
  }
  assert.equal(left, 0, 'nothing left over');
  assert.equal(
    amounts.reduce((s, x) => s + x, 0),
    total,
    'amounts sum to the total exactly',
  );
  return amounts;
}

describe('split: properties over random (total, count) pairs', () => {
  it('10 000 random pairs with the crypto source: exact sum, each ≥ 1 fen and ≤ 2 × the remaining average', () => {
    const pick = seededUniform(20240601);
    const rnd = (n: number): number => Number(pick() % BigInt(n));
    const draw = cryptoUniform();
    let shares = 0;
    for (let i = 0; i < 10_000; i++) {
      const count = 1 + rnd(i % 10 === 0 ? 1000 : 200);
      // Totals from the tightest (count fen) up to 20 000 yuan, skewed toward small ones.
      const span = [count, count * 3, count * 100, 2_000_000][rnd(4)]!;
      const total = count + rnd(Math.max(1, span - count + 1));
      shares += checkSplit(total, count, draw).length;
    }
    assert.ok(shares > 500_000, `covered many shares (${shares})`);
  });

  it('extreme U (always 0, always just below 1) keeps every rule', () => {
    const pick = seededUniform(7);
    for (let i = 0; i < 2000; i++) {
      const count = 1 + Number(pick() % 300n);
      const total = count + Number(pick() % BigInt(count * 50));
      const low = checkSplit(total, count, zeros);
      const high = checkSplit(total, count, maxes);
      // U = 0: every early share is the reserved fen, the last takes the rest.
      assert.ok(low.slice(0, -1).every((a) => a === 1));
      assert.equal(low.at(-1), total - (count - 1));
      assert.equal(high.length, count);
    }
  });

  it('randomPart is exact integer arithmetic where floats would round', () => {
    // 2R/P with R = 2^52: a float product U × 2R / P would lose the low bits.
    const R = 2 ** 52;
    assert.equal(randomPart(MAX_K, R, 2), R - 1);
    assert.equal(randomPart(1n << 52n, R, 2), R / 2);
    assert.equal(randomPart(0n, R, 2), 0);
    assert.equal(randomPart(MAX_K, 0, 5), 0);
  });

  it('fixed split: all shares equal', () => {
    const pick = seededUniform(3);
    for (let i = 0; i < 1000; i++) {
      const count = 1 + Number(pick() % 500n);
      const amount = 1 + Number(pick() % 20_000n);
      const out = simulateSplit(amount * count, count, cryptoUniform(), 'fixed');
      assert.equal(out.length, count);
      assert.ok(out.every((a) => a === amount));
    }
  });

  it('refuses impossible states (amount below count, no shares)', () => {
    assert.throws(() => nextShare('random', 4, 5, zeros));
    assert.throws(() => nextShare('random', 5, 0, zeros));
    assert.throws(() => nextShare('random', 1.5, 1, zeros));
  });

  it('best luck: the largest, ties to the earliest', () => {
    assert.equal(bestLuckIndex([3, 7, 7, 1]), 1);
    assert.equal(bestLuckIndex([9, 2, 9]), 0);
    assert.equal(bestLuckIndex([1, 1, 2]), 2);
    assert.equal(bestLuckIndex([]), -1);
  });
});

/**
 * Exact distribution of the last share, by dynamic programming over the unreserved
 * remainder R with a continuous U: floor(U·x), x = 2R/P, takes the value j with probability
 * (min(j + 1, x) − j) / x. (The real U is k / 2^53; the difference is below 2^−50.)
 */
function lastShareDistribution(total: number, count: number): Map<number, number> {
  let states = new Map<number, number>([[total - count, 1]]);
  for (let p = count; p >= 2; p--) {
    const next = new Map<number, number>();
    for (const [r, pr] of states) {
      const x = (2 * r) / p;
      if (x === 0) {
        next.set(r, (next.get(r) ?? 0) + pr);
        continue;
      }
      for (let j = 0; j < x; j++) {
        const q = (Math.min(j + 1, x) - j) / x;
        next.set(r - j, (next.get(r - j) ?? 0) + pr * q);
      }
    }
    states = next;
  }
  return new Map([...states].map(([r, pr]) => [1 + r, pr]));
}

const harmonic = (n: number): number => {
  let h = 0;
  for (let i = 1; i <= n; i++) h += 1 / i;
  return h;
};

describe('split: statistics', () => {
  /**
   * Expected amount per position. Let A be the total, n the count, and at the k-th open
   * P_k = n − k + 1 shares and R_k unreserved fen left. Without flooring, R_k / P_k is a
   * martingale, so every position expects exactly A / n. Flooring takes
   * e_k = R_k/P_k − E[floor(U·2R_k/P_k)] ∈ [0, 1) fen from the k-th open and leaves it in
   * the packet, which raises the per-share average of the P_k − 1 later shares by
   * e_k / (P_k − 1). Hence, for position k < n:
   *     A/n − 1 < E[a_k] < A/n + Σ_{j<k} 1/(n − j) = A/n + H(n−1) − H(n−k),
   * and for the last, A/n ≤ E[a_n] < A/n + H(n−1). The test allows that bias interval plus
   * 5 standard errors of the sample mean (a false failure has probability < 1e−6 per check).
   */
  type Share = (left: number, p: number, draw: UniformSource) => number;
  const real: Share = (left, p, draw) => nextShare('random', left, p, draw);

  /** Positions whose sample mean falls outside the derived band (empty = pass). */
  function expectationViolations(total: number, count: number, trials: number, share: Share = real): string[] {
    const draw = cryptoUniform();
    const sum = new Float64Array(count);
    const sq = new Float64Array(count);
    for (let t = 0; t < trials; t++) {
      let left = total;
      for (let p = count, k = 0; p >= 1; p--, k++) {
        const a = share(left, p, draw);
        sum[k]! += a;
        sq[k]! += a * a;
        left -= a;
      }
    }
    const avg = total / count;
    const sds: number[] = [];
    const bad: string[] = [];
    for (let k = 0; k < count; k++) {
      const mean = sum[k]! / trials;
      const sd = Math.sqrt(Math.max(0, sq[k]! / trials - mean * mean));
      sds.push(sd);
      const se = sd / Math.sqrt(trials);
      const pos = k + 1;
      const lowBias = pos < count ? -1 : 0;
      const highBias = pos < count ? harmonic(count - 1) - harmonic(count - pos) : harmonic(count - 1);
      const lo = avg + lowBias - 5 * se;
      const hi = avg + highBias + 5 * se;
      if (!(mean >= lo && mean <= hi)) bad.push(`position ${pos}: mean ${mean.toFixed(3)} outside [${lo.toFixed(3)}, ${hi.toFixed(3)}] (average ${avg})`);
    }
    // Later grabbers have the larger spread (WeChat notes): the last varies more than the first.
    if (share === real) assert.ok(sds.at(-1)! > sds[0]!, `variance grows with position: first sd ${sds[0]!.toFixed(2)}, last ${sds.at(-1)!.toFixed(2)}`);
    return bad;
  }

  it('every position expects the same amount: 10 shares of 1 000 fen total (100 000 packets)', () => {
    assert.deepEqual(expectationViolations(1000, 10, 100_000), []);
  });

  it('every position expects the same amount where flooring matters: 5 shares of 30 fen (200 000 packets)', () => {
    assert.deepEqual(expectationViolations(30, 5, 200_000), []);
  });

  it('the tolerance is tight enough to catch a 5 % bias toward the first grabber', () => {
    // Same algorithm, but the first open's random part is scaled by 1.05 (≈ +4.5 fen on a
    // 100 fen average): the derived band must reject it.
    const biased: Share = (left, p, draw) => {
      if (p < 10) return real(left, p, draw);
      const r = left - p;
      return 1 + Math.min(Math.floor(randomPart(draw(), r, p) * 1.05), Math.floor((2 * r) / p));
    };
    const bad = expectationViolations(1000, 10, 100_000, biased);
    assert.ok(bad.some((b) => b.startsWith('position 1:')), `a 5 % bias is detected: ${JSON.stringify(bad)}`);
  });

  it('6 shares of 9 fen: the last gets 3 fen or more in about half the cases', () => {
    const exact = lastShareDistribution(9, 6);
    const p = [...exact].filter(([a]) => a >= 3).reduce((s, [, pr]) => s + pr, 0);
    // Exactly 53/108 ≈ 0.491: "about half".
    assert.ok(Math.abs(p - 53 / 108) < 1e-12, `exact probability ${p}`);
    assert.ok(p > 0.4 && p < 0.6);
    const trials = 200_000;
    const draw = cryptoUniform();
    let hits = 0;
    for (let t = 0; t < trials; t++) if (simulateSplit(9, 6, draw).at(-1)! >= 3) hits++;
    const observed = hits / trials;
    const tol = 5 * Math.sqrt((p * (1 - p)) / trials);
    assert.ok(Math.abs(observed - p) <= tol, `observed ${observed} vs exact ${p.toFixed(4)} ± ${tol.toFixed(4)}`);
  });

  it('n shares of (n + 1) fen: the last is always the single best', () => {
    // With R = 1 unreserved fen and P ≥ 2 shares, U·2R/P < 1, so every open but the last
    // gets exactly 1 fen and the last gets 2 — whatever U is. Checked for n = 2 … 300 with
    // the crypto source and with the extreme U just below 1.
    const draw = cryptoUniform();
    for (let n = 2; n <= 300; n++) {
      for (const source of [draw, maxes, zeros]) {
        for (let t = 0; t < (source === draw ? 50 : 1); t++) {
          const out = simulateSplit(n + 1, n, source);
          const best = bestLuckIndex(out);
          assert.equal(best, n - 1, `n = ${n}: best is the last (${JSON.stringify(out)})`);
          assert.ok(out.slice(0, -1).every((a) => a < out[n - 1]!), 'strictly the single best');
        }
      }
    }
  });
});
