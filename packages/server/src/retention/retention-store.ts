import type { Queryable, SqlEngine } from '../db/index.ts';

/** The operator's retention for one conversation (wins over its kind's setting). */
export interface RetentionOverride {
  conv: string;
  days: number;
  setBy: string;
  reason: string;
  setAt: number;
}

/** How far a conversation was purged. */
export interface PurgeState {
  conv: string;
  purgedSeq: number;
  purgedCount: number;
  purgedAt: number;
}

/** A conversation the purge job looks at: its kind, override (if any) and purge position. */
export interface PurgeCandidate {
  conv: string;
  kind: string;
  overrideDays: number | null;
  purgedSeq: number;
}

export interface PurgeRun {
  id: number;
  node: string;
  startedAt: number;
  finishedAt: number;
  conversations: number;
  messages: number;
  outcome: string;
}

/** The result of one purge batch. `lost`: the lease was no longer ours, nothing was deleted. */
export type BatchResult = { lost: true } | { lost: false; purged: number; purgedSeq: number; done: boolean };

const LEASE = 'purge';
const num = (v: unknown): number => Number(v ?? 0);

/**
 * Retention state and the purge's deletions (tables of migration 0015), on SQLite and
 * PostgreSQL alike. A batch is one transaction that renews the lease first: a node that lost
 * the lease deletes nothing, and two nodes never purge at once.
 */
export class RetentionStore {
  constructor(private readonly db: SqlEngine) {}

  // --- overrides ---

  async setOverride(o: RetentionOverride): Promise<void> {
    await this.db.run(
      `INSERT INTO conv_retention (conv_id, days, set_by, reason, set_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (conv_id) DO UPDATE SET days = excluded.days, set_by = excluded.set_by, reason = excluded.reason, set_at = excluded.set_at`,
      [o.conv, o.days, o.setBy, o.reason, o.setAt],
    );
  }

  /** True when there was an override. */
  async clearOverride(conv: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM conv_retention WHERE conv_id = ?', [conv])) > 0;
  }

  async override(conv: string): Promise<RetentionOverride | null> {
    const r = await this.db.get<{ conv_id: string; days: number | string; set_by: string; reason: string; set_at: number | string }>('SELECT * FROM conv_retention WHERE conv_id = ?', [conv]);
    return r ? { conv: r.conv_id, days: num(r.days), setBy: r.set_by, reason: r.reason, setAt: num(r.set_at) } : null;
  }

  async overrides(after: string, limit: number): Promise<RetentionOverride[]> {
    const rows = await this.db.all<{ conv_id: string; days: number | string; set_by: string; reason: string; set_at: number | string }>(
      'SELECT * FROM conv_retention WHERE conv_id > ? ORDER BY conv_id LIMIT ?',
      [after, limit],
    );
    return rows.map((r) => ({ conv: r.conv_id, days: num(r.days), setBy: r.set_by, reason: r.reason, setAt: num(r.set_at) }));
  }

  // --- purge positions ---

  async purgeState(conv: string): Promise<PurgeState | null> {
    const r = await this.db.get<{ purged_seq: number | string; purged_count: number | string; purged_at: number | string }>('SELECT * FROM conv_purge WHERE conv_id = ?', [conv]);
    return r ? { conv, purgedSeq: num(r.purged_seq), purgedCount: num(r.purged_count), purgedAt: num(r.purged_at) } : null;
  }

  /**
   * Conversations after `after` (by id) that may hold messages to purge: all of them when
   * `allKinds`, else only those with a positive override.
   */
  async candidates(after: string, limit: number, allKinds: boolean): Promise<PurgeCandidate[]> {
    const sql = allKinds
      ? `SELECT c.id AS conv, c.kind AS kind, r.days AS days, p.purged_seq AS purged_seq FROM conversations c
           LEFT JOIN conv_retention r ON r.conv_id = c.id LEFT JOIN conv_purge p ON p.conv_id = c.id
         WHERE c.id > ? ORDER BY c.id LIMIT ?`
      : `SELECT c.id AS conv, c.kind AS kind, r.days AS days, p.purged_seq AS purged_seq FROM conv_retention r
           JOIN conversations c ON c.id = r.conv_id LEFT JOIN conv_purge p ON p.conv_id = c.id
         WHERE r.conv_id > ? AND r.days > 0 ORDER BY r.conv_id LIMIT ?`;
    const rows = await this.db.all<{ conv: string; kind: string; days: number | string | null; purged_seq: number | string | null }>(sql, [after, limit]);
    return rows.map((r) => ({ conv: r.conv, kind: r.kind, overrideDays: r.days === null ? null : num(r.days), purgedSeq: num(r.purged_seq) }));
  }

  /** Time of the oldest message after `seq` in `conv`, or null when there is none. */
  async oldestAfter(conv: string, seq: number): Promise<number | null> {
    const r = await this.db.get<{ time: number | string }>('SELECT time FROM messages WHERE conv_id = ? AND seq > ? ORDER BY seq LIMIT 1', [conv, seq]);
    return r ? num(r.time) : null;
  }

  // --- the lease ---

