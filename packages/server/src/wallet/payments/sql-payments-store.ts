import type { PaymentKind, PaymentStatus } from '@magpie/protocol';
import type { SqlEngine } from '../../db/engine.ts';
import type { NewPaymentRequest, PaymentRecord, PaymentsStore, PinRecord } from './payments-store.ts';

interface RequestRow {
  id: string;
  user_id: string;
  client_id: string;
  kind: string;
  amount: number | string;
  provider: string;
  provider_ref: string | null;
  status: string;
  reason: string | null;
  created_at: number | string;
  updated_at: number | string;
}

const REQUEST_COLS = 'id, user_id, client_id, kind, amount, provider, provider_ref, status, reason, created_at, updated_at';

function requestFromRow(r: RequestRow): PaymentRecord {
  return {
    id: r.id,
    userId: r.user_id,
    clientId: r.client_id,
    kind: r.kind as PaymentKind,
    amount: Number(r.amount),
    provider: r.provider,
    providerRef: r.provider_ref,
    status: r.status as PaymentStatus,
    reason: r.reason,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

/** PaymentsStore on the shared engine (SQLite and PostgreSQL; tables: migration 0010-payments). */
export class SqlPaymentsStore implements PaymentsStore {
  constructor(private readonly db: SqlEngine) {}

  async getPin(userId: string): Promise<PinRecord | null> {
    const r = await this.db.get<{ hash: string; attempts: number | string; locked_until: number | string; updated_at: number | string }>(
      'SELECT hash, attempts, locked_until, updated_at FROM payment_pins WHERE user_id = ?',
      [userId],
    );
    return r ? { hash: r.hash, attempts: Number(r.attempts), lockedUntil: Number(r.locked_until), updatedAt: Number(r.updated_at) } : null;
  }

  async setPin(userId: string, hash: string, now: number, replace: boolean): Promise<boolean> {
    const sql = replace
      ? `INSERT INTO payment_pins (user_id, hash, attempts, locked_until, updated_at) VALUES (?, ?, 0, 0, ?)
         ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, attempts = 0, locked_until = 0, updated_at = excluded.updated_at`
      : `INSERT INTO payment_pins (user_id, hash, attempts, locked_until, updated_at) VALUES (?, ?, 0, 0, ?) ON CONFLICT (user_id) DO NOTHING`;
    return (await this.db.run(sql, [userId, hash, now])) > 0;
  }

  async reserveAttempt(userId: string, now: number, maxTries: number): Promise<{ result: 'reserved'; attempts: number } | { result: 'locked'; lockedUntil: number } | { result: 'none' }> {
    // One statement: a run-out lock starts a fresh count; otherwise a try is taken while fewer than maxTries are counted.
    const row = await this.db.get<{ attempts: number | string }>(
      `UPDATE payment_pins SET
         attempts = CASE WHEN locked_until > 0 THEN 1 ELSE attempts + 1 END,
         locked_until = 0
       WHERE user_id = ? AND locked_until <= ? AND (locked_until > 0 OR attempts < ?)
       RETURNING attempts`,
      [userId, now, maxTries],
    );
    if (row) return { result: 'reserved', attempts: Number(row.attempts) };
    const pin = await this.getPin(userId);
    if (!pin) return { result: 'none' };
    return { result: 'locked', lockedUntil: pin.lockedUntil };
  }

  async clearAttempts(userId: string): Promise<void> {
    await this.db.run('UPDATE payment_pins SET attempts = 0 WHERE user_id = ?', [userId]);
  }

  async lock(userId: string, until: number): Promise<void> {
    await this.db.run('UPDATE payment_pins SET locked_until = ? WHERE user_id = ? AND locked_until < ?', [until, userId, until]);
  }

  async createRequest(r: NewPaymentRequest): Promise<{ record: PaymentRecord; duplicate: boolean }> {
    const inserted = await this.db.run(
      `INSERT INTO payment_requests (id, user_id, client_id, kind, amount, provider, provider_ref, status, reason, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, NULL, 'pending', NULL, ?, ?) ON CONFLICT (user_id, client_id) DO NOTHING`,
      [r.id, r.userId, r.clientId, r.kind, r.amount, r.provider, r.createdAt, r.createdAt],
    );
    const row = await this.db.get<RequestRow>(`SELECT ${REQUEST_COLS} FROM payment_requests WHERE user_id = ? AND client_id = ?`, [r.userId, r.clientId]);
    if (!row) throw new Error('payment request vanished after insert');
    return { record: requestFromRow(row), duplicate: inserted === 0 };
  }

  async getRequest(id: string): Promise<PaymentRecord | null> {
    const row = await this.db.get<RequestRow>(`SELECT ${REQUEST_COLS} FROM payment_requests WHERE id = ?`, [id]);
    return row ? requestFromRow(row) : null;
  }

  async transition(id: string, from: readonly PaymentStatus[], to: PaymentStatus, change: { reason?: string | null; providerRef?: string | null; now: number }): Promise<PaymentRecord | null> {
    const list = this.db.textList(from);
    const row = await this.db.get<RequestRow>(
      `UPDATE payment_requests SET status = ?, reason = coalesce(?, reason), provider_ref = coalesce(?, provider_ref), updated_at = ?
       WHERE id = ? AND status IN ${list.sql} RETURNING ${REQUEST_COLS}`,
      [to, change.reason ?? null, change.providerRef ?? null, change.now, id, list.param],
    );
    return row ? requestFromRow(row) : null;
  }

  async listRequests(userId: string, q: { before?: number; limit: number }): Promise<PaymentRecord[]> {
    const rows = await this.db.all<RequestRow>(
      `SELECT ${REQUEST_COLS} FROM payment_requests WHERE user_id = ? AND created_at < ? ORDER BY created_at DESC, id DESC LIMIT ?`,
      [userId, q.before ?? Number.MAX_SAFE_INTEGER, q.limit],
    );
    return rows.map(requestFromRow);
  }

  async pendingRequests(before: number, limit: number): Promise<PaymentRecord[]> {
    const rows = await this.db.all<RequestRow>(`SELECT ${REQUEST_COLS} FROM payment_requests WHERE status = 'pending' AND updated_at < ? ORDER BY updated_at LIMIT ?`, [before, limit]);
    return rows.map(requestFromRow);
  }

  async close(): Promise<void> {}
}
