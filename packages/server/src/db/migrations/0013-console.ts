import type { Migration } from '../migrate.ts';

/** The admin console (src/console/): its admin accounts, their sessions, and the audit log of admin actions. */
export const m0013: Migration = {
  name: '0013-console',
  async up(db) {
    const id = db.dialect === 'postgres' ? 'BIGSERIAL PRIMARY KEY' : 'INTEGER PRIMARY KEY AUTOINCREMENT';
    await db.exec(`
CREATE TABLE console_admins (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL,
  totp_secret TEXT,
  totp_pending TEXT,
  created_at BIGINT NOT NULL
);
CREATE TABLE console_sessions (
  token_hash TEXT PRIMARY KEY,
  admin_id TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_admin ON console_sessions (admin_id);
CREATE TABLE console_audit (
  id ${id},
  admin TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  detail TEXT NOT NULL,
  at BIGINT NOT NULL
);
CREATE INDEX console_audit_at ON console_audit (at);
`);
  },
};
