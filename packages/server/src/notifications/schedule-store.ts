import type { Audience } from '@magpie/protocol';
import type { Queryable, SqlEngine } from '../db/index.ts';

export interface ScheduleRequest {
  audience: Audience;
  title: string;
  body: string;
  data: Record<string, string>;
}

export interface ScheduleRecord {
  id: string;
  service: string;
  request: ScheduleRequest;
  sendAt: number;
  status: 'pending' | 'sent' | 'canceled' | 'failed';
  leaseOwner: string | null;
  attempts: number;
  broadcastId: string | null;
  lastError: string | null;
  createdAt: number;
}

type Num = number | string;
interface Row {
  id: string;
  service_id: string;
  request: string;
  send_at: Num;
  status: ScheduleRecord['status'];
  lease_owner: string | null;
  attempts: Num;
  broadcast_id: string | null;
  last_error: string | null;
  created_at: Num;
}

const toRecord = (r: Row): ScheduleRecord => ({
  id: r.id,
  service: r.service_id,
  request: JSON.parse(r.request) as ScheduleRequest,
  sendAt: Number(r.send_at),
  status: r.status,
  leaseOwner: r.lease_owner,
  attempts: Number(r.attempts),
  broadcastId: r.broadcast_id,
  lastError: r.last_error,
  createdAt: Number(r.created_at),
});

/**
 * Scheduled sends (table notif_schedules). Exactly once: a node leases a due schedule
 * (`claim`), and the broadcast's own transaction marks it sent only while that node still
 * holds the lease (`markSent`, run inside NotificationStore.broadcast); a node killed before
 * that commit leaves nothing stored, and the lease runs out for another node (or itself after
 * a restart) to send it. The broadcast's UNIQUE schedule_id backs this up.
 */
export class ScheduleStore {
  constructor(private readonly db: SqlEngine) {}

  async create(s: { id: string; service: string; request: ScheduleRequest; sendAt: number; now: number }): Promise<ScheduleRecord> {
    await this.db.run(`INSERT INTO notif_schedules (id, service_id, request, send_at, status, attempts, created_at) VALUES (?, ?, ?, ?, 'pending', 0, ?)`, [
      s.id,
      s.service,
      JSON.stringify(s.request),
      s.sendAt,
      s.now,
    ]);
    return (await this.get(s.id))!;
  }

  async get(id: string): Promise<ScheduleRecord | null> {
    const r = await this.db.get<Row>(`SELECT * FROM notif_schedules WHERE id = ?`, [id]);
    return r ? toRecord(r) : null;
  }

  async list(service: string, before: number | undefined, limit: number): Promise<ScheduleRecord[]> {
    const rows = await this.db.all<Row>(`SELECT * FROM notif_schedules WHERE service_id = ? AND created_at < ? ORDER BY created_at DESC, id DESC LIMIT ?`, [service, before ?? Number.MAX_SAFE_INTEGER, limit]);
    return rows.map(toRecord);
  }

  /** Lease up to `limit` due schedules for `owner` until now + leaseMs. */
  async claim(owner: string, now: number, leaseMs: number, limit: number): Promise<ScheduleRecord[]> {
    const due = await this.db.all<{ id: string }>(
      `SELECT id FROM notif_schedules WHERE status = 'pending' AND send_at <= ? AND (lease_until IS NULL OR lease_until <= ?) ORDER BY send_at, id LIMIT ?`,
      [now, now, limit],
    );
    const out: ScheduleRecord[] = [];
    for (const { id } of due) {
      // Compare-and-set: another node may have taken it since the read.
      const n = await this.db.run(
        `UPDATE notif_schedules SET lease_owner = ?, lease_until = ?, attempts = attempts + 1 WHERE id = ? AND status = 'pending' AND (lease_until IS NULL OR lease_until <= ?)`,
        [owner, now + leaseMs, id, now],
      );
      if (n === 1) out.push((await this.get(id))!);
    }
    return out;
  }

  /**
   * Inside the broadcast's transaction: mark the schedule sent by `owner`. False (nothing is
   * stored) when it is no longer this owner's pending schedule (canceled, or sent by a node that
   * took it over after this one's lease ran out).
   */
  async markSent(tx: Queryable, id: string, owner: string, broadcastId: string, now: number): Promise<boolean> {
    const n = await tx.run(`UPDATE notif_schedules SET status = 'sent', broadcast_id = ?, done_at = ?, lease_until = NULL, last_error = NULL WHERE id = ? AND status = 'pending' AND lease_owner = ?`, [
      broadcastId,
      now,
      id,
      owner,
    ]);
    return n === 1;
  }

  /** A failed attempt: release the lease (retry after `retryAt`), or set it aside as failed. */
  async failed(id: string, owner: string, error: string, giveUp: boolean, retryAt: number, now: number): Promise<void> {
    await this.db.run(`UPDATE notif_schedules SET lease_until = ?, last_error = ?, status = ?, done_at = ? WHERE id = ? AND status = 'pending' AND lease_owner = ?`, [
      giveUp ? null : retryAt,
      error.slice(0, 500),
      giveUp ? 'failed' : 'pending',
      giveUp ? now : null,
      id,
      owner,
    ]);
  }

  async cancel(id: string, now: number): Promise<boolean> {
    return (await this.db.run(`UPDATE notif_schedules SET status = 'canceled', done_at = ? WHERE id = ? AND status = 'pending'`, [now, id])) === 1;
  }

  /** Delete finished schedules older than `before`. */
  async sweep(before: number): Promise<number> {
    return this.db.run(`DELETE FROM notif_schedules WHERE status <> 'pending' AND done_at < ?`, [before]);
  }
}
