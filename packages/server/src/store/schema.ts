import { usernameKey } from '@magpie/protocol';

/**
 * Tables shared by the SQLite and PostgreSQL stores (the SQL below is valid in both).
 * Bodies are stored once in `messages`; `inbox` holds per-user pointers (write diffusion
 * of pointers), `entries` the per-user conversation-list rows.
 *
 * Groups: `groups` holds one row per group conversation; `members` keeps a row per user who
 * ever belonged to a conversation: active while `left_seq` IS NULL, otherwise `left_seq` is
 * the last seq the former member may read (the notice of their removal). Super groups (read
 * diffusion) write no inbox pointers and no per-member entry rows per message: their entries'
 * lastSeq/unread/mentions are computed from `conversations.last_seq`, the `messages` range
 * above read_seq, `message_mentions` (one row per explicitly mentioned member) and the
 * partial index on `messages.mention_all`.
 *
 * Applying the schema to an existing database: run SCHEMA_SQL (CREATE … IF NOT EXISTS),
 * then add the ADDED_COLUMNS that are missing, then INDEX_SQL (indexes on added columns).
 */
export const SCHEMA_SQL = `
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

/** Columns added after the first release: added when missing (SQLite: PRAGMA table_info; PostgreSQL: ADD COLUMN IF NOT EXISTS). */
export const ADDED_COLUMNS: { table: string; column: string; ddl: string }[] = [
  /** usernameKey(username) (NFKC + case fold): unique, what login matches. Backfilled by `usernameKeyBackfill`. */
  { table: 'users', column: 'username_key', ddl: 'username_key TEXT' },
  /** Set by the operator (admin API): no login, no connection, sessions revoked. NULL: enabled. */
  { table: 'users', column: 'disabled_at', ddl: 'disabled_at BIGINT' },
  /** Account deleted by its owner: tombstone row (messages keep their sender), no login. */
  { table: 'users', column: 'deleted_at', ddl: 'deleted_at BIGINT' },
  { table: 'members', column: 'role', ddl: `role TEXT NOT NULL DEFAULT 'member'` },
  /** 'since_join' (members read from their join on) or 'all'; see HistoryVisibility in store.ts. */
  { table: 'groups', column: 'history_visibility', ddl: `history_visibility TEXT NOT NULL DEFAULT 'since_join'` },
  /** Seq of the conversation's last membership change (join, leave, removal, switch to super): the handover point of live delivery. */
  { table: 'conversations', column: 'member_epoch', ddl: 'member_epoch BIGINT NOT NULL DEFAULT 0' },
  { table: 'members', column: 'muted_until', ddl: 'muted_until BIGINT NOT NULL DEFAULT 0' },
  { table: 'members', column: 'joined_seq', ddl: 'joined_seq BIGINT NOT NULL DEFAULT 0' },
  /** NULL: active member; else the last seq the former member may read. */
  { table: 'members', column: 'left_seq', ddl: 'left_seq BIGINT' },
  { table: 'messages', column: 'mention_all', ddl: 'mention_all SMALLINT NOT NULL DEFAULT 0' },
  { table: 'entries', column: 'mentions', ddl: 'mentions BIGINT NOT NULL DEFAULT 0' },
  /**
   * Normal groups: how many recipients (other members, each counted once) have a device that
   * stored the message; raised by the ACK path (`recordAcks`) in the same transaction as the
   * recipient's delivered mark. Stays 0 for direct messages and for super-group messages
   * sent after the switch (read diffusion: nothing is acknowledged per member).
   */
  { table: 'messages', column: 'delivered_count', ddl: 'delivered_count BIGINT NOT NULL DEFAULT 0' },
];

/** Indexes over added columns (after ADDED_COLUMNS). */
export const INDEX_SQL = `
CREATE INDEX IF NOT EXISTS messages_mention_all ON messages (conv_id, seq) WHERE mention_all = 1;
`;

/** SQLite: lower() folds ASCII; comparisons are bytewise (BINARY), so a name prefix is an index range. */
export const INDEX_SQL_SQLITE = `${INDEX_SQL}
CREATE INDEX IF NOT EXISTS groups_name ON groups (lower(name), conv_id);
`;

/** PostgreSQL: text_pattern_ops compares bytewise, so the ~>=~ / ~<~ prefix range uses the index under any collation. */
export const INDEX_SQL_POSTGRES = `${INDEX_SQL}
CREATE INDEX IF NOT EXISTS groups_name ON groups (lower(name) text_pattern_ops, conv_id);
`;

/**
 * Keys for users created before `username_key` existed, oldest first. Two old accounts that
 * differ only in case keep working: the older gets the key, the younger `key#id` (it still
 * logs in with its exact spelling, see the stores' user-by-name lookup).
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

