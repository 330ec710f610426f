import type { SqlEngine } from '../db/index.ts';

/** One after-event waiting for (or past) delivery to one hook. */
export interface OutboxEvent {
  id: number;
  hook: string;
  event: string;
  /** Events of one hook and key are delivered one at a time, in `ord` order (then id). */
  key: string;
  ord: number;
  payload: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAt: number;
  lastError: string | null;
  createdAt: number;
}

export interface NewOutboxEvent {
  hook: string;
  event: string;
  key: string;
  ord: number;
  payload: string;
}

interface OutboxRow {
  id: number | string;
  hook: string;
  event: string;
  ord_key: string;
  ord: number | string;
  payload: string;
  status: OutboxEvent['status'];
  attempts: number | string;
  next_at: number | string;
  last_error: string | null;
  created_at: number | string;
}

const toEvent = (r: OutboxRow): OutboxEvent => ({
  id: Number(r.id),
  hook: r.hook,
  event: r.event,
  key: r.ord_key,
  ord: Number(r.ord),
  payload: r.payload,
  status: r.status,
  attempts: Number(r.attempts),
  nextAt: Number(r.next_at),
  lastError: r.last_error,
  createdAt: Number(r.created_at),
});

/**
 * The durable outbox of webhook after-events on the server's database (one implementation,
 * SQLite and PostgreSQL). Guarantees: an event written by `enqueue` survives restarts and
 * crashes until it is delivered or set aside as failed; of one hook and key only the oldest
 * pending event is ever handed out (so delivery is in order per conversation), and a handed-out
 * event is leased to one node until the lease runs out, so several nodes never deliver it at once.
 */
export class OutboxStore {
  constructor(private readonly db: SqlEngine) {}

  async enqueue(events: readonly NewOutboxEvent[], now: number): Promise<void> {
    if (events.length === 0) return;
    await this.db.transaction(async (tx) => {
      for (const e of events) {
        await tx.run(
          `INSERT INTO webhook_outbox (hook, event, ord_key, ord, payload, status, attempts, next_at, created_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)`,
          [e.hook, e.event, e.key, e.ord, e.payload, now, now],
        );
      }
    });
  }

  /**
   * Lease up to `limit` due events, each the head (oldest pending) of its hook and key, whose
   * head is not leased by anyone; the lease lasts `leaseMs`.
   */
  async claimDue(now: number, limit: number, leaseMs: number): Promise<OutboxEvent[]> {
    return this.db.transaction(
      async (tx) => {
        const heads = await tx.all<OutboxRow>(
          `SELECT o.* FROM webhook_outbox o
           WHERE o.status = 'pending' AND o.next_at <= ? AND (o.lease_until IS NULL OR o.lease_until <= ?)
             AND NOT EXISTS (
               SELECT 1 FROM webhook_outbox p
               WHERE p.hook = o.hook AND p.ord_key = o.ord_key AND p.status = 'pending'
                 AND (p.ord < o.ord OR (p.ord = o.ord AND p.id < o.id)))
           ORDER BY o.next_at, o.id LIMIT ?`,
          [now, now, limit],
        );
        const claimed: OutboxEvent[] = [];
        for (const h of heads) {
          // Compare-and-set: another node may have leased it since the read (PostgreSQL).
          const n = await tx.run(`UPDATE webhook_outbox SET lease_until = ? WHERE id = ? AND status = 'pending' AND (lease_until IS NULL OR lease_until <= ?)`, [now + leaseMs, h.id, now]);
          if (n === 1) claimed.push(toEvent(h));
        }
        return claimed;
      },
    );
  }

  async delivered(id: number, now: number): Promise<void> {
    await this.db.run(`UPDATE webhook_outbox SET status = 'delivered', attempts = attempts + 1, lease_until = NULL, last_error = NULL, done_at = ? WHERE id = ?`, [now, id]);
  }

  /** A failed attempt: retry at `nextAt`, or set aside as failed when `giveUp`. */
  async failed(id: number, error: string, nextAt: number, giveUp: boolean, now: number): Promise<void> {
    await this.db.run(
      `UPDATE webhook_outbox SET attempts = attempts + 1, lease_until = NULL, last_error = ?, next_at = ?, status = ?, done_at = ? WHERE id = ?`,
      [error.slice(0, 500), nextAt, giveUp ? 'failed' : 'pending', giveUp ? now : null, id],
    );
  }

  /** Put a failed event back in line (it goes before later events of its key again). */
  async retry(id: number, now: number): Promise<boolean> {
    const n = await this.db.run(`UPDATE webhook_outbox SET status = 'pending', attempts = 0, next_at = ?, done_at = NULL WHERE id = ? AND status = 'failed'`, [now, id]);
    return n === 1;
  }

  async list(opts: { status?: OutboxEvent['status']; hook?: string; afterId?: number; limit: number }): Promise<OutboxEvent[]> {
    const where: string[] = ['id > ?'];
    const params: unknown[] = [opts.afterId ?? 0];
    if (opts.status) (where.push('status = ?'), params.push(opts.status));
    if (opts.hook) (where.push('hook = ?'), params.push(opts.hook));
    const rows = await this.db.all<OutboxRow>(`SELECT * FROM webhook_outbox WHERE ${where.join(' AND ')} ORDER BY id LIMIT ?`, [...params, opts.limit]);
    return rows.map(toEvent);
  }

  async counts(): Promise<Record<string, number>> {
    const rows = await this.db.all<{ status: string; n: number | string }>(`SELECT status, COUNT(*) AS n FROM webhook_outbox GROUP BY status`);
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }

  /** Delete delivered events older than `before`. */
  async prune(before: number): Promise<number> {
    return this.db.run(`DELETE FROM webhook_outbox WHERE status = 'delivered' AND done_at < ?`, [before]);
  }
}
