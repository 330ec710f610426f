import type { Migration } from '../migrate.ts';

/**
 * SQLite: the FTS5 index of search documents (migration 0008-search) merges its segments
 * 16 at a time instead of 4 (`automerge`, stored in the index's own config table; no row of
 * any table changes). The append writes one segment per commit, so a document's trigrams are
 * rewritten once per merge level: log16 instead of log4 of the number of commits. Measured
 * (150 000 documents in commits of 96, FTS alone): 17–18 µs of CPU per document instead of
 * 22–24, through the store's group commit ~4 µs per 1:1 message less (issue 23); a query
 * then reads up to 15 segments per level instead of 3 (a rare term's first page ~1 ms instead
 * of ~0.5 at that size). PostgreSQL keeps its GIN index as it is.
 */
export const m0021: Migration = {
  name: '0021-search-automerge',
  async up(db) {
    if (db.dialect !== 'sqlite') return;
    await db.exec(`INSERT INTO search_fts (search_fts, rank) VALUES ('automerge', 16)`);
  },
};
