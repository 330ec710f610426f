/**
 * Tables of the social graph (valid in SQLite and PostgreSQL). Only the SocialStore touches
 * them. Friendships are stored in both directions (one row per side) so each user's list is
 * one index range; requests once, keyed by (from, to), with an index by recipient.
 */
const TABLES = `
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
`;

/** SQLite: lower() folds ASCII letters; comparisons are bytewise (BINARY), so a prefix is an index range. */
export const SOCIAL_SCHEMA_SQLITE = `${TABLES}
CREATE INDEX IF NOT EXISTS social_users_nick ON users (lower(nickname), id);
`;

/** PostgreSQL: text_pattern_ops compares bytewise, so the ~>=~ / ~<~ prefix range uses the index under any collation. */
export const SOCIAL_SCHEMA_POSTGRES = `${TABLES}
CREATE INDEX IF NOT EXISTS social_users_nick ON users (lower(nickname) text_pattern_ops, id);
`;
