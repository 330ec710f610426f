import type { Migration } from '../migrate.ts';

/**
 * Service accounts and notification conversations (src/notifications/): kept apart from chat
 * (no row here is in `inbox`), so a flood of broadcasts can never push chat out of a user's ring.
 *
 * - notif_services: the operator's service accounts; `last_seq` numbers each service's broadcasts,
 *   `last_feed` its audience-all ones (the feed users pull, contiguous).
 * - notif_broadcasts: every broadcast once (audience all: read diffusion, users pull by seq).
 * - notif_rings / notif_slots: list and segment audiences materialized into a per-user ring of
 *   `services.capacity` slots (its own head, separate from the chat inbox).
 * - notif_prefs: per user and service: muted, unsubscribed (with the hidden range of all-audience
 *   seqs), read position.
 * - user_attributes: operator-set key/value attributes that segments select by.
 * - notif_schedules: scheduled sends, leased so one node sends each exactly once.
 * Flags are INTEGER 0/1 on both engines.
 */
export const m0014: Migration = {
  name: '0014-notifications',
  async up(db) {
    await db.exec(`
CREATE TABLE notif_services (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  avatar TEXT NOT NULL,
  description TEXT NOT NULL,
  marketing INTEGER NOT NULL,
  last_seq BIGINT NOT NULL DEFAULT 0,
  last_feed BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL
);
CREATE TABLE notif_broadcasts (
  id TEXT PRIMARY KEY,
  service_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  feed_seq BIGINT,
  audience TEXT NOT NULL,
  audience_spec TEXT NOT NULL,
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  data TEXT NOT NULL,
  recipients BIGINT NOT NULL,
  schedule_id TEXT UNIQUE,
  created_at BIGINT NOT NULL,
  UNIQUE (service_id, seq)
);
CREATE INDEX notif_broadcasts_created ON notif_broadcasts (created_at);
CREATE UNIQUE INDEX notif_broadcasts_feed ON notif_broadcasts (service_id, feed_seq);
CREATE TABLE notif_rings (
  user_id TEXT PRIMARY KEY,
  head BIGINT NOT NULL
);
CREATE TABLE notif_slots (
  user_id TEXT NOT NULL,
  slot BIGINT NOT NULL,
  broadcast_id TEXT NOT NULL,
  service_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, slot)
);
CREATE INDEX notif_slots_created ON notif_slots (created_at);
CREATE INDEX notif_slots_service ON notif_slots (user_id, service_id, seq);
CREATE TABLE notif_prefs (
  user_id TEXT NOT NULL,
  service_id TEXT NOT NULL,
  muted INTEGER NOT NULL DEFAULT 0,
  unsubscribed INTEGER NOT NULL DEFAULT 0,
  hide_from BIGINT,
  hide_to BIGINT,
  read_seq BIGINT NOT NULL DEFAULT 0,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, service_id)
);
CREATE INDEX notif_prefs_service ON notif_prefs (service_id, unsubscribed);
CREATE TABLE user_attributes (
  user_id TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (user_id, key)
);
CREATE INDEX user_attributes_kv ON user_attributes (key, value);
CREATE TABLE notif_schedules (
  id TEXT PRIMARY KEY,
  service_id TEXT NOT NULL,
  request TEXT NOT NULL,
  send_at BIGINT NOT NULL,
  status TEXT NOT NULL,
  lease_owner TEXT,
  lease_until BIGINT,
  attempts INTEGER NOT NULL DEFAULT 0,
  broadcast_id TEXT,
  last_error TEXT,
  created_at BIGINT NOT NULL,
  done_at BIGINT
);
CREATE INDEX notif_schedules_due ON notif_schedules (status, send_at);
`);
  },
};
