/**
 * The grab step: a cheap in-memory check-and-decrement per packet that turns most
 * latecomers away before they reach the database. It is a filter, never the authority —
 * the open transaction is (its compare-and-set decides who gets a share) — and it must
 * never strand a share. Both mechanisms of issue 9 are used:
 *
 * - Holds expire. An admitted grab holds a place for `holdMs`; a place not turned into an
 *   open by then is given to the next grabber. A share can therefore be blocked by a
 *   grabber who never opens for at most `holdMs`, never until expiry.
 * - Admission is slightly above the shares left: at most `remaining + slack` live holds,
 *   slack = max(overAdmitMin, ceil(remaining × overAdmitRatio)). A few of the admitted find
 *   every share claimed when they open ("grabbed, then all claimed at open", answered as
 *   `all_claimed`), and a grabber who gives up early costs nobody a share.
 *
 * - Those told `busy` come first. A grabber told `busy` is remembered as waiting until its
 *   `retryAfterMs` has passed plus a grace (`waitGraceMs`); while anyone waits, a place that
 *   frees up goes to a waiter before a grabber who was not turned away — so holders who
 *   never open and grab again the moment their holds lapse cannot keep a waiting member
 *   off: a waiter is admitted at its retry, at most one hold period after it was turned away.
 *
 * `remaining` only moves down, and only on what the database reported (a committed claim,
 * the packet's row when it was loaded), so the filter can never believe a packet is empty
 * while the database still has shares. In a cluster each node filters on its own; the
 * total admitted is at most nodes × (remaining + slack) and the database still decides.
 * State lost in a restart or an eviction is rebuilt from the packet row.
 */

export interface GrabFilterOptions {
  holdMs: number;
  overAdmitRatio: number;
  overAdmitMin: number;
  /** Packets kept in memory; the least recently loaded are evicted beyond this. */
  maxPackets: number;
  /** A grabber told `busy` keeps its priority this long after its `retryAfterMs` (default min(holdMs, 2 s)). */
  waitGraceMs?: number;
}

export interface GateState {
  remaining: number;
  expiresAt: number;
  ended: 'finished' | 'expired' | null;
}

interface Gate extends GateState {
  /** user → hold expiry, in grant order (so expiry order, holdMs being constant). */
  holds: Map<string, number>;
  /** Claims this node has seen: user → amount. */
  claimed: Map<string, number>;
  /** Grabbers told `busy`: user → end of their priority. */
  waiting: Map<string, number>;
  /** Woken when a place may have freed up or the packet ended. */
  listeners: Set<() => void>;
}

export type FilterAnswer =
  | { result: 'admitted'; holdUntil: number }
  | { result: 'busy'; retryAfterMs: number }
  | { result: 'all_claimed' }
  | { result: 'expired' }
  | { result: 'opened'; amount: number };

export class GrabFilter {
  private readonly gates = new Map<string, Gate>();

  constructor(private readonly opts: GrabFilterOptions) {}

  has(packetId: string): boolean {
    return this.gates.has(packetId);
  }

  /** Install a packet's state read from the database (no-op when present). */
  load(packetId: string, state: GateState, claims: Iterable<[string, number]> = []): void {
    if (this.gates.has(packetId)) return;
    if (this.gates.size >= this.opts.maxPackets) {
      const oldest = this.gates.keys().next().value;
      if (oldest !== undefined) {
        const evicted = this.gates.get(oldest)!;
        this.gates.delete(oldest);
        this.wake(evicted); // its waiters grab again (the service reloads it)
      }
    }
    this.gates.set(packetId, { ...state, holds: new Map(), claimed: new Map(claims), waiting: new Map(), listeners: new Set() });
  }

  slack(remaining: number): number {
    return Math.max(this.opts.overAdmitMin, Math.ceil(remaining * this.opts.overAdmitRatio));
  }

