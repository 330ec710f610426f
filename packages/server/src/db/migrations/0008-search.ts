import type { Migration } from '../migrate.ts';

/**
 * Message search (search/) and subject conversations (search/subjects.ts).
 *
 * `search_docs` holds one row per searchable message (its text once, with the columns the
 * filters need); the message store's tables are not touched. Full text:
 * - SQLite: an FTS5 index with the trigram tokenizer over `search_docs.body` (external
 *   content, kept in step by triggers), so any substring of three or more characters, CJK
 *   included, is an index lookup; shorter terms fall back to LIKE.
 * - PostgreSQL: a GIN pg_trgm index on `body`, which serves `ILIKE '%term%'`.
 * `search_hidden` lists messages a user deleted for themselves (hidden from their results
 * only). `conv_subjects` carries the business subject of a 1:1 subject conversation.
 */
export const m0008: Migration = {
  name: '0008-search',
  async up(db) {
    const common = `
CREATE TABLE IF NOT EXISTS search_hidden (
  user_id TEXT NOT NULL,
  conv_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  PRIMARY KEY (user_id, conv_id, seq)
);
CREATE TABLE IF NOT EXISTS conv_subjects (
  conv_id TEXT PRIMARY KEY,
  user_a TEXT NOT NULL,
  user_b TEXT NOT NULL,
  subject_type TEXT NOT NULL,
  subject_id TEXT NOT NULL,
  title TEXT NOT NULL,
  attrs TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS conv_subjects_subject ON conv_subjects (subject_type, subject_id);
`;
    if (db.dialect === 'sqlite') {
      await db.exec(`
CREATE TABLE IF NOT EXISTS search_docs (
  rid INTEGER PRIMARY KEY,
  conv_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  sender_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  time BIGINT NOT NULL,
  body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS search_docs_msg ON search_docs (conv_id, seq);
CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(body, content='search_docs', content_rowid='rid', tokenize='trigram');
CREATE TRIGGER IF NOT EXISTS search_docs_ai AFTER INSERT ON search_docs BEGIN
  INSERT INTO search_fts (rowid, body) VALUES (new.rid, new.body);
END;
CREATE TRIGGER IF NOT EXISTS search_docs_ad AFTER DELETE ON search_docs BEGIN
  INSERT INTO search_fts (search_fts, rowid, body) VALUES ('delete', old.rid, old.body);
END;
CREATE TRIGGER IF NOT EXISTS search_docs_au AFTER UPDATE OF body ON search_docs BEGIN
  INSERT INTO search_fts (search_fts, rowid, body) VALUES ('delete', old.rid, old.body);
  INSERT INTO search_fts (rowid, body) VALUES (new.rid, new.body);
END;
${common}`);
      return;
    }
    // pg_trgm lives in public (tests and deployments may run each database in its own schema,
    // and dropping such a schema must not drop the extension); the index names its operator
    // class by the schema the extension is actually in.
    await db.exec('CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public');
    const ext = await db.get<{ nspname: string }>(`SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'`);
    const ops = `"${(ext?.nspname ?? 'public').replace(/"/g, '""')}".gin_trgm_ops`;
    await db.exec(`
CREATE TABLE IF NOT EXISTS search_docs (
  rid BIGSERIAL PRIMARY KEY,
  conv_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  sender_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  time BIGINT NOT NULL,
  body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS search_docs_msg ON search_docs (conv_id, seq);
CREATE INDEX IF NOT EXISTS search_docs_trgm ON search_docs USING gin (body ${ops});
${common}`);
  },
};
