import Database from 'better-sqlite3';
import { openSqlite, type SqliteHandle } from '../store/sqlite-connection.ts';
import { INSTRUCTION_SCHEMA_SQL, instructionFromRow, targetFromRow, type InstructionAudit, type InstructionRecord, type InstructionStore } from './instruction-store.ts';

/** InstructionStore on SQLite: the process's shared connection to the server's database file (store/sqlite-connection.ts). */
export class SqliteInstructionStore implements InstructionStore {
  private readonly handle: SqliteHandle;
  private readonly db: Database.Database;

  /** `synchronous` must be the server's setting: the connection is shared, and the stronger level of its holders wins. */
  constructor(path: string, opts: { synchronous?: 'full' | 'normal' } = {}) {
    this.handle = openSqlite(path, { synchronous: opts.synchronous ?? 'full' });
    this.db = this.handle.db;
    this.db.exec(INSTRUCTION_SCHEMA_SQL);
  }

  async migrate(): Promise<void> {
    this.db.exec(INSTRUCTION_SCHEMA_SQL);
  }

  async close(): Promise<void> {
    await this.handle.release();
  }

  async create(i: InstructionRecord, deviceIds: string[]): Promise<void> {
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO instructions (id, user_id, kind, payload, created_at, issued_by) VALUES (?, ?, ?, ?, ?, ?)')
        .run(i.id, i.userId, i.kind, JSON.stringify(i.payload ?? null), i.createdAt, i.issuedBy);
      const t = this.db.prepare("INSERT INTO instruction_targets (instruction_id, user_id, device_id, status) VALUES (?, ?, ?, 'pending')");
      for (const d of new Set(deviceIds)) t.run(i.id, i.userId, d);
    })();
  }

  async pendingFor(userId: string, deviceId: string): Promise<InstructionRecord[]> {
    const rows = this.db
      .prepare(
        `SELECT i.* FROM instruction_targets t JOIN instructions i ON i.id = t.instruction_id
         WHERE t.user_id = ? AND t.device_id = ? AND t.status IN ('pending', 'delivered') ORDER BY i.created_at, i.id`,
      )
      .all(userId, deviceId) as Parameters<typeof instructionFromRow>[0][];
    return rows.map(instructionFromRow);
  }

  async markDelivered(id: string, userId: string, deviceId: string, at: number): Promise<void> {
    this.db
      .prepare("UPDATE instruction_targets SET status = 'delivered', delivered_at = ? WHERE instruction_id = ? AND user_id = ? AND device_id = ? AND status = 'pending'")
      .run(at, id, userId, deviceId);
  }

  async complete(id: string, userId: string, deviceId: string, ok: boolean, result: unknown, at: number): Promise<boolean> {
    const r = this.db
      .prepare(
        `UPDATE instruction_targets SET status = ?, completed_at = ?, result = ?, delivered_at = COALESCE(delivered_at, ?)
         WHERE instruction_id = ? AND user_id = ? AND device_id = ? AND status IN ('pending', 'delivered')`,
      )
      .run(ok ? 'done' : 'failed', at, JSON.stringify(result ?? null), at, id, userId, deviceId);
    return r.changes === 1;
  }

  async audit(userId: string, limit: number): Promise<InstructionAudit[]> {
    const rows = this.db.prepare('SELECT * FROM instructions WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?').all(userId, limit) as Parameters<
      typeof instructionFromRow
    >[0][];
    const targets = this.db.prepare('SELECT * FROM instruction_targets WHERE instruction_id = ? ORDER BY device_id');
    return rows.map((r) => ({ ...instructionFromRow(r), targets: (targets.all(r.id) as Parameters<typeof targetFromRow>[0][]).map(targetFromRow) }));
  }
}
