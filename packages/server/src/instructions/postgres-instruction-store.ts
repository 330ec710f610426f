import postgres from 'postgres';
import { INSTRUCTION_SCHEMA_SQL, instructionFromRow, targetFromRow, type InstructionAudit, type InstructionRecord, type InstructionStore } from './instruction-store.ts';

/** InstructionStore on PostgreSQL (postgres.js). */
export class PostgresInstructionStore implements InstructionStore {
  private readonly sql: postgres.Sql;

  constructor(opts: { url: string; schema?: string; max?: number; idleTimeoutS?: number }) {
    this.sql = postgres(opts.url, {
      max: opts.max ?? 4,
      // Idle connections are closed (the pool reopens on demand): a quiet node holds few.
      idle_timeout: opts.idleTimeoutS ?? 30,
      onnotice: () => {},
      ...(opts.schema ? { connection: { search_path: opts.schema } } : {}),
    });
    this.schema = opts.schema;
  }

  private readonly schema: string | undefined;

  async migrate(): Promise<void> {
    if (this.schema) await this.sql.unsafe(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
    await this.sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(4242001)`;
      await tx.unsafe(INSTRUCTION_SCHEMA_SQL);
    });
  }

  async close(): Promise<void> {
    await this.sql.end({ timeout: 5 });
  }

  async create(i: InstructionRecord, deviceIds: string[]): Promise<void> {
    const devices = [...new Set(deviceIds)];
    await this.sql.begin(async (tx) => {
      await tx`INSERT INTO instructions (id, user_id, kind, payload, created_at, issued_by)
               VALUES (${i.id}, ${i.userId}, ${i.kind}, ${JSON.stringify(i.payload ?? null)}, ${i.createdAt}, ${i.issuedBy})`;
      if (devices.length) {
        await tx`INSERT INTO instruction_targets (instruction_id, user_id, device_id, status)
                 SELECT ${i.id}, ${i.userId}, d, 'pending' FROM unnest(${devices}::text[]) AS d`;
      }
    });
  }

  async pendingFor(userId: string, deviceId: string): Promise<InstructionRecord[]> {
    const rows = await this.sql<Parameters<typeof instructionFromRow>[0][]>`
      SELECT i.* FROM instruction_targets t JOIN instructions i ON i.id = t.instruction_id
      WHERE t.user_id = ${userId} AND t.device_id = ${deviceId} AND t.status IN ('pending', 'delivered') ORDER BY i.created_at, i.id`;
    return rows.map(instructionFromRow);
  }

  async markDelivered(id: string, userId: string, deviceId: string, at: number): Promise<void> {
    await this.sql`UPDATE instruction_targets SET status = 'delivered', delivered_at = ${at}
                   WHERE instruction_id = ${id} AND user_id = ${userId} AND device_id = ${deviceId} AND status = 'pending'`;
  }

  async complete(id: string, userId: string, deviceId: string, ok: boolean, result: unknown, at: number): Promise<boolean> {
    const r = await this.sql`
      UPDATE instruction_targets SET status = ${ok ? 'done' : 'failed'}, completed_at = ${at}, result = ${JSON.stringify(result ?? null)},
        delivered_at = COALESCE(delivered_at, ${at})
      WHERE instruction_id = ${id} AND user_id = ${userId} AND device_id = ${deviceId} AND status IN ('pending', 'delivered')`;
    return r.count === 1;
  }

  async audit(userId: string, limit: number): Promise<InstructionAudit[]> {
    const rows = await this.sql<Parameters<typeof instructionFromRow>[0][]>`
      SELECT * FROM instructions WHERE user_id = ${userId} ORDER BY created_at DESC, id DESC LIMIT ${limit}`;
    const out: InstructionAudit[] = [];
    for (const r of rows) {
      const t = await this.sql<Parameters<typeof targetFromRow>[0][]>`SELECT * FROM instruction_targets WHERE instruction_id = ${r.id} ORDER BY device_id`;
      out.push({ ...instructionFromRow(r), targets: t.map(targetFromRow) });
    }
    return out;
  }
}
