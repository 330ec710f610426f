import type { Migration } from '../migrate.ts';

/**
 * Message retention (src/retention/):
 * - conv_retention: the operator's per-conversation override of its kind's retention (days, 0 = forever).
 * - conv_purge: how far each conversation was purged: every message with seq ≤ purged_seq is
 *   gone (history answers carry it as `purgedSeq`), with the running count and the last time.
 * - inbox_purge: per user, the highest inboxSeq whose pointer a purge removed; a device that
 *   syncs from below it is told to full-sync (its inbox is no longer gap-free from there).
 * - retention_lease: the purge job's lease (one node purges at a time, on either engine).
 * - retention_runs: a record of each purge run, for the console and the admin API.
 */
export const m0015: Migration = {
  name: '0015-retention',
  async up(db) {
    const id = db.dialect === 'postgres' ? 'BIGSERIAL PRIMARY KEY' : 'INTEGER PRIMARY KEY AUTOINCREMENT';
    await db.exec(`
CREATE TABLE conv_retention (
  conv_id TEXT PRIMARY KEY,
  days INTEGER NOT NULL,
  set_by TEXT NOT NULL,
  reason TEXT NOT NULL,
  set_at BIGINT NOT NULL
);
CREATE TABLE conv_purge (
  conv_id TEXT PRIMARY KEY,
  purged_seq BIGINT NOT NULL,
  purged_count BIGINT NOT NULL,
  purged_at BIGINT NOT NULL
);
CREATE TABLE inbox_purge (
  user_id TEXT PRIMARY KEY,
  purged_inbox_seq BIGINT NOT NULL
);
CREATE TABLE retention_lease (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  until_at BIGINT NOT NULL
);
CREATE TABLE retention_runs (
  id ${id},
  node TEXT NOT NULL,
  started_at BIGINT NOT NULL,
  finished_at BIGINT NOT NULL,
  conversations BIGINT NOT NULL,
  messages BIGINT NOT NULL,
  outcome TEXT NOT NULL
);
`);
  },
};
