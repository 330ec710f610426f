import type { ReconcileCheck, ReconcileReport } from './wallet-store.ts';

/** What both stores read for a reconciliation (numbers already converted from the driver). */
export interface ReconcileRaw {
  at: number;
  unbalancedTxCount: number;
  unbalancedTx: { tx_id: string; s: number }[];
  accountMismatch: { account: string; cached: number; summed: number }[];
  escrowMismatch: { packet: string; cached: number; summed: number }[];
  totals: {
    deposits: number;
    withdrawals: number;
    user_entries: number;
    escrow_entries: number;
    gateway_entries: number;
    user_balances: number;
    gateway_balance: number;
    escrow: number;
    packets: number;
    active_packets: number;
    claims: number;
    entries: number;
    negative_accounts: number;
  };
  packetMismatch: Record<string, unknown>[];
  overdue: number;
}

const show = (rows: unknown[]): string => JSON.stringify(rows.slice(0, 5));

/** Turn what the store read into the report; see ReconcileReport for the checks. */
export function buildReport(r: ReconcileRaw): ReconcileReport {
  const t = r.totals;
  const net = t.deposits - t.withdrawals;
  const checks: ReconcileCheck[] = [
    {
      name: 'transactions_balance',
      ok: r.unbalancedTxCount === 0,
      detail: r.unbalancedTxCount === 0 ? 'every ledger transaction sums to zero' : `${r.unbalancedTxCount} transactions do not sum to zero: ${show(r.unbalancedTx)}`,
    },
    {
      name: 'balances_match_entries',
      ok: r.accountMismatch.length === 0,
      detail: r.accountMismatch.length === 0 ? 'every cached wallet balance equals the sum of its entries' : `mismatched accounts: ${show(r.accountMismatch)}`,
    },
    {
      name: 'escrow_matches_entries',
      ok: r.escrowMismatch.length === 0,
      detail: r.escrowMismatch.length === 0 ? "every packet's remaining amount equals the sum of its escrow entries" : `mismatched escrows: ${show(r.escrowMismatch)}`,
    },
    {
      name: 'money_conserved',
      ok: t.user_balances + t.escrow === net && t.user_entries + t.escrow_entries === net && t.gateway_balance === -net && t.gateway_entries === -net,
      detail: `user balances ${t.user_balances} + escrow ${t.escrow} = ${t.user_balances + t.escrow}; deposits ${t.deposits} − withdrawals ${t.withdrawals} = ${net}; from entries: users ${t.user_entries} + escrow ${t.escrow_entries}; gateway ${t.gateway_balance} (entries ${t.gateway_entries})`,
    },
    {
      name: 'no_negative_balance',
      ok: t.negative_accounts === 0,
      detail: `${t.negative_accounts} user accounts below zero`,
    },
    {
      name: 'packets_add_up',
      ok: r.packetMismatch.length === 0,
      detail:
        r.packetMismatch.length === 0
          ? "each packet: claims + refund + remaining = total, claims ≤ count, ledger agrees with the claims, ended packets hold nothing"
          : `packets that do not add up: ${show(r.packetMismatch)}`,
    },
    {
      name: 'nothing_stranded',
      ok: r.overdue === 0,
      detail: `${r.overdue} active packets past expiry beyond the grace period`,
    },
  ];
  return {
    ok: checks.every((c) => c.ok),
    at: r.at,
    totals: {
      deposits: t.deposits,
      withdrawals: t.withdrawals,
      userBalances: t.user_balances,
      escrow: t.escrow,
      packets: t.packets,
      activePackets: t.active_packets,
      claims: t.claims,
      entries: t.entries,
    },
    checks,
  };
}

/** Convert every bigint/numeric-string field of a row to a number (amounts are far below 2^53). */
export function numericRow<T extends Record<string, unknown>>(row: T, textKeys: readonly string[] = []): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    if (textKeys.includes(k) || v === null) out[k] = v;
    else if (typeof v === 'bigint') out[k] = Number(v);
    else if (typeof v === 'string' && /^-?\d+(\.0+)?$/.test(v)) out[k] = Number(v);
    else out[k] = v;
  }
  return out as T;
}

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
