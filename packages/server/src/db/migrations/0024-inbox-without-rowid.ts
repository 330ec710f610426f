import type { Migration } from '../migrate.ts';

/**
 * SQLite only: `inbox` becomes a WITHOUT ROWID table keyed by (user_id, inbox_seq) (issue 23).
 * As a rowid table every pointer was two b-tree entries — the row, by rowid, and the primary
 * key's index (user_id, inbox_seq, rowid) — so an append wrote both (500 per message of a
 * 500-member group) and an ACK flush reading a range found each item in the index, then looked
 * its conv_id and seq up in the row's b-tree. Keyed by the primary key, the row is the one entry:
 * in-process (tools/group-commit-cost.ts, docs/benchmarks.md) the commit and ACK flush of a
 * 500-member group took ~13–20 % less CPU per message.
 *
 * The rows are copied in key order in the migration's transaction: on a large inbox (users ×
 * ring capacity pointers) the upgrade takes a while, once. PostgreSQL's tables are heaps with
 * a separate primary-key index either way: nothing there.
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
  PRIMARY KEY (user_id, inbox_seq)
) WITHOUT ROWID;
INSERT INTO inbox_0024 (user_id, inbox_seq, conv_id, seq) SELECT user_id, inbox_seq, conv_id, seq FROM inbox ORDER BY user_id, inbox_seq;
DROP TABLE inbox;
ALTER TABLE inbox_0024 RENAME TO inbox;
`);
  },
};
