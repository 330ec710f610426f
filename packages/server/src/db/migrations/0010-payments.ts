import type { Migration } from '../migrate.ts';

/**
 * Payments (wallet/payments/sql-payments-store.ts): the payment PIN of each user and the
 * top-up and withdrawal requests that go through the payment provider. The money itself
 * moves only in the wallet's ledger (reference `pay:<request id>`); these rows are the
 * requests' own state. `attempts` counts PIN tries reserved since the last success
 * (taken before the hash is checked, so parallel guesses count too).
 */
export const m0010: Migration = {
  name: '0010-payments',
  async up(db) {
    await db.exec(`
CREATE TABLE IF NOT EXISTS payment_pins (
  user_id TEXT PRIMARY KEY,
  hash TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  locked_until BIGINT NOT NULL DEFAULT 0,
  updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS payment_requests (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  amount BIGINT NOT NULL,
  provider TEXT NOT NULL,
  provider_ref TEXT,
  status TEXT NOT NULL,
  reason TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS payment_requests_client ON payment_requests (user_id, client_id);
CREATE INDEX IF NOT EXISTS payment_requests_user ON payment_requests (user_id, created_at);
CREATE INDEX IF NOT EXISTS payment_requests_pending ON payment_requests (status, updated_at);
`);
  },
};
