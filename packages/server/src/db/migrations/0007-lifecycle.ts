import type { Migration } from '../migrate.ts';

/**
 * The message lifecycle (lifecycle/sql-lifecycle-store.ts): reactions (one row per user,
 * message and emoji), previous versions of edited messages, and delete-for-me (per-user
 * hidden messages with the user's own gap-free version, `lifecycle_versions`).
 */
export const m0007: Migration = {
  name: '0007-lifecycle',
  async up(db) {
    await db.exec(`
CREATE TABLE IF NOT EXISTS lifecycle_reactions (
  conv_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  emoji TEXT NOT NULL,
  user_id TEXT NOT NULL,
  at BIGINT NOT NULL,
  PRIMARY KEY (conv_id, seq, emoji, user_id)
);
CREATE TABLE IF NOT EXISTS lifecycle_edits (
  conv_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  version BIGINT NOT NULL,
  text TEXT NOT NULL,
  until_at BIGINT NOT NULL,
  PRIMARY KEY (conv_id, seq, version)
);
CREATE TABLE IF NOT EXISTS lifecycle_versions (
  user_id TEXT PRIMARY KEY,
  version BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS lifecycle_hidden (
  user_id TEXT NOT NULL,
  version BIGINT NOT NULL,
  conv_id TEXT NOT NULL,
  seqs TEXT NOT NULL,
  at BIGINT NOT NULL,
  PRIMARY KEY (user_id, version)
);
CREATE TABLE IF NOT EXISTS lifecycle_hidden_seqs (
  user_id TEXT NOT NULL,
  conv_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  PRIMARY KEY (user_id, conv_id, seq)
);
`);
  },
};
