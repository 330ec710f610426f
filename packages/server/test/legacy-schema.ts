/**
 * The messaging tables exactly as releases before migration 0004-core created them (the
 * store's own CREATE … IF NOT EXISTS, before its column additions ran). Frozen here: the
 * upgrade tests build an old database from it and check that 0004 accepts it.
 */
export const LEGACY_SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  nickname TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  inbox_seq BIGINT NOT NULL DEFAULT 0,
  conv_version BIGINT NOT NULL DEFAULT 0,
  delivered_inbox_seq BIGINT NOT NULL DEFAULT 0,
  username_key TEXT,
  disabled_at BIGINT,
  deleted_at BIGINT
);
CREATE TABLE IF NOT EXISTS sessions (
  token_hash TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  platform TEXT NOT NULL,
  app_version TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  revoked_at BIGINT
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);
CREATE TABLE IF NOT EXISTS devices (
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  acked_inbox_seq BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, device_id)
);
CREATE TABLE IF NOT EXISTS conversations (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  last_seq BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
  conv_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  joined_at BIGINT NOT NULL,
  PRIMARY KEY (conv_id, user_id)
);
CREATE INDEX IF NOT EXISTS members_user ON members (user_id);
CREATE TABLE IF NOT EXISTS messages (
  conv_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  id TEXT NOT NULL UNIQUE,
  sender_id TEXT NOT NULL,
  client_msg_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  body TEXT NOT NULL,
  time BIGINT NOT NULL,
  sender_inbox_seq BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (conv_id, seq)
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_idem ON messages (sender_id, client_msg_id);
CREATE TABLE IF NOT EXISTS inbox (
  user_id TEXT NOT NULL,
  inbox_seq BIGINT NOT NULL,
  conv_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  PRIMARY KEY (user_id, inbox_seq)
);
CREATE TABLE IF NOT EXISTS entries (
  user_id TEXT NOT NULL,
  conv_id TEXT NOT NULL,
  read_seq BIGINT NOT NULL DEFAULT 0,
  unread BIGINT NOT NULL DEFAULT 0,
  last_seq BIGINT NOT NULL DEFAULT 0,
  delivered_seq BIGINT NOT NULL DEFAULT 0,
  pinned SMALLINT NOT NULL DEFAULT 0,
  muted SMALLINT NOT NULL DEFAULT 0,
  draft TEXT NOT NULL DEFAULT '',
  deleted SMALLINT NOT NULL DEFAULT 0,
  cleared_seq BIGINT NOT NULL DEFAULT 0,
  version BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, conv_id)
);
CREATE INDEX IF NOT EXISTS entries_version ON entries (user_id, version);
CREATE TABLE IF NOT EXISTS groups (
  conv_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  avatar TEXT NOT NULL DEFAULT '',
  announcement TEXT NOT NULL DEFAULT '',
  owner TEXT NOT NULL,
  join_policy TEXT NOT NULL,
  invite_needs_approval SMALLINT NOT NULL DEFAULT 0,
  mute_all SMALLINT NOT NULL DEFAULT 0,
  dismissed SMALLINT NOT NULL DEFAULT 0,
  member_count BIGINT NOT NULL DEFAULT 0,
  max_members BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS message_mentions (
  user_id TEXT NOT NULL,
  conv_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  PRIMARY KEY (user_id, conv_id, seq)
);
CREATE TABLE IF NOT EXISTS join_requests (
  conv_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  inviter TEXT,
  message TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (conv_id, user_id)
);
CREATE INDEX IF NOT EXISTS join_requests_time ON join_requests (conv_id, created_at);
`;
