/**
 * Token buckets keyed by a string (user id, IP). `take` answers 0 when allowed, else the
 * milliseconds until a token is available. Idle buckets are swept so memory stays bounded.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly ratePerMs: number;

  constructor(
    ratePerSecond: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.ratePerMs = ratePerSecond / 1000;
  }

  take(key: string, cost = 1): number {
    const t = this.now();
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.burst, at: t };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + (t - b.at) * this.ratePerMs);
      b.at = t;
    }
    if (b.tokens >= cost) {
      b.tokens -= cost;
      return 0;
    }
    return Math.ceil((cost - b.tokens) / this.ratePerMs);
  }

  /** Drop buckets that have refilled completely (they behave exactly like new ones). */
  sweep(): void {
    const t = this.now();
    for (const [k, b] of this.buckets) if (b.tokens + (t - b.at) * this.ratePerMs >= this.burst) this.buckets.delete(k);
  }

  get size(): number {
    return this.buckets.size;
  }
}
