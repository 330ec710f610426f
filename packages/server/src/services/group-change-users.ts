import type { SqlEngine } from '../db/engine.ts';

/**
 * Full user lists of group changes whose notice names only the first few (table
 * group_change_users, migration 0019), keyed by the notice's message id.
 */
export class GroupChangeUsers {
  constructor(private readonly db: SqlEngine) {}

  async put(conv: string, msgId: string, users: readonly string[]): Promise<void> {
    const list = this.db.textList([...new Set(users)]);
    await this.db.run(`INSERT INTO group_change_users (conv_id, msg_id, user_id) SELECT ?, ?, value FROM ${list.sql} AS u`, [conv, msgId, list.param]);
  }

  /** One page ordered by user id, after `after`. */
  async page(conv: string, msgId: string, after: string, limit: number): Promise<string[]> {
    const rows = await this.db.all<{ user_id: string }>(
      'SELECT user_id FROM group_change_users WHERE conv_id = ? AND msg_id = ? AND user_id > ? ORDER BY user_id LIMIT ?',
      [conv, msgId, after, limit],
    );
    return rows.map((r) => r.user_id);
  }

  /** The notice did not commit: its list goes too. */
  async drop(conv: string, msgId: string): Promise<void> {
    await this.db.run('DELETE FROM group_change_users WHERE conv_id = ? AND msg_id = ?', [conv, msgId]);
  }
}
