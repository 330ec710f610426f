import type { SqlEngine } from '../db/engine.ts';
import { instructionFromRow, targetFromRow, type InstructionAudit, type InstructionRecord, type InstructionStore } from './instruction-store.ts';

type InstructionRow = Parameters<typeof instructionFromRow>[0];
type TargetRow = Parameters<typeof targetFromRow>[0] & { instruction_id: string };

/** InstructionStore on the server's database, SQLite or PostgreSQL (db/engine.ts). Tables: migration 0001. */
export class SqlInstructionStore implements InstructionStore {
  constructor(private readonly db: SqlEngine) {}

  /** The engine belongs to whoever opened it (the server closes it last). */
  async close(): Promise<void> {}

  async create(i: InstructionRecord, deviceIds: string[]): Promise<void> {
    const devices = this.db.textList([...new Set(deviceIds)]);
    await this.db.transaction(async (tx) => {
      await tx.run('INSERT INTO instructions (id, user_id, kind, payload, created_at, issued_by) VALUES (?, ?, ?, ?, ?, ?)', [
        i.id,
        i.userId,
        i.kind,
        JSON.stringify(i.payload ?? null),
        i.createdAt,
        i.issuedBy,
      ]);
      await tx.run(`INSERT INTO instruction_targets (instruction_id, user_id, device_id, status) SELECT ?, ?, value, 'pending' FROM ${devices.sql} AS d`, [
        i.id,
        i.userId,
        devices.param,
      ]);
    });
  }

  async pendingFor(userId: string, deviceId: string): Promise<InstructionRecord[]> {
    const rows = await this.db.all<InstructionRow>(
      `SELECT i.* FROM instruction_targets t JOIN instructions i ON i.id = t.instruction_id
       WHERE t.user_id = ? AND t.device_id = ? AND t.status IN ('pending', 'delivered') ORDER BY i.created_at, i.id`,
      [userId, deviceId],
    );
    return rows.map(instructionFromRow);
  }

  async markDelivered(id: string, userId: string, deviceId: string, at: number): Promise<void> {
    await this.db.run(
      "UPDATE instruction_targets SET status = 'delivered', delivered_at = ? WHERE instruction_id = ? AND user_id = ? AND device_id = ? AND status = 'pending'",
      [at, id, userId, deviceId],
    );
  }

  async complete(id: string, userId: string, deviceId: string, ok: boolean, result: unknown, at: number): Promise<boolean> {
    const changed = await this.db.run(
      `UPDATE instruction_targets SET status = ?, completed_at = ?, result = ?, delivered_at = COALESCE(delivered_at, ?)
       WHERE instruction_id = ? AND user_id = ? AND device_id = ? AND status IN ('pending', 'delivered')`,
      [ok ? 'done' : 'failed', at, JSON.stringify(result ?? null), at, id, userId, deviceId],
    );
    return changed === 1;
  }

  async audit(userId: string | undefined, limit: number): Promise<InstructionAudit[]> {
    const rows =
      userId === undefined
        ? await this.db.all<InstructionRow>('SELECT * FROM instructions ORDER BY created_at DESC, id DESC LIMIT ?', [limit])
        : await this.db.all<InstructionRow>('SELECT * FROM instructions WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?', [userId, limit]);
    if (rows.length === 0) return [];
    const ids = this.db.textList(rows.map((r) => r.id));
    const targets = await this.db.all<TargetRow>(`SELECT * FROM instruction_targets WHERE instruction_id IN ${ids.sql} ORDER BY device_id`, [ids.param]);
    return rows.map((r) => ({ ...instructionFromRow(r), targets: targets.filter((t) => t.instruction_id === r.id).map(targetFromRow) }));
  }
}
