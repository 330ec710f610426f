/**
 * Tables of the wallet and red packets (the same in SQLite and PostgreSQL except the
 * auto-increment key of ledger entries).
 *
 * - `wallet_accounts`: cached balance of user accounts (`u:<id>`) and of `gateway`.
 * - `ledger_entries`: the double-entry ledger; rows sharing a `tx_id` sum to zero.
 *   Escrow accounts (`rp:<packetId>`) have entries but their cached balance is the packet's
 *   `remaining_amount`.
 * - `wallet_ops`: gateway operations (top-ups, withdrawals), idempotent per reference.
 * - `red_packets`, `red_packet_claims`: packets and their claims; UNIQUE (packet, user).
 */
function ddl(entryKey: string): string {
  return `
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
CREATE INDEX IF NOT EXISTS red_packets_due ON red_packets (status, expires_at);
CREATE INDEX IF NOT EXISTS red_packets_unposted ON red_packets (created_at) WHERE message_id IS NULL;
CREATE INDEX IF NOT EXISTS red_packets_unannounced ON red_packets (ended_at) WHERE status_posted = 0 AND status <> 'active';
CREATE TABLE IF NOT EXISTS red_packet_claims (
  packet_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  amount BIGINT NOT NULL,
  seq INTEGER NOT NULL,
  at BIGINT NOT NULL,
  PRIMARY KEY (packet_id, user_id)
);
`;
}

export const WALLET_SCHEMA_SQLITE = ddl('INTEGER PRIMARY KEY');
export const WALLET_SCHEMA_POSTGRES = ddl('BIGSERIAL PRIMARY KEY');

/** Reconciliation queries, valid in both dialects. */
export const RECONCILE_SQL = {
  unbalancedTx: `SELECT tx_id, SUM(amount) AS s FROM ledger_entries GROUP BY tx_id HAVING SUM(amount) <> 0 LIMIT 20`,
  unbalancedTxCount: `SELECT COUNT(*) AS n FROM (SELECT tx_id FROM ledger_entries GROUP BY tx_id HAVING SUM(amount) <> 0) x`,
  accountMismatch: `
    SELECT a.id AS account, a.balance AS cached, COALESCE(e.s, 0) AS summed
    FROM wallet_accounts a
    LEFT JOIN (SELECT account, SUM(amount) AS s FROM ledger_entries WHERE account NOT LIKE 'rp:%' GROUP BY account) e ON e.account = a.id
    WHERE a.balance <> COALESCE(e.s, 0)
    UNION ALL
    SELECT e.account AS account, 0 AS cached, e.s AS summed
    FROM (SELECT account, SUM(amount) AS s FROM ledger_entries WHERE account NOT LIKE 'rp:%' GROUP BY account) e
    WHERE e.s <> 0 AND NOT EXISTS (SELECT 1 FROM wallet_accounts a WHERE a.id = e.account)
    LIMIT 20`,
  escrowMismatch: `
    SELECT p.id AS packet, p.remaining_amount AS cached, COALESCE(e.s, 0) AS summed
    FROM red_packets p
    LEFT JOIN (SELECT account, SUM(amount) AS s FROM ledger_entries WHERE account LIKE 'rp:%' GROUP BY account) e ON e.account = 'rp:' || p.id
    WHERE p.remaining_amount <> COALESCE(e.s, 0)
    LIMIT 20`,
  totals: `
    SELECT
      (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE account LIKE 'u:%' AND kind = 'topup') AS deposits,
      (SELECT COALESCE(-SUM(amount), 0) FROM ledger_entries WHERE account LIKE 'u:%' AND kind IN ('withdraw', 'withdraw_reversal')) AS withdrawals,
      (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE account LIKE 'u:%') AS user_entries,
      (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE account LIKE 'rp:%') AS escrow_entries,
      (SELECT COALESCE(SUM(amount), 0) FROM ledger_entries WHERE account = 'gateway') AS gateway_entries,
      (SELECT COALESCE(SUM(balance), 0) FROM wallet_accounts WHERE id LIKE 'u:%') AS user_balances,
      (SELECT COALESCE(SUM(balance), 0) FROM wallet_accounts WHERE id = 'gateway') AS gateway_balance,
      (SELECT COALESCE(SUM(remaining_amount), 0) FROM red_packets) AS escrow,
      (SELECT COUNT(*) FROM red_packets) AS packets,
      (SELECT COUNT(*) FROM red_packets WHERE status = 'active') AS active_packets,
      (SELECT COUNT(*) FROM red_packet_claims) AS claims,
      (SELECT COUNT(*) FROM ledger_entries) AS entries,
      (SELECT COUNT(*) FROM wallet_accounts WHERE id LIKE 'u:%' AND balance < 0) AS negative_accounts`,
  packetMismatch: `
    SELECT * FROM (
      SELECT p.id, p.total, p.count, p.status, p.remaining_amount AS ra, p.remaining_count AS rc, p.refunded,
        COALESCE(c.n, 0) AS cn, COALESCE(c.s, 0) AS cs,
        COALESCE(l.sent, 0) AS lsent, COALESCE(l.claimed, 0) AS lclaimed, COALESCE(l.refunded, 0) AS lrefunded
      FROM red_packets p
      LEFT JOIN (SELECT packet_id, COUNT(*) AS n, SUM(amount) AS s FROM red_packet_claims GROUP BY packet_id) c ON c.packet_id = p.id
      LEFT JOIN (
        SELECT ref,
          SUM(CASE WHEN kind = 'rp_send' THEN amount ELSE 0 END) AS sent,
          SUM(CASE WHEN kind = 'rp_claim' THEN -amount ELSE 0 END) AS claimed,
          SUM(CASE WHEN kind = 'rp_refund' THEN -amount ELSE 0 END) AS refunded
        FROM ledger_entries WHERE account LIKE 'rp:%' GROUP BY ref
      ) l ON l.ref = p.id
    ) x
    WHERE NOT (
      cs + refunded + ra = total AND cn <= count AND lsent = total AND lclaimed = cs AND lrefunded = refunded
      AND (status <> 'active' OR cn + rc = count)
      AND (status = 'active' OR ra = 0)
      AND (status <> 'finished' OR cn = count)
    )
    LIMIT 20`,
  /** Active packets past their expiry before the given time (parameter 1). */
  overdue: (param: string): string => `SELECT COUNT(*) AS n FROM red_packets WHERE status = 'active' AND expires_at < ${param}`,
};
