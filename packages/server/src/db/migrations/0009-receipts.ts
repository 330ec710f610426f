import type { Migration } from '../migrate.ts';

/**
 * Read receipts, presence and per-group notification settings (receipts/sql-receipt-store.ts).
 *
 * - receipt_snapshots: a group's member list at a member epoch, shared by every message
 *   sent until the membership changes (one row per change, not per message).
 * - receipt_messages: one row per message that needs receipts, with a bitmap in the
 *   snapshot's member order (bit i = member i has read it) and its popcount. `version` is
 *   the optimistic-concurrency counter of the lock-free batched bit setting.
 * - receipt_reads: each reader's last reported read seq per conversation (the stored report).
 * - receipt_privacy: per user, whether they send/see 1:1 read receipts and who sees their presence.
 * - receipt_group_settings: a group's receipt switch (owner/admin), absent = system default.
 * - notify_settings: per user and group, all / mentions / none, versioned per user for device sync.
 * - presence_last_seen: when a user's last connection anywhere closed.
 */
export const m0009: Migration = {
  name: '0009-receipts',
  async up(db) {
    const blob = db.dialect === 'postgres' ? 'BYTEA' : 'BLOB';
    await db.exec(`
CREATE TABLE receipt_snapshots (
  conv TEXT NOT NULL,
  epoch BIGINT NOT NULL,
  members TEXT NOT NULL,
  size INTEGER NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (conv, epoch)
);
CREATE TABLE receipt_messages (
  conv TEXT NOT NULL,
  seq BIGINT NOT NULL,
  sender TEXT NOT NULL,
  epoch BIGINT NOT NULL,
  bitmap ${blob} NOT NULL,
  read_count INTEGER NOT NULL,
  version INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (conv, seq)
);
CREATE TABLE receipt_reads (
  user_id TEXT NOT NULL,
  conv TEXT NOT NULL,
  read_seq BIGINT NOT NULL,
  PRIMARY KEY (user_id, conv)
);
CREATE TABLE receipt_privacy (
  user_id TEXT PRIMARY KEY,
  read_receipts INTEGER NOT NULL,
  presence TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE receipt_group_settings (
  conv TEXT PRIMARY KEY,
  enabled INTEGER NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE notify_settings (
  user_id TEXT NOT NULL,
  conv TEXT NOT NULL,
  level TEXT NOT NULL,
  version BIGINT NOT NULL,
  PRIMARY KEY (user_id, conv)
);
CREATE INDEX notify_settings_conv ON notify_settings (conv, level, user_id);
CREATE TABLE presence_last_seen (
  user_id TEXT PRIMARY KEY,
  last_seen BIGINT NOT NULL
);
`);
  },
};
