import type { Migration } from '../migrate.ts';

/**
 * The social graph (social/sql-social-store.ts). IF NOT EXISTS: databases of releases before
 * versioned migrations already have these tables, with this exact definition. Friendships
 * are stored in both directions (one row per side) so each user's list is one index range;
 * requests once, keyed by (from, to), with an index by recipient. The nickname index on
 * `users` stays with the store until the messaging store's tables move here (see there).
 */
export const m0003: Migration = {
  name: '0003-social',
  async up(db) {
    await db.exec(`
CREATE TABLE IF NOT EXISTS social_profiles (
  user_id TEXT PRIMARY KEY,
  avatar TEXT,
  extra TEXT NOT NULL DEFAULT '{}',
  updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS social_friends (
  user_id TEXT NOT NULL,
  peer_id TEXT NOT NULL,
  since BIGINT NOT NULL,
  PRIMARY KEY (user_id, peer_id)
);
CREATE TABLE IF NOT EXISTS social_requests (
  from_id TEXT NOT NULL,
  to_id TEXT NOT NULL,
  greeting TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (from_id, to_id)
);
CREATE INDEX IF NOT EXISTS social_requests_to ON social_requests (to_id, from_id);
CREATE TABLE IF NOT EXISTS social_blocks (
  user_id TEXT NOT NULL,
  peer_id TEXT NOT NULL,
  since BIGINT NOT NULL,
  PRIMARY KEY (user_id, peer_id)
);
CREATE TABLE IF NOT EXISTS social_versions (
  user_id TEXT PRIMARY KEY,
  version BIGINT NOT NULL DEFAULT 0,
  floor BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS social_changes (
  user_id TEXT NOT NULL,
  version BIGINT NOT NULL,
  peer_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  state TEXT NOT NULL,
  greeting TEXT,
  at BIGINT NOT NULL,
  PRIMARY KEY (user_id, version)
);
`);
  },
};
