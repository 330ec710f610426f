/**
 * The node's budget of `send` frames being handled at once (issue 23), over all connections:
 * admitted (validated, queued for the group commit, committed, answered) and not yet finished.
 *
 * Without it the only bound is per connection (maxInflightPerConnection, then 8 for every
 * request; today sends have maxSendsInFlightPerConnection, 32): 10 000 connections that each
 * send faster than the node commits held up to 80 000 sends in memory (now 320 000), waiting for
 * the commit. They survive young-generation collections (copied, promoted, marked again),
 * so a node that falls behind spends more CPU per message the further behind it is, and does
 * not catch up. With the budget, a send beyond it waits as the per-connection limit makes it
 * wait: unstarted in its connection's backlog, the socket unread (its further frames stay in
 * TCP buffers). A budget of a few commit batches keeps the writer fed (the next batch is
 * always ready), so it costs no throughput.
 *
 * Connections that found the budget spent wait in arrival order; as sends finish, the
 * oldest are let go again once a quarter of the budget is free (one pass for many, not one
 * pause/resume of a socket per finished send).
 */
export interface BudgetWaiter {
  /** Try again to start waiting requests (the budget has room now). */
  pump(): void;
}

export class SendBudget {
  /** Sends admitted and not finished. */
  private used = 0;
  private waiting: BudgetWaiter[] = [];
  private waitingHead = 0;
  private readonly waitingSet = new Set<BudgetWaiter>();
  private wakeScheduled = false;
  /** Free slots needed before waiting connections are let go. */
  private readonly wakeAt: number;

  constructor(readonly max: number) {
    this.wakeAt = Math.max(1, Math.floor(max / 4));
  }

  /** Sends being handled now. */
  get inUse(): number {
    return this.used;
  }

  /** Connections waiting for room. */
  get waiters(): number {
    return this.waitingSet.size;
  }

  /** Take a slot, or (false) note `w` to be pumped once there is room. */
  take(w: BudgetWaiter): boolean {
    if (this.used < this.max && this.waitingSet.size === 0) {
      this.used++;
      return true;
    }
    // Others waited first: they go first (a pumped waiter is removed before it takes).
    if (this.used < this.max && this.waitingSet.size > 0 && this.pumping === w) {
      this.used++;
      return true;
    }
    if (!this.waitingSet.has(w)) {
      this.waitingSet.add(w);
      this.waiting.push(w);
    }
    this.scheduleWake();
    return false;
  }

  /** A send admitted by `take` finished. */
  give(): void {
    this.used--;
    if (this.waitingSet.size > 0) this.scheduleWake();
  }

  /** The waiter being pumped by wake (it may take slots although others still wait). */
  private pumping: BudgetWaiter | null = null;

  private scheduleWake(): void {
    if (this.wakeScheduled || this.max - this.used < this.wakeAt) return;
    this.wakeScheduled = true;
    setImmediate(() => this.wake());
  }

  /** Let waiting connections go, oldest first, while there is room. */
  private wake(): void {
    this.wakeScheduled = false;
    while (this.used < this.max && this.waitingHead < this.waiting.length) {
      const w = this.waiting[this.waitingHead]!;
      this.waiting[this.waitingHead++] = undefined as unknown as BudgetWaiter;
      this.waitingSet.delete(w);
      this.pumping = w;
      try {
        w.pump();
      } finally {
        this.pumping = null;
      }
    }
    if (this.waitingHead === this.waiting.length) {
      this.waiting = [];
      this.waitingHead = 0;
    } else if (this.waitingHead > 1024 && this.waitingHead * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.waitingHead);
      this.waitingHead = 0;
    }
  }
}