  /** Check-and-decrement. The caller has checked membership and exclusivity. */
  grab(packetId: string, userId: string, now: number): FilterAnswer {
    const g = this.gates.get(packetId);
    if (!g) throw new Error(`packet ${packetId} not loaded`);
    const amount = g.claimed.get(userId);
    if (amount !== undefined) return { result: 'opened', amount };
    if (g.ended === 'finished') return { result: 'all_claimed' };
    if (g.ended === 'expired' || now >= g.expiresAt) return { result: 'expired' };
    if (g.remaining <= 0) return { result: 'all_claimed' };
    const held = g.holds.get(userId);
    if (held !== undefined && held > now) return { result: 'admitted', holdUntil: held };
    if (held !== undefined) g.holds.delete(userId);
    this.purge(g, now);
    const free = g.remaining + this.slack(g.remaining) - g.holds.size;
    const waiter = g.waiting.has(userId);
    // Places promised to those who were turned away earlier (everyone waiting but this user).
    const reserved = g.waiting.size - (waiter ? 1 : 0);
    if (free <= 0 || (!waiter && free <= reserved)) {
      const first = g.holds.values().next().value ?? now + this.opts.holdMs;
      const retryAfterMs = Math.max(1, first - now);
      // Re-inserted at the end: `waiting` stays (nearly) in order of expiry, so purge can stop early.
      const until = Math.max(g.waiting.get(userId) ?? 0, now + retryAfterMs + this.grace());
      g.waiting.delete(userId);
      g.waiting.set(userId, until);
      return { result: 'busy', retryAfterMs };
    }
    g.waiting.delete(userId);
    const until = now + this.opts.holdMs;
    g.holds.set(userId, until);
    return { result: 'admitted', holdUntil: until };
  }

  private grace(): number {
    return this.opts.waitGraceMs ?? Math.min(this.opts.holdMs, 2000);
  }

  /** When the oldest live hold lapses (null without holds). */
  firstHoldExpiry(packetId: string, now: number): number | null {
    const g = this.gates.get(packetId);
    if (!g) return null;
    this.purge(g, now);
    return g.holds.values().next().value ?? null;
  }

  /**
   * Resolves when a place of this packet may have freed up or the packet ended (a release,
   * a claim that left places free, the end), or after `ms`. The caller grabs again.
   */
  changed(packetId: string, ms: number): Promise<void> {
    const g = this.gates.get(packetId);
    if (!g || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        g.listeners.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      g.listeners.add(done);
    });
  }

  private wake(g: Gate): void {
    if (g.listeners.size === 0) return;
    for (const l of [...g.listeners]) l();
  }

  private purge(g: Gate, now: number): void {
    for (const [user, until] of g.holds) {
      if (until > now) break;
      g.holds.delete(user);
    }
    for (const [user, until] of g.waiting) {
      if (until > now) break;
      g.waiting.delete(user);
    }
  }

  /** The database committed this user's claim; `remaining` is the count it reported after it. */
  claimed(packetId: string, userId: string, amount: number, remaining: number): void {
    const g = this.gates.get(packetId);
    if (!g) return;
    g.holds.delete(userId);
    g.claimed.set(userId, amount);
    g.remaining = Math.min(g.remaining, remaining);
    if (remaining === 0) this.end(packetId, 'finished');
    else if (g.remaining + this.slack(g.remaining) > g.holds.size) this.wake(g);
  }

  /** The open did not produce a claim for this user (already opened elsewhere, all claimed, expired): free the hold. */
  release(packetId: string, userId: string): void {
    const g = this.gates.get(packetId);
    if (g?.holds.delete(userId)) this.wake(g);
  }

  end(packetId: string, how: 'finished' | 'expired'): void {
    const g = this.gates.get(packetId);
    if (!g) return;
    g.ended = how;
    g.remaining = 0;
    g.holds.clear();
    g.waiting.clear();
    this.wake(g);
  }

  /** Live holds (tests and metrics). */
  holdsOf(packetId: string, now: number): number {
    const g = this.gates.get(packetId);
    if (!g) return 0;
    this.purge(g, now);
    return g.holds.size;
  }

  state(packetId: string): GateState | null {
    const g = this.gates.get(packetId);
    return g ? { remaining: g.remaining, expiresAt: g.expiresAt, ended: g.ended } : null;
  }
}
