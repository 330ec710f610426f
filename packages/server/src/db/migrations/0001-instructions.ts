import type { Migration } from '../migrate.ts';

/**
 * Instructions and their per-device targets. IF NOT EXISTS: databases of releases before
 * versioned migrations already have these tables, with this exact definition.
 */
export const m0001: Migration = {
  name: '0001-instructions',
  async up(db) {
    await db.exec(`
CREATE TABLE IF NOT EXISTS instructions (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  issued_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS instructions_user ON instructions (user_id, created_at);
CREATE TABLE IF NOT EXISTS instruction_targets (
  instruction_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  status TEXT NOT NULL,
  delivered_at BIGINT,
  completed_at BIGINT,
  result TEXT,
  PRIMARY KEY (instruction_id, device_id)
);
CREATE INDEX IF NOT EXISTS instruction_targets_device ON instruction_targets (user_id, device_id, status);
`);
  },
};
