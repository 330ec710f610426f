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