/** Not `users_username_key`: PostgreSQL gives that name to the UNIQUE constraint on `username`. */
export const USERNAME_KEY_INDEX_SQL = 'CREATE UNIQUE INDEX IF NOT EXISTS users_by_username_key ON users (username_key)';

/** The user a login name means: its normalized key, or (accounts from before the key whose key was taken) the exact spelling. */
export const USER_BY_NAME_WHERE = 'username_key = $key OR username = $raw';

export function addColumnsPostgres(columns = ADDED_COLUMNS): string {
  return columns.map((c) => `ALTER TABLE ${c.table} ADD COLUMN IF NOT EXISTS ${c.ddl};`).join('\n');
}

/**
 * The entry query shared by both stores. `where` filters `entries e` (joined with
 * `conversations c`), `tail` orders/limits the inner selection. For super groups the
 * entry's lastSeq comes from the conversation (or, for a former member, their left_seq),
 * and unread/mentions are counted above read_seq; for the others they are the stored
 * counters. A deleted super-group entry shows again once the conversation moved past the
 * cleared seq.
 */
export function entrySelect(where: string, tail = ''): string {
  return `
  SELECT x.user_id, x.conv_id, x.conv_kind, x.read_seq, x.delivered_seq, x.pinned, x.muted, x.draft, x.cleared_seq, x.version,
    x.eff_last AS last_seq,
    CASE WHEN x.conv_kind = 'super' THEN
      (SELECT COUNT(*) FROM messages u WHERE u.conv_id = x.conv_id AND u.seq > x.read_seq AND u.seq <= x.eff_last AND u.sender_id <> x.user_id)
    ELSE x.unread END AS unread,
    CASE WHEN x.conv_kind = 'super' THEN
      (SELECT COUNT(*) FROM message_mentions mm WHERE mm.user_id = x.user_id AND mm.conv_id = x.conv_id AND mm.seq > x.read_seq AND mm.seq <= x.eff_last)
      + (SELECT COUNT(*) FROM messages a WHERE a.conv_id = x.conv_id AND a.mention_all = 1 AND a.seq > x.read_seq AND a.seq <= x.eff_last AND a.sender_id <> x.user_id)
    ELSE x.mentions END AS mentions,
    CASE WHEN x.deleted = 1 AND x.eff_last <= x.cleared_seq THEN 1 ELSE 0 END AS deleted,
    m.id AS m_id, m.seq AS m_seq, m.sender_id AS m_sender_id, m.kind AS m_kind, m.body AS m_body, m.time AS m_time, m.client_msg_id AS m_client_msg_id,
    (SELECT MIN(o.seq) FROM messages o WHERE o.conv_id = x.conv_id AND o.seq > x.read_seq AND o.seq <= x.eff_last AND o.sender_id <> x.user_id) AS oldest_unread
  FROM (
    SELECT e.*, c.kind AS conv_kind,
      CASE WHEN c.kind = 'super' THEN COALESCE(mb.left_seq, c.last_seq) ELSE e.last_seq END AS eff_last
    FROM entries e
    JOIN conversations c ON c.id = e.conv_id
    LEFT JOIN members mb ON c.kind = 'super' AND mb.conv_id = e.conv_id AND mb.user_id = e.user_id
    WHERE ${where}
    ${tail}
  ) x
  LEFT JOIN messages m ON m.conv_id = x.conv_id AND m.seq = x.eff_last AND x.eff_last > x.cleared_seq
  ORDER BY x.version`;
}

/** read_seq, effective last seq and kind of one entry (for markRead / updateEntry). */
export const ENTRY_STATE_SQL = `
  SELECT e.read_seq, e.last_seq, e.unread, e.mentions, e.pinned, e.muted, e.draft, e.deleted, e.cleared_seq, c.kind AS conv_kind,
    CASE WHEN c.kind = 'super' THEN COALESCE(mb.left_seq, c.last_seq) ELSE e.last_seq END AS eff_last
  FROM entries e
  JOIN conversations c ON c.id = e.conv_id
  LEFT JOIN members mb ON c.kind = 'super' AND mb.conv_id = e.conv_id AND mb.user_id = e.user_id`;
