import { RateLimiter } from '../util/rate-limiter.ts';

export interface LoginThrottleLimits {
  /** Failed attempts per account (and device) without delay. */
  freeFailures: number;
  /** Delay after the first counted failure; doubles with each further one. */
  backoffBaseMs: number;
  /** The delay never grows beyond this: an attacker cannot lock the owner out for longer. */
  backoffMaxMs: number;
  /** Failures are forgotten after this long without one. */
  forgetAfterMs: number;
  /** Per IP: failed logins per minute (sustained) and burst; beyond it, every login from the IP waits. */
  ipFailuresPerMinute: number;
  ipFailureBurst: number;
}

interface Failures {
  count: number;
  last: number;
  /** No attempt is checked before this time. */
  until: number;
}

/** Most failure records kept; beyond it the oldest go first (memory stays bounded under a spray of usernames). */
const MAX_TRACKED = 100_000;

/**
 * Backoff for failed password checks (login, password change, account deletion), in memory
 * per node. Keys are chosen by the caller: the normalized username, plus the device id when
 * the device has logged in to that account before, so failures from an attacker's unknown
 * devices do not delay the owner's known device. A delay only refuses attempts until it
 * ends (answered `rate_limited` with retryAfterMs, before any scrypt work); the right
 * password after it logs in and clears the record. A per-IP budget of failures stops one
 * address from spraying many accounts.
 */
export class LoginThrottle {
  private readonly accounts = new Map<string, Failures>();
  private readonly ipFailures: RateLimiter;
  private readonly ipBlocked = new Map<string, number>();

  constructor(
    private readonly limits: LoginThrottleLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.ipFailures = new RateLimiter(limits.ipFailuresPerMinute / 60, limits.ipFailureBurst, now);
  }

  /** Milliseconds until an attempt for `key` from `ip` may be checked; 0 = now. */
  wait(key: string, ip: string | undefined): number {
    const t = this.now();
    const ipUntil = ip === undefined ? 0 : (this.ipBlocked.get(ip) ?? 0);
    const f = this.accounts.get(key);
    const until = Math.max(ipUntil, f && t - f.last < this.limits.forgetAfterMs ? f.until : 0);
    return Math.max(0, until - t);
  }

  failure(key: string, ip: string | undefined): void {
    const t = this.now();
    let f = this.accounts.get(key);
    if (!f || t - f.last >= this.limits.forgetAfterMs) f = { count: 0, last: t, until: 0 };
    f.count++;
    f.last = t;
    const over = f.count - this.limits.freeFailures;
    if (over > 0) f.until = t + Math.min(this.limits.backoffMaxMs, this.limits.backoffBaseMs * 2 ** Math.min(over - 1, 30));
    this.accounts.delete(key); // re-insert: the map stays ordered by last failure
    this.accounts.set(key, f);
    if (this.accounts.size > MAX_TRACKED) this.sweep(t);
    if (ip !== undefined) {
      const w = this.ipFailures.take(ip);
      if (w > 0) this.ipBlocked.set(ip, t + w);
      if (this.ipBlocked.size > MAX_TRACKED) for (const [k, u] of this.ipBlocked) if (u <= t) this.ipBlocked.delete(k);
    }
  }

  success(key: string): void {
    this.accounts.delete(key);
  }

  private sweep(t: number): void {
    for (const [k, f] of this.accounts) {
      if (this.accounts.size <= MAX_TRACKED * 0.9 && t - f.last < this.limits.forgetAfterMs) break;
      this.accounts.delete(k);
    }
    this.ipFailures.sweep();
  }
}
