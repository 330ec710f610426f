import type { Migration } from '../migrate.ts';

/**
 * SQLite: the search index leaves the main database for a file of its own (issue 23;
 * search/sqlite-search-db.ts: `<name>.search.db`, written by the search index thread, so its
 * FTS5 work no longer runs between the group commits of the message writer thread).
 * - The index tables of migrations 0008, 0021 and 0022 (`search_docs`, `search_fts` and its
 *   shadow tables, their triggers, `search_progress`) are dropped, not copied: the search
 *   file is derived data, and a new (missing) one is re-indexed from rowid 0 by the deferred
 *   indexer after the start (searches catch it up first, so a search right after the upgrade
 *   waits for — at most syncWaitMs of — that re-indexing; see docs/operations.md).
 * - `search_purges`: the retention purge's log for the index, written in each purge batch's
 *   own transaction (retention/retention-store.ts): the documents to drop (conversation, seq
 *   range) and `floor`, the highest `messages` rowid left after it, to which the indexer
 *   lowers its catch-up point (a new message takes MAX(rowid) + 1, which falls below the point
 *   once the newest rows are deleted). The indexer applies the rows in its own transactions;
 *   the retention job deletes those the search file says it applied.
 * `search_hidden` (delete for me) and `conv_subjects` stay: they are not derived.
 * PostgreSQL keeps its index (migration 0008) in its database, written in the message commit.
 */
export const m0025: Migration = {
  name: '0025-search-file',
  async up(db) {
    if (db.dialect !== 'sqlite') return;
    await db.exec(`
DROP TRIGGER IF EXISTS search_docs_ai;
DROP TRIGGER IF EXISTS search_docs_ad;
DROP TRIGGER IF EXISTS search_docs_au;
DROP TABLE IF EXISTS search_fts;
DROP TABLE IF EXISTS search_docs;
DROP TABLE IF EXISTS search_progress;
CREATE TABLE IF NOT EXISTS search_purges (
  id INTEGER PRIMARY KEY,
  conv_id TEXT NOT NULL,
  from_seq INTEGER NOT NULL,
  to_seq INTEGER NOT NULL,
  floor INTEGER NOT NULL
);
`);
  },
};
