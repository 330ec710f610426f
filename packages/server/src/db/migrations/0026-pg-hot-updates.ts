import type { Migration } from '../migrate.ts';

/**
 * PostgreSQL only (issue 15): let the per-message updates be HOT (heap-only tuple) updates.
 *
 * A group message updates one `entries` row per member (unread, mentions, last_seq, version)
 * and one `users` row per member (inbox_seq, conv_version); each ACK flush updates `devices`
 * and `delivery_marks` rows, the append the `conversations` row. PostgreSQL can write such an
 * update as a HOT update — the new row version on the same heap page, no index entry, the old
 * version pruned by the next access to the page, no VACUUM needed — only when no indexed
 * column changes and the page has room.
 *
 * - `entries_version` (entries (user_id, version), migration 0004) indexed `version`, which
 *   every message raises on every member's entry: none of those updates was HOT (bench
 *   cluster.ts, 90-member group: 54 419 entry updates in 30 s, 0 HOT), so each wrote a new
 *   entry in both of the table's indexes and left a dead row and two dead index entries for
 *   VACUUM, and every later lookup of that (user, conversation) walked the dead entries.
 *   Dropped: the list sync (`conversationChanges`: version > since ORDER BY version) reads the
 *   user's entries by the primary key's user_id prefix and sorts them, one row per
 *   conversation the user has.
 * - fillfactor 80 on the tables updated per message: inserts leave a fifth of each new page
 *   free, so an update finds room on its own page (existing pages keep their layout until a
 *   rewrite, e.g. VACUUM FULL; see docs/operations.md).
 *
 * SQLite has no HOT updates (an update rewrites the row in its b-tree in place): no change.
 */
export const HOT_TABLES = ['entries', 'users', 'devices', 'delivery_marks', 'conversations'] as const;
export const HOT_FILLFACTOR = 80;

export const m0026: Migration = {
  name: '0026-pg-hot-updates',
  async up(db) {
    if (db.dialect !== 'postgres') return;
    await db.exec('DROP INDEX IF EXISTS entries_version');
    for (const t of HOT_TABLES) await db.exec(`ALTER TABLE ${t} SET (fillfactor = ${HOT_FILLFACTOR})`);
  },
};
