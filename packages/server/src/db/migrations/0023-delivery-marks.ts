import type { Migration } from '../migrate.ts';

/**
 * PostgreSQL only: users' delivered marks in a table of their own (issue 15, store/ack-writer.ts).
 * `users.delivered_inbox_seq` shares its row with `inbox_seq` and `conv_version`, which every
 * append to the user's conversations bumps (locking the row until its COMMIT); an ACK flush that
 * moved the marks of a node's members on those rows locked them too, so on a cluster every
 * node's flush of a busy group's ACKs queued with every append to that group, on every member's
 * row. A flush now upserts `delivery_marks` (written only by ACK flushes, under the users' advisory
 * claims) and locks a `users` row only for a sender whose entries it moves.
 *
 * The mark is GREATEST(users.delivered_inbox_seq, delivery_marks.delivered_inbox_seq): the old
 * column keeps what was written before this migration (copied here too) or, during a rolling
 * upgrade, by nodes still on the old version. SQLite keeps the column (one writer: no lock to share).
 */
export const m0023: Migration = {
  name: '0023-delivery-marks',
  async up(db) {
    if (db.dialect !== 'postgres') return;
    await db.exec(`
CREATE TABLE IF NOT EXISTS delivery_marks (
  user_id TEXT PRIMARY KEY,
  delivered_inbox_seq BIGINT NOT NULL
);
INSERT INTO delivery_marks (user_id, delivered_inbox_seq) SELECT id, delivered_inbox_seq FROM users WHERE delivered_inbox_seq > 0 ON CONFLICT (user_id) DO NOTHING;
`);
  },
};
