import type { Migration } from '../migrate.ts';

/**
 * Offline push (push/sql-push-store.ts): the device registry, per-user settings, marketing
 * quotas, the job queue with every attempt, funnel statistics and small secrets (VAPID keys,
 * receipt key). IF NOT EXISTS: PostgreSQL databases of releases before versioned migrations
 * already have these tables with these definitions (`sandbox` BOOLEAN there, INTEGER 0/1 on
 * SQLite — the one dialect difference). SQLite kept them in their own file (push.db) before;
 * push/legacy-import.ts copies that file's rows in once.
 */
export const m0005: Migration = {
  name: '0005-push',
  async up(db) {
    const bool = db.dialect === 'postgres' ? 'BOOLEAN NOT NULL DEFAULT FALSE' : 'INTEGER NOT NULL DEFAULT 0';
    await db.exec(`
CREATE TABLE IF NOT EXISTS push_devices (
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  platform TEXT NOT NULL,
  provider TEXT NOT NULL,
  token TEXT NOT NULL,
  vendor TEXT,
  sandbox ${bool},
  app_version TEXT NOT NULL DEFAULT '',
  locale TEXT NOT NULL DEFAULT '',
  time_zone TEXT NOT NULL DEFAULT 'UTC',
  permission TEXT NOT NULL,
  last_seen BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, device_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS push_devices_token ON push_devices (provider, token);
CREATE TABLE IF NOT EXISTS push_settings (user_id TEXT PRIMARY KEY, settings TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS push_quota (day TEXT NOT NULL, key TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (day, key));
CREATE TABLE IF NOT EXISTS push_jobs (
  id TEXT PRIMARY KEY,
  lane TEXT NOT NULL,
  category TEXT NOT NULL,
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  provider TEXT NOT NULL,
  collapse_key TEXT,
  conv TEXT,
  seq BIGINT NOT NULL,
  count INTEGER NOT NULL,
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  data TEXT NOT NULL,
  not_before BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  lease_until BIGINT,
  dispatched_at BIGINT,
  sent_at BIGINT,
  delivered_at BIGINT,
  displayed_at BIGINT,
  clicked_at BIGINT,
  last_error TEXT
);
CREATE INDEX IF NOT EXISTS push_jobs_due ON push_jobs (lane, not_before) WHERE status = 'queued';
CREATE UNIQUE INDEX IF NOT EXISTS push_jobs_collapse ON push_jobs (user_id, device_id, collapse_key) WHERE status = 'queued' AND collapse_key IS NOT NULL;
DROP INDEX IF EXISTS push_jobs_key;
CREATE INDEX IF NOT EXISTS push_jobs_ckey ON push_jobs (user_id, device_id, collapse_key);
CREATE INDEX IF NOT EXISTS push_jobs_lease ON push_jobs (lease_until) WHERE status = 'sending';
CREATE TABLE IF NOT EXISTS push_attempts (
  job_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  at BIGINT NOT NULL,
  provider TEXT NOT NULL,
  status INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  reason TEXT,
  latency_ms INTEGER NOT NULL,
  PRIMARY KEY (job_id, attempt)
);
CREATE TABLE IF NOT EXISTS push_stats (
  day TEXT NOT NULL,
  category TEXT NOT NULL,
  provider TEXT NOT NULL,
  stage TEXT NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (day, category, provider, stage)
);
CREATE TABLE IF NOT EXISTS push_kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`);
  },
};
