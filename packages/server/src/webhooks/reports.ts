import { MagpieError, type Report } from '@magpie/protocol';
import type { SqlEngine } from '../db/index.ts';
import type { Store } from '../store/store.ts';
import { timeId } from '../util/ids.ts';

interface ReportRow {
  id: string;
  reporter: string;
  target_user: string | null;
  conv: string | null;
  seq: number | string | null;
  message_id: string | null;
  excerpt: string | null;
  reason: Report['reason'];
  note: string;
  status: Report['status'];
  resolution: string | null;
  created_at: number | string;
  resolved_at: number | string | null;
}

const toReport = (r: ReportRow): Report => ({
  id: r.id,
  reporter: r.reporter,
  targetUser: r.target_user,
  conv: r.conv,
  seq: r.seq === null ? null : Number(r.seq),
  messageId: r.message_id,
  excerpt: r.excerpt,
  reason: r.reason,
  note: r.note,
  status: r.status,
  resolution: r.resolution,
  createdAt: Number(r.created_at),
  resolvedAt: r.resolved_at === null ? null : Number(r.resolved_at),
});

function excerptOf(kind: string, body: unknown): string {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const text = typeof b.text === 'string' ? b.text : typeof b.fallback === 'string' ? b.fallback : `[${kind}]`;
  return text.slice(0, 2000);
}

/**
 * Moderation reports: a user reports a message they can read, or a user; the report keeps
 * an excerpt of the message as it was, and lands in the operator's queue.
 */
export class ReportService {
  constructor(
    private readonly db: SqlEngine,
    private readonly store: Store,
    private readonly now: () => number = Date.now,
  ) {}

  async create(reporter: string, input: { userId?: string; conv?: string; seq?: number; reason: Report['reason']; note: string }): Promise<Report> {
    let targetUser = input.userId ?? null;
    let messageId: string | null = null;
    let excerpt: string | null = null;
    if (input.conv !== undefined && input.seq !== undefined) {
      // Only what the reporter can read may be reported (same rule as history: membership and join time).
      const [m] = (await this.store.isMember(input.conv, reporter)) ? await this.store.readHistory(input.conv, { after: input.seq - 1, limit: 1, viewer: reporter }) : [];
      if (!m || m.seq !== input.seq) throw new MagpieError('not_found', 'no such message in a conversation you can read');
      if (targetUser !== null && targetUser !== m.sender) throw new MagpieError('invalid', 'userId must be the sender of the reported message (or be left out)');
      targetUser = m.sender;
      messageId = m.id;
      excerpt = excerptOf(m.kind, m.body);
    } else if (targetUser !== null) {
      const u = await this.store.getUser(targetUser);
      if (!u) throw new MagpieError('not_found', `no such user: ${targetUser}`);
    }
    if (targetUser === reporter) throw new MagpieError('invalid', 'you cannot report yourself');
    const row: ReportRow = {
      id: timeId('r'),
      reporter,
      target_user: targetUser,
      conv: input.conv ?? null,
      seq: input.seq ?? null,
      message_id: messageId,
      excerpt,
      reason: input.reason,
      note: input.note,
      status: 'open',
      resolution: null,
      created_at: this.now(),
      resolved_at: null,
    };
    await this.db.run(
      `INSERT INTO moderation_reports (id, reporter, target_user, conv, seq, message_id, excerpt, reason, note, status, resolution, created_at, resolved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [row.id, row.reporter, row.target_user, row.conv, row.seq, row.message_id, row.excerpt, row.reason, row.note, row.status, row.resolution, row.created_at, row.resolved_at],
    );
    return toReport(row);
  }

  async list(status: Report['status'], after: string | undefined, limit: number): Promise<Report[]> {
    const rows = await this.db.all<ReportRow>(`SELECT * FROM moderation_reports WHERE status = ? AND id > ? ORDER BY id LIMIT ?`, [status, after ?? '', limit]);
    return rows.map(toReport);
  }

  async resolve(id: string, status: 'resolved' | 'dismissed', resolution: string): Promise<Report> {
    const n = await this.db.run(`UPDATE moderation_reports SET status = ?, resolution = ?, resolved_at = ? WHERE id = ? AND status = 'open'`, [status, resolution, this.now(), id]);
    const row = await this.db.get<ReportRow>(`SELECT * FROM moderation_reports WHERE id = ?`, [id]);
    if (!row) throw new MagpieError('not_found', `no such report: ${id}`);
    if (n === 0) throw new MagpieError('conflict', `the report is already ${row.status}`);
    return toReport(row);
  }
}
