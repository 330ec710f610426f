import { usernameKey } from '@magpie/protocol/core';
import type { Queryable } from '../engine.ts';
import type { Migration } from '../migrate.ts';

/**
 * The messaging core (store/sql-store.ts): accounts, sessions, devices, conversations,
 * members, messages, inbox pointers, conversation-list entries, groups, mentions, join
 * requests. Bodies are stored once in `messages`; `inbox` holds per-user pointers (write
 * diffusion of pointers), `entries` the per-user conversation-list rows. `members` keeps a row
 * per user who ever belonged to a conversation: active while `left_seq` IS NULL, otherwise the
 * last seq the former member may read. Super groups (read diffusion) write no pointers and no
 * per-member entry rows per message.
 *
 * Releases before this migration created these tables from the store itself (CREATE … IF NOT
 * EXISTS, then a list of added columns): such a database is accepted as it is — every table is
 * created only when missing, every column added after the first release is added when missing,
 * and users from before `username_key` get their key — so existing deployments upgrade in place.
 */
const TABLES = `
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
  created_at BIGINT NOT NULL,
  member_epoch BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS members (
  conv_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  joined_at BIGINT NOT NULL,
  role TEXT NOT NULL DEFAULT 'member',
  muted_until BIGINT NOT NULL DEFAULT 0,
  joined_seq BIGINT NOT NULL DEFAULT 0,
  left_seq BIGINT,
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
  mention_all SMALLINT NOT NULL DEFAULT 0,
  delivered_count BIGINT NOT NULL DEFAULT 0,
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
  mentions BIGINT NOT NULL DEFAULT 0,
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
  created_at BIGINT NOT NULL,
  history_visibility TEXT NOT NULL DEFAULT 'since_join'
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

/** Columns added after the first release (a database of an older release may lack them). */
const ADDED_COLUMNS: { table: string; column: string; ddl: string }[] = [
  { table: 'users', column: 'username_key', ddl: 'username_key TEXT' },
  { table: 'users', column: 'disabled_at', ddl: 'disabled_at BIGINT' },
  { table: 'users', column: 'deleted_at', ddl: 'deleted_at BIGINT' },
  { table: 'members', column: 'role', ddl: `role TEXT NOT NULL DEFAULT 'member'` },
  { table: 'groups', column: 'history_visibility', ddl: `history_visibility TEXT NOT NULL DEFAULT 'since_join'` },
  { table: 'conversations', column: 'member_epoch', ddl: 'member_epoch BIGINT NOT NULL DEFAULT 0' },
  { table: 'members', column: 'muted_until', ddl: 'muted_until BIGINT NOT NULL DEFAULT 0' },
  { table: 'members', column: 'joined_seq', ddl: 'joined_seq BIGINT NOT NULL DEFAULT 0' },
  { table: 'members', column: 'left_seq', ddl: 'left_seq BIGINT' },
  { table: 'messages', column: 'mention_all', ddl: 'mention_all SMALLINT NOT NULL DEFAULT 0' },
  { table: 'entries', column: 'mentions', ddl: 'mentions BIGINT NOT NULL DEFAULT 0' },
  { table: 'messages', column: 'delivered_count', ddl: 'delivered_count BIGINT NOT NULL DEFAULT 0' },
];

/**
 * Indexes over added columns. `groups_name` serves the name-prefix search: SQLite compares
 * bytewise (BINARY); on PostgreSQL text_pattern_ops does, under any collation.
 */
const INDEXES = {
  sqlite: 'CREATE INDEX IF NOT EXISTS groups_name ON groups (lower(name), conv_id);',
  postgres: 'CREATE INDEX IF NOT EXISTS groups_name ON groups (lower(name) text_pattern_ops, conv_id);',
};

async function columnsOf(db: Queryable): Promise<Set<string>> {
  if (db.dialect === 'postgres') {
    const rows = await db.all<{ t: string; c: string }>('SELECT table_name AS t, column_name AS c FROM information_schema.columns WHERE table_schema = current_schema()');
    return new Set(rows.map((r) => `${r.t}.${r.c}`));
  }
  const out = new Set<string>();
  for (const table of new Set(ADDED_COLUMNS.map((c) => c.table))) {
    for (const r of await db.all<{ name: string }>(`PRAGMA table_info(${table})`)) out.add(`${table}.${r.name}`);
  }
  return out;
}

/**
 * Keys for users created before `username_key` existed, oldest first. Two old accounts that
 * differ only in case keep working: the older gets the key, the younger `key#id` (it still
 * logs in with its exact spelling: the store matches the key or the exact name).
 */
export function usernameKeyBackfill(pending: { id: string; username: string }[], taken: Iterable<string>): { id: string; key: string }[] {
  const used = new Set(taken);
  return pending.map((u) => {
    let key = usernameKey(u.username);
    if (used.has(key)) key = `${key}#${u.id}`;
    used.add(key);
    return { id: u.id, key };
  });
}

export const m0004: Migration = {
  name: '0004-core',
  async up(db) {
    await db.exec(TABLES);
    const have = await columnsOf(db);
    for (const c of ADDED_COLUMNS) {
      if (!have.has(`${c.table}.${c.column}`)) await db.exec(`ALTER TABLE ${c.table} ADD COLUMN ${c.ddl}`);
    }
    const pending = await db.all<{ id: string; username: string }>('SELECT id, username FROM users WHERE username_key IS NULL ORDER BY created_at, id');
    if (pending.length > 0) {
      const taken = (await db.all<{ k: string }>('SELECT username_key AS k FROM users WHERE username_key IS NOT NULL')).map((r) => r.k);
      for (const u of usernameKeyBackfill(pending, taken)) await db.run('UPDATE users SET username_key = ? WHERE id = ?', [u.key, u.id]);
    }
    // Not `users_username_key`: PostgreSQL gives that name to the UNIQUE constraint on `username`.
    await db.exec('CREATE UNIQUE INDEX IF NOT EXISTS users_by_username_key ON users (username_key)');
    await db.exec('CREATE INDEX IF NOT EXISTS messages_mention_all ON messages (conv_id, seq) WHERE mention_all = 1');
    await db.exec(INDEXES[db.dialect]);
  },
};
