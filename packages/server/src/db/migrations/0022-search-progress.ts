import type { Migration } from '../migrate.ts';

/**
 * SQLite: search documents are no longer written in the message's own group commit but by a
 * deferred indexer (search/search-indexer.ts) in batches of their own. `search_progress` is
 * its catch-up point: the highest `messages` rowid whose document has been written (0 or more
 * rows; written in the indexing transaction itself, so the documents and the point commit or
 * roll back together). Every message of a database migrated before this one was indexed in
 * its own commit: the point starts at the highest rowid. PostgreSQL still writes documents
 * in the message commit and has no such table.
 */
export const m0022: Migration = {
  name: '0022-search-progress',
  async up(db) {
    if (db.dialect !== 'sqlite') return;
    await db.exec(`
CREATE TABLE IF NOT EXISTS search_progress (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  msg_rowid INTEGER NOT NULL
);
INSERT OR IGNORE INTO search_progress (id, msg_rowid) SELECT 1, COALESCE(MAX(rowid), 0) FROM messages;
`);
  },
};
