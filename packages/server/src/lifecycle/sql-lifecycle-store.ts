import type { ReactionSummary, HiddenChange } from '@magpie/protocol';
import type { SqlEngine } from '../db/index.ts';

/** Users listed per (message, emoji) in reaction summaries. */
const SUMMARY_USERS = 20;

/**
 * The lifecycle's tables (migration 0007) on the shared engine: one implementation for
 * SQLite and PostgreSQL.
 *
 * It also rewrites rows of the messaging store's `messages` table (same database): a recall
 * replaces kind and body, an edit replaces the body. These are single-row UPDATEs keyed by
 * (conv_id, seq) guarded by the expected current kind, so a double recall or an edit racing a
 * recall changes nothing.
 */
export class SqlLifecycleStore {
  constructor(private readonly db: SqlEngine) {}

  /** The stored message's kind, body and id (null when absent). */
  async message(conv: string, seq: number): Promise<{ id: string; kind: string; body: unknown; sender: string; time: number } | null> {
    const r = await this.db.get<{ id: string; kind: string; body: string; sender_id: string; time: number | string }>(
      'SELECT id, kind, body, sender_id, time FROM messages WHERE conv_id = ? AND seq = ?',
      [conv, seq],
    );
    return r ? { id: r.id, kind: r.kind, body: JSON.parse(r.body) as unknown, sender: r.sender_id, time: Number(r.time) } : null;
  }