  /** Take or renew the purge lease for `holder` until `now + ttl`; false when another holder's lease is live. */
  acquire(holder: string, now: number, ttlMs: number, q: Queryable = this.db): Promise<boolean> {
    return q
      .get<{ holder: string }>(
        `INSERT INTO retention_lease (name, holder, until_at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_at = excluded.until_at
         WHERE retention_lease.until_at <= ? OR retention_lease.holder = excluded.holder
         RETURNING holder`,
        [LEASE, holder, now + ttlMs, now],
      )
      .then((r) => r?.holder === holder);
  }

  async release(holder: string): Promise<void> {
    await this.db.run('UPDATE retention_lease SET until_at = 0 WHERE name = ? AND holder = ?', [LEASE, holder]);
  }

  async leaseHolder(now: number): Promise<{ holder: string; until: number } | null> {
    const r = await this.db.get<{ holder: string; until_at: number | string }>('SELECT holder, until_at FROM retention_lease WHERE name = ?', [LEASE]);
    return r && num(r.until_at) > now ? { holder: r.holder, until: num(r.until_at) } : null;
  }

  // --- purging ---

  /**
   * One batch: renew the lease, then delete the oldest messages of `conv` after its purged seq,
   * at most `limit`, stopping at the first one sent at or after `cutoff` (the purge removes a
   * prefix of the conversation, so `purgedSeq` stays exact). Side rows go in the same
   * transaction: reactions, edit history, read receipts, the search index and media references
   * (an upload no message references any more is left to media GC). Never past `maxSeq`
   * (the prefix end whose inbox pointers `purgeInbox` already removed).
   */
  purgeBatch(conv: string, maxSeq: number, cutoff: number, limit: number, lease: { holder: string; now: number; ttlMs: number }): Promise<BatchResult> {
    return this.db.transaction(async (tx): Promise<BatchResult> => {
      if (!(await this.acquire(lease.holder, lease.now, lease.ttlMs, tx))) return { lost: true };
      const state = await tx.get<{ purged_seq: number | string; purged_count: number | string }>('SELECT purged_seq, purged_count FROM conv_purge WHERE conv_id = ?', [conv]);
      const from = num(state?.purged_seq);
      const rows = await tx.all<{ seq: number | string; id: string; time: number | string }>('SELECT seq, id, time FROM messages WHERE conv_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?', [conv, from, maxSeq, limit]);
      const due: { seq: number; id: string }[] = [];
      for (const r of rows) {
        if (num(r.time) >= cutoff) break;
        due.push({ seq: num(r.seq), id: r.id });
      }
      if (due.length === 0) return { lost: false, purged: 0, purgedSeq: from, done: true };
      const upto = due[due.length - 1]!.seq;
      const range = [conv, from, upto];
      const purged = await tx.run('DELETE FROM messages WHERE conv_id = ? AND seq > ? AND seq <= ?', range);
      await tx.run('DELETE FROM lifecycle_reactions WHERE conv_id = ? AND seq > ? AND seq <= ?', range);
      await tx.run('DELETE FROM lifecycle_edits WHERE conv_id = ? AND seq > ? AND seq <= ?', range);
      await tx.run('DELETE FROM receipt_messages WHERE conv = ? AND seq > ? AND seq <= ?', range);
      // SQLite: the search documents live in the search file (search/sqlite-search-db.ts),
      // written by the deferred indexer alone: the purge is logged for it here, with the
      // highest rowid left (a new message takes MAX(rowid) + 1: if the newest rows just went,
      // the indexer's catch-up point must come down to it; migration 0025). Searches hide the
      // purged range at once (conv_purge); the indexer drops its documents in its next batch.
      if (tx.dialect === 'sqlite') await tx.run('INSERT INTO search_purges (conv_id, from_seq, to_seq, floor) VALUES (?, ?, ?, (SELECT COALESCE(MAX(rowid), 0) FROM messages))', range);
      else await tx.run('DELETE FROM search_docs WHERE conv_id = ? AND seq > ? AND seq <= ?', range);
      const ids = tx.textList(due.map((d) => d.id));
      const uploads = await tx.all<{ upload_id: string }>(`DELETE FROM media_refs WHERE message_id IN ${ids.sql} RETURNING upload_id`, [ids.param]);
      // The full user lists of big group-change notices (migration 0019), keyed by message id.
      await tx.run(`DELETE FROM group_change_users WHERE conv_id = ? AND msg_id IN ${ids.sql}`, [conv, ids.param]);
      for (const u of new Set(uploads.map((x) => x.upload_id))) {
        await tx.run('UPDATE media_uploads SET referenced_at = NULL WHERE id = ? AND NOT EXISTS (SELECT 1 FROM media_refs WHERE upload_id = ?)', [u, u]);
      }
      await tx.run(
        `INSERT INTO conv_purge (conv_id, purged_seq, purged_count, purged_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (conv_id) DO UPDATE SET purged_seq = excluded.purged_seq, purged_count = excluded.purged_count, purged_at = excluded.purged_at`,
        [conv, upto, num(state?.purged_count) + purged, lease.now],
      );
      return { lost: false, purged, purgedSeq: upto, done: due.length < rows.length || rows.length < limit };
    });
  }

