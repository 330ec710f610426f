import type { Migration } from '../migrate.ts';

/**
 * SQLite only (issue 23): `inbox` becomes a WITHOUT ROWID table keyed by (user_id, inbox_seq),
 * with a column `mine` (1: the pointer is to the user's own message).
 *
 * - WITHOUT ROWID: as a rowid table every pointer was two b-tree entries — the row, by rowid,
 *   and the primary key's index (user_id, inbox_seq, rowid) — so an append wrote both (500 per
 *   message of a 500-member group) and an ACK flush reading a range found each item in the
 *   index, then looked its conv_id and seq up in the row's b-tree. Keyed by the primary key, the
 *   row is the one entry.
 * - `mine`: the ACK flush (store/ack-writer.ts writeAcksSqlite) counts, per message, the
 *   acknowledged ranges that cover it without reading `messages` per pointer; a pointer to the
 *   acknowledging user's own message must count for nothing, and `mine` says so from the row
 *   itself. Written by the append (store/append-writer.ts); copied rows get it from `messages`.
 *
 * The rows are copied in key order in the migration's transaction: on a large inbox (users ×
 * ring capacity pointers) the upgrade takes a while, once. PostgreSQL keeps its table (a heap
 * with a separate primary-key index either way; its flush reads the sender with one join).
 */
export const m0024: Migration = {
  name: '0024-inbox-without-rowid',
  async up(db) {
    if (db.dialect === 'postgres') return;
    await db.exec(`
CREATE TABLE inbox_0024 (
  user_id TEXT NOT NULL,
  inbox_seq BIGINT NOT NULL,
  conv_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  mine SMALLINT NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, inbox_seq)
) WITHOUT ROWID;
INSERT INTO inbox_0024 (user_id, inbox_seq, conv_id, seq, mine)
  SELECT i.user_id, i.inbox_seq, i.conv_id, i.seq, COALESCE((SELECT m.sender_id = i.user_id FROM messages m WHERE m.conv_id = i.conv_id AND m.seq = i.seq), 0)
  FROM inbox i ORDER BY i.user_id, i.inbox_seq;
DROP TABLE inbox;
ALTER TABLE inbox_0024 RENAME TO inbox;
`);
  },
};