  /**
   * Replace a message's content with a recall tombstone, drop its edit history and strip the
   * text of the edit events that carried it. False when it was not of kind `kind` any more.
   */
  async recall(conv: string, seq: number, kind: string, tombstone: unknown, editEventSeqs: readonly number[]): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const n = await tx.run("UPDATE messages SET kind = 'recalled', body = ? WHERE conv_id = ? AND seq = ? AND kind = ?", [JSON.stringify(tombstone), conv, seq, kind]);
      if (n === 0) return false;
      await tx.run('DELETE FROM lifecycle_edits WHERE conv_id = ? AND seq = ?', [conv, seq]);
      await tx.run('DELETE FROM lifecycle_reactions WHERE conv_id = ? AND seq = ?', [conv, seq]);
      for (const s of editEventSeqs) await this.stripEditEvent(tx, conv, s);
      return true;
    });
  }

  /**
   * Store a new text (body with `edited`), keeping the previous text as a version when
   * `keep`; with `keep` off, strip the text of the earlier edit events of this message.
   * False when the message changed under us (recalled, or edited concurrently).
   */
  async edit(conv: string, seq: number, prevBodyJson: string, nextBody: unknown, prevText: string, at: number, keep: boolean, earlierEditEvents: readonly number[]): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const n = await tx.run("UPDATE messages SET body = ? WHERE conv_id = ? AND seq = ? AND kind = 'text' AND body = ?", [JSON.stringify(nextBody), conv, seq, prevBodyJson]);
      if (n === 0) return false;
      if (keep) {
        const v = await tx.get<{ v: number | string | null }>('SELECT MAX(version) AS v FROM lifecycle_edits WHERE conv_id = ? AND seq = ?', [conv, seq]);
        await tx.run('INSERT INTO lifecycle_edits (conv_id, seq, version, text, until_at) VALUES (?, ?, ?, ?, ?)', [conv, seq, Number(v?.v ?? 0) + 1, prevText, at]);
      } else {
        for (const s of earlierEditEvents) await this.stripEditEvent(tx, conv, s);
      }
      return true;
    });
  }

  private async stripEditEvent(tx: Pick<SqlEngine, 'get' | 'run'>, conv: string, eventSeq: number): Promise<void> {
    const r = await tx.get<{ body: string }>("SELECT body FROM messages WHERE conv_id = ? AND seq = ? AND kind = 'edit'", [conv, eventSeq]);
    if (!r) return;
    const { text: _dropped, ...rest } = JSON.parse(r.body) as { text?: string };
    await tx.run("UPDATE messages SET body = ? WHERE conv_id = ? AND seq = ? AND kind = 'edit'", [JSON.stringify(rest), conv, eventSeq]);
  }

  /** Seqs of the edit events of message `seq` (their bodies name it). */
  async editEvents(conv: string, seq: number, after: number): Promise<number[]> {
    const rows = await this.db.all<{ seq: number | string; body: string }>("SELECT seq, body FROM messages WHERE conv_id = ? AND seq > ? AND kind = 'edit' ORDER BY seq", [conv, after]);
    return rows.filter((r) => (JSON.parse(r.body) as { seq?: number }).seq === seq).map((r) => Number(r.seq));
  }

  async editVersions(conv: string, seq: number): Promise<{ text: string; until: number }[]> {
    const rows = await this.db.all<{ text: string; until_at: number | string }>('SELECT text, until_at FROM lifecycle_edits WHERE conv_id = ? AND seq = ? ORDER BY version', [conv, seq]);
    return rows.map((r) => ({ text: r.text, until: Number(r.until_at) }));
  }

  /** Set or clear one user's reaction; resolves with whether it changed and the count after it. */
  async react(conv: string, seq: number, emoji: string, user: string, on: boolean, at: number): Promise<{ changed: boolean; count: number }> {
    return this.db.transaction(async (tx) => {
      const changed = on
        ? await tx.run('INSERT INTO lifecycle_reactions (conv_id, seq, emoji, user_id, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING', [conv, seq, emoji, user, at])
        : await tx.run('DELETE FROM lifecycle_reactions WHERE conv_id = ? AND seq = ? AND emoji = ? AND user_id = ?', [conv, seq, emoji, user]);
      const c = await tx.get<{ n: number | string }>('SELECT COUNT(*) AS n FROM lifecycle_reactions WHERE conv_id = ? AND seq = ? AND emoji = ?', [conv, seq, emoji]);
      return { changed: changed > 0, count: Number(c?.n ?? 0) };
    });
  }

  /** Distinct emojis already on a message (to bound them). */
  async emojiCount(conv: string, seq: number): Promise<number> {
    const c = await this.db.get<{ n: number | string }>('SELECT COUNT(DISTINCT emoji) AS n FROM lifecycle_reactions WHERE conv_id = ? AND seq = ?', [conv, seq]);
    return Number(c?.n ?? 0);
  }

  async reactions(conv: string, seqs: readonly number[], viewer: string): Promise<ReactionSummary[]> {
    if (seqs.length === 0) return [];
    const list = this.db.textList(seqs.map(String));
    const rows = await this.db.all<{ seq: number | string; emoji: string; user_id: string }>(
      `SELECT seq, emoji, user_id FROM lifecycle_reactions WHERE conv_id = ? AND seq IN (SELECT CAST(value AS BIGINT) FROM ${list.sql} l) ORDER BY seq, emoji, at, user_id`,
      [conv, list.param],
    );
    const out = new Map<string, ReactionSummary>();
    for (const r of rows) {
      const key = `${r.seq}\u0000${r.emoji}`;
      let s = out.get(key);
      if (!s) out.set(key, (s = { seq: Number(r.seq), emoji: r.emoji, count: 0, users: [], mine: false }));
      s.count++;
      if (s.users.length < SUMMARY_USERS) s.users.push(r.user_id);
      if (r.user_id === viewer) s.mine = true;
    }
    return [...out.values()];
  }

  /** Hide seqs for one user: one change at the user's next version (null when all were hidden already). */
  async hide(user: string, conv: string, seqs: readonly number[], at: number): Promise<HiddenChange | null> {
    return this.db.transaction(async (tx) => {
      const fresh: number[] = [];
      for (const s of [...new Set(seqs)].sort((a, b) => a - b)) {
        if ((await tx.run('INSERT INTO lifecycle_hidden_seqs (user_id, conv_id, seq) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', [user, conv, s])) > 0) fresh.push(s);
      }
      if (fresh.length === 0) return null;
      await tx.run('INSERT INTO lifecycle_versions (user_id, version) VALUES (?, 1) ON CONFLICT (user_id) DO UPDATE SET version = lifecycle_versions.version + 1', [user]);
      const v = Number((await tx.get<{ version: number | string }>('SELECT version FROM lifecycle_versions WHERE user_id = ?', [user]))!.version);
      await tx.run('INSERT INTO lifecycle_hidden (user_id, version, conv_id, seqs, at) VALUES (?, ?, ?, ?, ?)', [user, v, conv, JSON.stringify(fresh), at]);
      return { version: v, conv, seqs: fresh };
    });
  }

  async hiddenChanges(user: string, since: number, limit: number): Promise<{ version: number; changes: HiddenChange[]; more: boolean }> {
    const v = await this.db.get<{ version: number | string }>('SELECT version FROM lifecycle_versions WHERE user_id = ?', [user]);
    const version = Number(v?.version ?? 0);
    const rows = await this.db.all<{ version: number | string; conv_id: string; seqs: string }>(
      'SELECT version, conv_id, seqs FROM lifecycle_hidden WHERE user_id = ? AND version > ? ORDER BY version LIMIT ?',
      [user, since, limit],
    );
    const changes = rows.map((r) => ({ version: Number(r.version), conv: r.conv_id, seqs: JSON.parse(r.seqs) as number[] }));
    return { version, changes, more: (changes.at(-1)?.version ?? version) < version };
  }

  /** Of `seqs`, those the user hid in `conv`. */
  async hiddenAmong(user: string, conv: string, seqs: readonly number[]): Promise<Set<number>> {
    if (seqs.length === 0) return new Set();
    const lo = Math.min(...seqs);
    const hi = Math.max(...seqs);
    const rows = await this.db.all<{ seq: number | string }>('SELECT seq FROM lifecycle_hidden_seqs WHERE user_id = ? AND conv_id = ? AND seq >= ? AND seq <= ?', [user, conv, lo, hi]);
    return new Set(rows.map((r) => Number(r.seq)));
  }
}
