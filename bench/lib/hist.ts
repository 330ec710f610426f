/**
 * A small log-bucketed latency histogram (milliseconds, ~1% relative precision) that
 * merges across processes: buckets travel as sparse [index, count] pairs.
 */
const MIN_MS = 0.01;
const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = 1800; // 0.01 ms · 1.01^1800 ≈ 600 s

export interface HistSummary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export class Histogram {
  readonly counts = new Uint32Array(BUCKETS);
  count = 0;
  sum = 0;
  max = 0;

  record(ms: number): void {
    if (!(ms >= 0)) ms = 0;
    let i = ms <= MIN_MS ? 0 : Math.ceil(Math.log(ms / MIN_MS) / LOG_GROWTH);
    if (i >= BUCKETS) i = BUCKETS - 1;
    this.counts[i]!++;
    this.count++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  /** Upper bound of the bucket holding the q-quantile (q in 0..1). */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(MIN_MS * GROWTH ** i, this.max);
    }
    return this.max;
  }

  summary(): HistSummary {
    return {
      count: this.count,
      mean: this.count ? this.sum / this.count : 0,
      p50: this.quantile(0.5),
      p90: this.quantile(0.9),
      p99: this.quantile(0.99),
      p999: this.quantile(0.999),
      max: this.max,
    };
  }

  toJSON(): { buckets: number[]; count: number; sum: number; max: number } {
    const buckets: number[] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i]) buckets.push(i, this.counts[i]!);
    return { buckets, count: this.count, sum: this.sum, max: this.max };
  }

  merge(h: { buckets: number[]; count: number; sum: number; max: number }): void {
    for (let k = 0; k + 1 < h.buckets.length; k += 2) this.counts[h.buckets[k]!]! += h.buckets[k + 1]!;
    this.count += h.count;
    this.sum += h.sum;
    if (h.max > this.max) this.max = h.max;
  }
}
