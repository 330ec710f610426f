import type { Migration } from '../migrate.ts';

/**
 * Webhooks (src/webhooks/): the durable outbox of after-events, delivered in order per hook
 * and key (the conversation, or the user for account events), and moderation reports.
 */
export const m0012: Migration = {
  name: '0012-webhooks',
  async up(db) {
    const id = db.dialect === 'postgres' ? 'BIGSERIAL PRIMARY KEY' : 'INTEGER PRIMARY KEY AUTOINCREMENT';
    await db.exec(`
CREATE TABLE webhook_outbox (
  id ${id},
  hook TEXT NOT NULL,
  event TEXT NOT NULL,
  ord_key TEXT NOT NULL,
  ord BIGINT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at BIGINT NOT NULL,
  lease_until BIGINT,
  last_error TEXT,
  created_at BIGINT NOT NULL,
  done_at BIGINT
);
CREATE INDEX webhook_outbox_pending ON webhook_outbox (status, next_at);
CREATE INDEX webhook_outbox_key ON webhook_outbox (hook, ord_key, status, ord, id);
CREATE TABLE moderation_reports (
  id TEXT PRIMARY KEY,
  reporter TEXT NOT NULL,
  target_user TEXT,
  conv TEXT,
  seq BIGINT,
  message_id TEXT,
  excerpt TEXT,
  reason TEXT NOT NULL,
  note TEXT NOT NULL,
  status TEXT NOT NULL,
  resolution TEXT,
  created_at BIGINT NOT NULL,
  resolved_at BIGINT
);
CREATE INDEX moderation_reports_status ON moderation_reports (status, created_at);
CREATE INDEX moderation_reports_reporter ON moderation_reports (reporter, created_at);
`);
  },
};
