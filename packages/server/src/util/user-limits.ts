import { MagpieError } from '@magpie/protocol';
import { RateLimiter } from './rate-limiter.ts';

/**
 * Per-user budgets, one bucket per user on this node, shared by the WebSocket gateway and the
 * REST API: a user cannot double the limit by switching transport. `ping` has a bucket of its
 * own so heartbeats never eat into the request budget, yet cannot be sent without bound.
 */
export class UserLimits {
  private readonly requests: RateLimiter;
  private readonly pings: RateLimiter;

  constructor(limits: { userRate: number; userBurst: number; pingRate: number; pingBurst: number }) {
    this.requests = new RateLimiter(limits.userRate, limits.userBurst);
    this.pings = new RateLimiter(limits.pingRate, limits.pingBurst);
  }

  /** Take one request; throws `rate_limited` with `retryAfterMs` when the budget is spent. */
  request(userId: string): void {
    const wait = this.requests.take(userId);
    if (wait > 0) throw new MagpieError('rate_limited', 'too many requests', { retryAfterMs: wait });
  }

  /** Take one ping; throws `rate_limited` when the user pings faster than `pingRate`. */
  ping(userId: string): void {
    const wait = this.pings.take(userId);
    if (wait > 0) throw new MagpieError('rate_limited', 'too many pings', { retryAfterMs: wait });
  }

  /** Drop idle buckets. */
  sweep(): void {
    this.requests.sweep();
    this.pings.sweep();
  }
}