  /**
   * The end of the prefix of `conv` after `from` sent before `cutoff`: the seq before the
   * first message at or after it (or the last message when all are older); `from` when none is due.
   */
  async prefixEnd(conv: string, from: number, cutoff: number): Promise<number> {
    const first = await this.db.get<{ s: number | string | null }>('SELECT MIN(seq) AS s FROM messages WHERE conv_id = ? AND seq > ? AND time >= ?', [conv, from, cutoff]);
    if (first?.s != null) return Math.max(from, num(first.s) - 1);
    const last = await this.db.get<{ s: number | string | null }>('SELECT MAX(seq) AS s FROM messages WHERE conv_id = ?', [conv]);
    return Math.max(from, num(last?.s));
  }

  /**
   * Remove the members' inbox pointers to seqs ≤ `upto` of `conv` (former members' too),
   * `limit` members per transaction, and raise each user's inbox_purge mark to the highest
   * inboxSeq removed. Runs before the messages go, so a device syncing meanwhile is told to
   * full-sync rather than finding pointers to missing messages.
   */
  async purgeInbox(conv: string, upto: number, limit: number, pause: () => Promise<void>): Promise<void> {
    for (let after = ''; ; ) {
      const users = (await this.db.all<{ user_id: string }>('SELECT user_id FROM members WHERE conv_id = ? AND user_id > ? ORDER BY user_id LIMIT ?', [conv, after, limit])).map((r) => r.user_id);
      if (users.length === 0) return;
      await this.db.transaction(async (tx) => {
        const list = tx.textList(users);
        const gone = await tx.all<{ user_id: string; inbox_seq: number | string }>(`DELETE FROM inbox WHERE user_id IN ${list.sql} AND conv_id = ? AND seq <= ? RETURNING user_id, inbox_seq`, [list.param, conv, upto]);
        const top = new Map<string, number>();
        for (const g of gone) top.set(g.user_id, Math.max(top.get(g.user_id) ?? 0, num(g.inbox_seq)));
        for (const [user, seq] of top) {
          await tx.run(
            `INSERT INTO inbox_purge (user_id, purged_inbox_seq) VALUES (?, ?)
             ON CONFLICT (user_id) DO UPDATE SET purged_inbox_seq = CASE WHEN excluded.purged_inbox_seq > inbox_purge.purged_inbox_seq THEN excluded.purged_inbox_seq ELSE inbox_purge.purged_inbox_seq END`,
            [user, seq],
          );
        }
      });
      after = users[users.length - 1]!;
      if (users.length < limit) return;
      await pause();
    }
  }

  /**
   * Per-user rows of purged messages, keyed by user (mentions, delete-for-me, hidden search
   * results): removed once per conversation after its batches, `limit` members per transaction.
   */
  async purgeMemberRows(conv: string, upto: number, limit: number, pause: () => Promise<void>): Promise<void> {
    for (let after = ''; ; ) {
      const users = (await this.db.all<{ user_id: string }>('SELECT user_id FROM members WHERE conv_id = ? AND user_id > ? ORDER BY user_id LIMIT ?', [conv, after, limit])).map((r) => r.user_id);
      if (users.length === 0) return;
      await this.db.transaction(async (tx) => {
        const list = tx.textList(users);
        for (const table of ['message_mentions', 'search_hidden', 'lifecycle_hidden_seqs']) {
          await tx.run(`DELETE FROM ${table} WHERE user_id IN ${list.sql} AND conv_id = ? AND seq <= ?`, [list.param, conv, upto]);
        }
      });
      after = users[users.length - 1]!;
      if (users.length < limit) return;
      await pause();
    }
  }

  /**
   * SQLite: delete the purge log rows (migration 0025) up to `applied`, the last one the
   * search file's indexer applied (SearchIndex.appliedPurges: committed with an fsync).
   */
  async pruneSearchPurges(applied: number): Promise<number> {
    if (this.db.dialect !== 'sqlite') return 0;
    return this.db.run('DELETE FROM search_purges WHERE id <= ?', [applied]);
  }

  // --- runs ---

  async recordRun(run: Omit<PurgeRun, 'id'>): Promise<void> {
    await this.db.run('INSERT INTO retention_runs (node, started_at, finished_at, conversations, messages, outcome) VALUES (?, ?, ?, ?, ?, ?)', [
      run.node,
      run.startedAt,
      run.finishedAt,
      run.conversations,
      run.messages,
      run.outcome,
    ]);
  }

  async runs(limit: number): Promise<PurgeRun[]> {
    const rows = await this.db.all<{ id: number | string; node: string; started_at: number | string; finished_at: number | string; conversations: number | string; messages: number | string; outcome: string }>(
      'SELECT * FROM retention_runs ORDER BY id DESC LIMIT ?',
      [limit],
    );
    return rows.map((r) => ({ id: num(r.id), node: r.node, startedAt: num(r.started_at), finishedAt: num(r.finished_at), conversations: num(r.conversations), messages: num(r.messages), outcome: r.outcome }));
  }
}
