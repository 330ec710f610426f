import type { Migration } from '../migrate.ts';
import { addMissingColumns } from './columns.ts';

/**
 * Wallets and red packets (wallet/sql-wallet-store.ts), on a double-entry ledger:
 * - `wallet_accounts`: cached balance of user accounts (`u:<id>`) and of `gateway`;
 * - `ledger_entries`: rows sharing a `tx_id` sum to zero; escrow accounts (`rp:<packetId>`)
 *   have entries, their cached balance is the packet's `remaining_amount`;
 * - `wallet_ops`: gateway operations (top-ups, withdrawals), idempotent per reference;
 * - `red_packets`, `red_packet_claims`: packets and their claims, one per (packet, user).
 *
 * Adopts the tables that releases before versioned migrations created themselves (the same
 * definitions: IF NOT EXISTS), and adds any later column such a table lacks. The ledger key
 * is the one dialect difference: INTEGER PRIMARY KEY (SQLite rowid) / BIGSERIAL.
 */
export const m0006: Migration = {
  name: '0006-wallet',
  async up(db) {
    const entryKey = db.dialect === 'postgres' ? 'BIGSERIAL PRIMARY KEY' : 'INTEGER PRIMARY KEY';
    await db.exec(`
CREATE TABLE IF NOT EXISTS wallet_accounts (
  id TEXT PRIMARY KEY,
  balance BIGINT NOT NULL DEFAULT 0,
  updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_entries (
  id ${entryKey},
  tx_id TEXT NOT NULL,
  account TEXT NOT NULL,
  amount BIGINT NOT NULL,
  kind TEXT NOT NULL,
  ref TEXT NOT NULL,
  at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_entries_account ON ledger_entries (account, id);
CREATE TABLE IF NOT EXISTS wallet_ops (
  reference TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  user_id TEXT NOT NULL,
  amount BIGINT NOT NULL,
  status TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS red_packets (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  conv_id TEXT NOT NULL,
  sender_id TEXT NOT NULL,
  split TEXT NOT NULL,
  total BIGINT NOT NULL,
  count INTEGER NOT NULL,
  greeting TEXT NOT NULL,
  exclusive_to TEXT,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  status TEXT NOT NULL,
  remaining_amount BIGINT NOT NULL,
  remaining_count INTEGER NOT NULL,
  refunded BIGINT NOT NULL DEFAULT 0,
  message_id TEXT,
  status_posted SMALLINT NOT NULL DEFAULT 0,
  ended_at BIGINT,
  UNIQUE (sender_id, client_id),
  CHECK (remaining_amount >= 0 AND remaining_count >= 0 AND remaining_amount >= remaining_count)
);
CREATE TABLE IF NOT EXISTS red_packet_claims (
  packet_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  amount BIGINT NOT NULL,
  seq INTEGER NOT NULL,
  at BIGINT NOT NULL,
  PRIMARY KEY (packet_id, user_id)
);
`);
    await addMissingColumns(db, 'red_packets', {
      refunded: 'BIGINT NOT NULL DEFAULT 0',
      message_id: 'TEXT',
      status_posted: 'SMALLINT NOT NULL DEFAULT 0',
      ended_at: 'BIGINT',
    });
    await db.exec(`
CREATE INDEX IF NOT EXISTS red_packets_due ON red_packets (status, expires_at);
CREATE INDEX IF NOT EXISTS red_packets_unposted ON red_packets (created_at) WHERE message_id IS NULL;
CREATE INDEX IF NOT EXISTS red_packets_unannounced ON red_packets (ended_at) WHERE status_posted = 0 AND status <> 'active';
`);
  },
};
