import type { RedPacketClaim } from '@magpie/protocol';
import { forUpdate, type Dialect, type Queryable, type SqlEngine } from '../db/engine.ts';
import { RetryTransaction, retryTransaction } from '../db/retry.ts';
import { cryptoUniform, nextShare, type UniformSource } from './split.ts';
import { buildReport, numericRow, RECONCILE_SQL, type ReconcileRaw } from './reconcile.ts';
import { assertFen, claimFromRow, entryFromRow, packetFromRow, type ClaimRow, type EntryRow, type OpRow, type PacketRow } from './wallet-rows.ts';
import {
  GATEWAY_ACCOUNT,
  OVERDUE_GRACE_MS,
  escrowAccount,
  userAccount,
  type CreatePacketOutcome,
  type GatewayOp,
  type GatewayOpOutcome,
  type LedgerEntry,
  type LedgerKind,
  type NewPacket,
  type OpenOutcome,
  type OpenRequest,
  type PacketRecord,
  type ReconcileReport,
  type WalletStore,
} from './wallet-store.ts';

export interface SqlWalletStoreOptions {
  /** Source of U for the split; the OS CSPRNG by default. */
  uniform?: UniformSource;
}


const BALANCE = 'SELECT balance FROM wallet_accounts WHERE id = ?';
const CREDIT = `INSERT INTO wallet_accounts (id, balance, updated_at) VALUES (?, ?, ?)
  ON CONFLICT (id) DO UPDATE SET balance = wallet_accounts.balance + excluded.balance, updated_at = excluded.updated_at RETURNING balance`;
const DEBIT = 'UPDATE wallet_accounts SET balance = balance - ?, updated_at = ? WHERE id = ? AND balance >= ? RETURNING balance';
const ENTRY_PAIR = 'INSERT INTO ledger_entries (tx_id, account, amount, kind, ref, at) VALUES (?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?)';
const INSERT_OP = `INSERT INTO wallet_ops (reference, kind, user_id, amount, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (reference) DO NOTHING RETURNING reference`;
const INSERT_PACKET = `INSERT INTO red_packets (id, client_id, conv_id, sender_id, split, total, count, greeting, exclusive_to, created_at, expires_at, status, remaining_amount, remaining_count)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?) ON CONFLICT (sender_id, client_id) DO NOTHING RETURNING *`;
const CLAIM_COLS = 'SELECT user_id, amount, seq, at FROM red_packet_claims';
const INSERT_CLAIM = 'INSERT INTO red_packet_claims (packet_id, user_id, amount, seq, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (packet_id, user_id) DO NOTHING RETURNING seq';
const INSERT_CLAIMS = 'INSERT INTO red_packet_claims (packet_id, user_id, amount, seq, at) VALUES ';
const INSERT_ENTRIES = 'INSERT INTO ledger_entries (tx_id, account, amount, kind, ref, at) VALUES ';
const INSERT_CREDITS = 'INSERT INTO wallet_accounts (id, balance, updated_at) VALUES ';
const ON_CREDIT = ' ON CONFLICT (id) DO UPDATE SET balance = wallet_accounts.balance + excluded.balance, updated_at = excluded.updated_at';
/** Rows per multi-row statement: few distinct statement texts to prepare, and far below either database's parameter limit. */
const CHUNK = 64;
/**
 * `head` + `n` rows of `cols` placeholders + `tail`, built once per shape: the same string
 * object every time, so the engine's statement cache finds it without hashing a long new
 * string per call.
 */
const multiRow = new Map<string, Map<number, string>>();
function rows(head: string, n: number, cols: number, tail = ''): string {
  let byN = multiRow.get(head);
  if (!byN) multiRow.set(head, (byN = new Map()));
  let sql = byN.get(n);
  if (!sql) {
    const one = `(${Array.from({ length: cols }, () => '?').join(', ')})`;
    sql = `${head}${Array.from({ length: n }, () => one).join(', ')}${tail}`;
    byN.set(n, sql);
  }
  return sql;
}
/** openMany's multi-row statements (runRows): a claim already there is another node's (the caller reruns); two ledger entries per claim. */
const CLAIM_ROWS = { head: INSERT_CLAIMS, cols: 5, tail: ' ON CONFLICT (packet_id, user_id) DO NOTHING' };
const ENTRY_PAIR_ROWS = { head: INSERT_ENTRIES, cols: 6, perItem: 2 };
const CREDIT_ROWS = { head: INSERT_CREDITS, cols: 3, tail: ON_CREDIT };
/**
 * `count` items into multi-row statements (`head`, SQL rows of `cols` values, `tail`), CHUNK
 * items per statement, each item `perItem` SQL rows; `put(params, k, i)` writes item i's
 * `cols × perItem` values from params[k]. Each statement's parameters are filled in place, one
 * array per statement (issue 16: flatMap made an array per row, ~0.5 KB of garbage per
 * red-packet open). Returns the rows changed.
 */
async function runRows(
  tx: Queryable,
  count: number,
  sql: { head: string; cols: number; tail?: string; perItem?: number },
  put: (params: unknown[], k: number, i: number) => void,
): Promise<number> {
  const perItem = sql.perItem ?? 1;
  const width = sql.cols * perItem;
  let changed = 0;
  for (let from = 0; from < count; from += CHUNK) {
    const n = Math.min(CHUNK, count - from);
    const params: unknown[] = new Array(n * width);
    for (let i = 0; i < n; i++) put(params, i * width, from + i);
    changed += await tx.run(rows(sql.head, n * perItem, sql.cols, sql.tail), params);
  }
  return changed;
}
const CAS_OPEN = `UPDATE red_packets SET remaining_amount = ?, remaining_count = ?, status = ?, ended_at = ?
  WHERE id = ? AND status = 'active' AND remaining_amount = ? AND remaining_count = ?`;
/** Ending a packet: what is left becomes `refunded` (the right-hand sides read the old row). */
const END_PACKET = `UPDATE red_packets SET status = 'expired', refunded = remaining_amount, remaining_amount = 0, remaining_count = 0, ended_at = ?
  WHERE id = ? AND status = 'active'`;

type OpenState = Pick<PacketRow, 'split' | 'count' | 'status' | 'expires_at' | 'remaining_amount' | 'remaining_count'> & {
  c_amount: number | string | null;
  c_seq: number | string | null;
  c_at: number | string | null;
  balance: number | string | null;
};

/** One read per open: the packet (row-locked on PostgreSQL), this user's claim and balance. */
const openState = (d: Dialect): string => `SELECT p.split, p.count, p.status, p.expires_at, p.remaining_amount, p.remaining_count,
    c.amount AS c_amount, c.seq AS c_seq, c.at AS c_at, w.balance
  FROM red_packets p LEFT JOIN red_packet_claims c ON c.packet_id = p.id AND c.user_id = ?
  LEFT JOIN wallet_accounts w ON w.id = ?
  WHERE p.id = ?${forUpdate(d, 'p')}`;

/**
 * WalletStore on the server's database, SQLite or PostgreSQL (db/engine.ts); tables: migration
 * 0006. Every call is one transaction; a batch of opens is one transaction (one commit, one
 * fsync on SQLite).
 *
 * Concurrency: on SQLite a write transaction (BEGIN IMMEDIATE) excludes every other writer.
 * On PostgreSQL an open locks its packet row (`SELECT … FOR UPDATE`) before it computes the
 * share, so opens of one packet on any number of nodes run one after another; a batch locks
 * its packets in id order (no lock cycles between two nodes' batches). The packet update is
 * still a compare-and-set on the amount and count that were read, and a claim is unique per
 * (packet, user): whatever slips past the lock (a claim committed between the snapshot of the
 * join and the lock) rolls the transaction back and runs it again, as do deadlocks.
 */
export class SqlWalletStore implements WalletStore {
  readonly kind: Dialect;
  private readonly draw: UniformSource;
  private readonly openSql: string;

  constructor(
    private readonly db: SqlEngine,
    opts: SqlWalletStoreOptions = {},
  ) {
    this.kind = db.dialect;
    this.draw = opts.uniform ?? cryptoUniform();
    this.openSql = openState(db.dialect);
  }

  /** The tables come with the server's migrations (db/migrations/0006-wallet.ts). */
  async migrate(): Promise<void> {}

  /** The engine belongs to whoever opened it. */
  async close(): Promise<void> {}

  private tx<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return retryTransaction(this.db, fn, { maxAttempts: 8 });
  }

  async balance(userId: string): Promise<number> {
    return balanceOf(this.db, userAccount(userId));
  }

  async entries(userId: string, q: { before?: number; limit: number }): Promise<LedgerEntry[]> {
    const rows = await this.db.all<EntryRow>('SELECT * FROM ledger_entries WHERE account = ? AND id < ? ORDER BY id DESC LIMIT ?', [
      userAccount(userId),
      q.before ?? Number.MAX_SAFE_INTEGER,
      q.limit,
    ]);
    return rows.map(entryFromRow);
  }

  private async opOutcome(tx: Queryable, op: OpRow, userId: string, amount: number, kind: 'topup' | 'withdraw'): Promise<GatewayOpOutcome> {
    if (op.kind !== kind || op.user_id !== userId || Number(op.amount) !== amount) return { ok: false, error: 'reference_conflict' };
    return { ok: true, status: op.status, duplicate: true, balance: await balanceOf(tx, userAccount(userId)), kind };
  }

  async topUp(op: GatewayOp): Promise<GatewayOpOutcome> {
    assertFen(op.amount);
    return this.tx(async (tx): Promise<GatewayOpOutcome> => {
      const prior = await tx.get<OpRow>('SELECT * FROM wallet_ops WHERE reference = ?', [op.reference]);
      if (prior) return this.opOutcome(tx, prior, op.userId, op.amount, 'topup');
      const acct = userAccount(op.userId);
      if (op.maxBalance !== undefined) {
        // Locks the account row (when it exists): concurrent top-ups cannot pass the cap together.
        const row = await tx.get<{ balance: number | string }>(`${BALANCE}${forUpdate(tx.dialect)}`, [acct]);
        if (Number(row?.balance ?? 0) + op.amount > op.maxBalance) return { ok: false, error: 'balance_limit' };
      }
      if (!(await tx.get(INSERT_OP, [op.reference, 'topup', op.userId, op.amount, 'done', op.now, op.now]))) throw new RetryTransaction();
      await move(tx, `t:${op.reference}`, GATEWAY_ACCOUNT, acct, op.amount, 'topup', op.reference, op.now);
      await credit(tx, GATEWAY_ACCOUNT, -op.amount, op.now);
      return { ok: true, status: 'done', duplicate: false, balance: await credit(tx, acct, op.amount, op.now), kind: 'topup' };
    });
  }

  async withdraw(op: GatewayOp): Promise<GatewayOpOutcome> {
    assertFen(op.amount);
    return this.tx(async (tx): Promise<GatewayOpOutcome> => {
      const prior = await tx.get<OpRow>('SELECT * FROM wallet_ops WHERE reference = ?', [op.reference]);
      if (prior) return this.opOutcome(tx, prior, op.userId, op.amount, 'withdraw');
      const acct = userAccount(op.userId);
      const debited = await tx.get<{ balance: number | string }>(DEBIT, [op.amount, op.now, acct, op.amount]);
      if (!debited) return { ok: false, error: 'insufficient_balance' };
      if (!(await tx.get(INSERT_OP, [op.reference, 'withdraw', op.userId, op.amount, 'pending', op.now, op.now]))) throw new RetryTransaction();
      await move(tx, `w:${op.reference}`, acct, GATEWAY_ACCOUNT, op.amount, 'withdraw', op.reference, op.now);
      await credit(tx, GATEWAY_ACCOUNT, op.amount, op.now);
      return { ok: true, status: 'pending', duplicate: false, balance: Number(debited.balance), kind: 'withdraw' };
    });
  }

  async settleWithdrawal(reference: string, result: 'paid' | 'reversed', now: number): Promise<GatewayOpOutcome> {
    return this.tx(async (tx): Promise<GatewayOpOutcome> => {
      const op = await tx.get<OpRow>(`SELECT * FROM wallet_ops WHERE reference = ?${forUpdate(tx.dialect)}`, [reference]);
      if (!op) return { ok: false, error: 'not_found' };
      if (op.kind !== 'withdraw') return { ok: false, error: 'reference_conflict' };
      if (op.status !== 'pending') return { ok: false, error: 'already_settled', status: op.status as 'paid' | 'reversed' };
      const acct = userAccount(op.user_id);
      const amount = Number(op.amount);
      if (result === 'reversed') {
        await move(tx, `wr:${reference}`, GATEWAY_ACCOUNT, acct, amount, 'withdraw_reversal', reference, now);
        await credit(tx, GATEWAY_ACCOUNT, -amount, now);
        await credit(tx, acct, amount, now);
      }
      await tx.run('UPDATE wallet_ops SET status = ?, updated_at = ? WHERE reference = ?', [result, now, reference]);
      return { ok: true, status: result, duplicate: false, balance: await balanceOf(tx, acct), kind: 'withdraw' };
    });
  }

  async createPacket(p: NewPacket): Promise<CreatePacketOutcome> {
    assertFen(p.total);
    return this.tx(async (tx): Promise<CreatePacketOutcome> => {
      const prior = await tx.get<PacketRow>('SELECT * FROM red_packets WHERE sender_id = ? AND client_id = ?', [p.sender, p.clientId]);
      if (prior) return { ok: true, packet: packetFromRow(prior), duplicate: true };
      const acct = userAccount(p.sender);
      if (!(await tx.get(DEBIT, [p.total, p.createdAt, acct, p.total]))) return { ok: false, error: 'insufficient_balance' };
      const row = await tx.get<PacketRow>(INSERT_PACKET, [
        p.id, p.clientId, p.conv, p.sender, p.split, p.total, p.count, p.greeting, p.exclusiveTo, p.createdAt, p.expiresAt, p.total, p.count,
      ]);
      // Another node created this (sender, clientId) after our read: rerun, which finds it.
      if (!row) throw new RetryTransaction();
      await move(tx, `s:${p.id}`, acct, escrowAccount(p.id), p.total, 'rp_send', p.id, p.createdAt);
      return { ok: true, packet: packetFromRow(row), duplicate: false };
    });
  }

  async getPacket(id: string): Promise<PacketRecord | null> {
    const row = await this.db.get<PacketRow>('SELECT * FROM red_packets WHERE id = ?', [id]);
    return row ? packetFromRow(row) : null;
  }

  async claims(packetId: string): Promise<RedPacketClaim[]> {
    return (await this.db.all<ClaimRow>(`${CLAIM_COLS} WHERE packet_id = ? ORDER BY seq`, [packetId])).map(claimFromRow);
  }

  async claimOf(packetId: string, userId: string): Promise<RedPacketClaim | null> {
    const row = await this.db.get<ClaimRow>(`${CLAIM_COLS} WHERE packet_id = ? AND user_id = ?`, [packetId, userId]);
    return row ? claimFromRow(row) : null;
  }

  async open(batch: OpenRequest[]): Promise<OpenOutcome[]> {
    if (batch.length === 0) return [];
    // One packet's opens together, in arrival order; packets in id order (the lock order).
    const byPacket = new Map<string, number[]>();
    for (let i = 0; i < batch.length; i++) {
      const id = batch[i]!.packetId;
      const list = byPacket.get(id);
      if (list) list.push(i);
      else byPacket.set(id, [i]);
    }
    const packets = [...byPacket.keys()].sort();
    return this.tx(async (tx) => {
      const out: OpenOutcome[] = new Array(batch.length);
      for (const id of packets) {
        const idx = byPacket.get(id)!;
        if (idx.length === 1) out[idx[0]!] = await this.openOne(tx, batch[idx[0]!]!);
        else {
          const res = await this.openMany(tx, id, idx.map((i) => batch[i]!));
          idx.forEach((i, k) => (out[i] = res[k]!));
        }
      }
      return out;
    });
  }

  /**
   * Several opens of one packet in one go (same outcomes as `openOne` one after another):
   * three reads (the packet, locked on PostgreSQL; these users' claims; their balances), the
   * shares drawn in memory in arrival order, then one compare-and-set on the packet and one
   * multi-row statement each for the claims, the ledger entries and the credits — instead of
   * five statements per open.
   */
  private async openMany(tx: Queryable, packetId: string, reqs: OpenRequest[]): Promise<OpenOutcome[]> {
    const p = await tx.get<PacketRow>(`SELECT split, count, status, expires_at, remaining_amount, remaining_count FROM red_packets WHERE id = ?${forUpdate(tx.dialect)}`, [packetId]);
    if (!p) return reqs.map(() => ({ ok: false, error: 'not_found' }));
    const userIds = [...new Set(reqs.map((r) => r.userId))];
    const users = tx.textList(userIds);
    const prior = new Map<string, RedPacketClaim>();
    for (const row of await tx.all<ClaimRow & { user_id: string }>(`${CLAIM_COLS} WHERE packet_id = ? AND user_id IN ${users.sql}`, [packetId, users.param])) {
      prior.set(row.user_id, claimFromRow(row));
    }
    const balances = new Map<string, number>();
    if (reqs.some((r) => r.maxBalance !== undefined)) {
      const accounts = tx.textList(userIds.map(userAccount));
      for (const row of await tx.all<{ id: string; balance: number | string }>(`SELECT id, balance FROM wallet_accounts WHERE id IN ${accounts.sql}`, [accounts.param])) {
        balances.set(row.id, Number(row.balance));
      }
    }
    const fromAmount = Number(p.remaining_amount);
    const fromCount = Number(p.remaining_count);
    const total = Number(p.count);
    const expiresAt = Number(p.expires_at);
    let status = p.status;
    let amountLeft = fromAmount;
    let countLeft = fromCount;
    let endedAt: number | null = null;
    // The new claims, and their accounts (parallel): the objects `out` answers with, no copies.
    const claims: RedPacketClaim[] = [];
    const accts: string[] = [];
    const out = reqs.map((r): OpenOutcome => {
      const had = prior.get(r.userId);
      if (had) return { ok: false, error: 'already_opened', claim: had };
      if (status === 'finished') return { ok: false, error: 'all_claimed' };
      if (status === 'expired' || r.now >= expiresAt) return { ok: false, error: 'expired' };
      if (countLeft === 0) return { ok: false, error: 'all_claimed' };
      const acct = userAccount(r.userId);
      const amount = nextShare(p.split, amountLeft, countLeft, this.draw);
      const balance = balances.get(acct) ?? 0;
      if (r.maxBalance !== undefined && balance + amount > r.maxBalance) return { ok: false, error: 'balance_limit' };
      balances.set(acct, balance + amount);
      countLeft--;
      amountLeft -= amount;
      const seq = total - countLeft;
      const claim: RedPacketClaim = { user: r.userId, amount, seq, at: r.now };
      prior.set(r.userId, claim);
      claims.push(claim);
      accts.push(acct);
      if (countLeft === 0) {
        status = 'finished';
        endedAt = r.now;
      }
      return { ok: true, claim, remainingCount: countLeft, remainingAmount: amountLeft, finished: countLeft === 0 };
    });
    if (claims.length === 0) return out;
    const changed = await tx.run(CAS_OPEN, [amountLeft, countLeft, status, endedAt, packetId, fromAmount, fromCount]);
    if (changed !== 1) throw new RetryTransaction();
    const escrow = escrowAccount(packetId);
    const inserted = await runRows(tx, claims.length, CLAIM_ROWS, (p, k, i) => {
      const c = claims[i]!;
      p[k] = packetId;
      p[k + 1] = c.user;
      p[k + 2] = c.amount;
      p[k + 3] = c.seq;
      p[k + 4] = c.at;
    });
    // A claim committed by another node between our read and our insert: run it all again.
    if (inserted !== claims.length) throw new RetryTransaction();
    // Two ledger entries per claim: out of escrow, into the user's account.
    await runRows(tx, claims.length, ENTRY_PAIR_ROWS, (p, k, i) => {
      const c = claims[i]!;
      const txId = `c:${packetId}:${c.user}`;
      p[k] = txId;
      p[k + 1] = escrow;
      p[k + 2] = -c.amount;
      p[k + 3] = 'rp_claim';
      p[k + 4] = packetId;
      p[k + 5] = c.at;
      p[k + 6] = txId;
      p[k + 7] = accts[i];
      p[k + 8] = c.amount;
      p[k + 9] = 'rp_claim';
      p[k + 10] = packetId;
      p[k + 11] = c.at;
    });
    // One user claims once per packet, so each account appears once per statement.
    await runRows(tx, claims.length, CREDIT_ROWS, (p, k, i) => {
      const c = claims[i]!;
      p[k] = accts[i];
      p[k + 1] = c.amount;
      p[k + 2] = c.at;
    });
    return out;
  }

  private async openOne(tx: Queryable, r: OpenRequest): Promise<OpenOutcome> {
    const acct = userAccount(r.userId);
    const p = await tx.get<OpenState>(this.openSql, [r.userId, acct, r.packetId]);
    if (!p) return { ok: false, error: 'not_found' };
    if (p.c_amount !== null) return { ok: false, error: 'already_opened', claim: { user: r.userId, amount: Number(p.c_amount), seq: Number(p.c_seq), at: Number(p.c_at) } };
    const remainingAmount = Number(p.remaining_amount);
    const remainingCount = Number(p.remaining_count);
    if (p.status === 'finished') return { ok: false, error: 'all_claimed' };
    if (p.status === 'expired' || r.now >= Number(p.expires_at)) return { ok: false, error: 'expired' };
    if (remainingCount === 0) return { ok: false, error: 'all_claimed' };
    const amount = nextShare(p.split, remainingAmount, remainingCount, this.draw);
    if (r.maxBalance !== undefined && Number(p.balance ?? 0) + amount > r.maxBalance) return { ok: false, error: 'balance_limit' };
    const count = remainingCount - 1;
    const left = remainingAmount - amount;
    const finished = count === 0;
    const seq = Number(p.count) - count;
    // The packet is ours until commit: the four writes go out together (pipelined on PostgreSQL).
    const [changed, claimed] = await Promise.all([
      tx.run(CAS_OPEN, [left, count, finished ? 'finished' : 'active', finished ? r.now : null, r.packetId, remainingAmount, remainingCount]),
      tx.get(INSERT_CLAIM, [r.packetId, r.userId, amount, seq, r.now]),
      move(tx, `c:${r.packetId}:${r.userId}`, escrowAccount(r.packetId), acct, amount, 'rp_claim', r.packetId, r.now),
      credit(tx, acct, amount, r.now),
    ]);
    if (changed !== 1 || !claimed) throw new RetryTransaction();
    return { ok: true, claim: { user: r.userId, amount, seq, at: r.now }, remainingCount: count, remainingAmount: left, finished };
  }

  async expire(packetId: string, now: number): Promise<{ refunded: number; claimedCount: number } | null> {
    return this.tx(async (tx) => {
      const p = await tx.get<PacketRow>(`${END_PACKET} AND expires_at <= ? RETURNING *`, [now, packetId, now]);
      if (!p) return null;
      const refunded = Number(p.refunded);
      await refund(tx, p, refunded, now);
      const c = await tx.get<{ n: number | string }>('SELECT COUNT(*) AS n FROM red_packet_claims WHERE packet_id = ?', [packetId]);
      return { refunded, claimedCount: Number(c!.n) };
    });
  }

  async refundUnposted(packetId: string, now: number): Promise<{ refunded: number } | null> {
    return this.tx(async (tx) => {
      const p = await tx.get<PacketRow>(`${END_PACKET} AND message_id IS NULL RETURNING *`, [now, packetId]);
      if (!p) return null;
      const refunded = Number(p.refunded);
      await refund(tx, p, refunded, now);
      return { refunded };
    });
  }

  async markPosted(packetId: string, messageId: string): Promise<void> {
    await this.db.run('UPDATE red_packets SET message_id = ? WHERE id = ? AND message_id IS NULL', [messageId, packetId]);
  }

  async markStatusPosted(packetIds: string[]): Promise<void> {
    if (packetIds.length === 0) return;
    const ids = this.db.textList(packetIds);
    await this.db.run(`UPDATE red_packets SET status_posted = 1 WHERE id IN ${ids.sql}`, [ids.param]);
  }

  async duePackets(now: number, unpostedBefore: number, limit: number): Promise<PacketRecord[]> {
    const seen = new Map<string, PacketRecord>();
    const rows = [
      ...(await this.db.all<PacketRow>("SELECT * FROM red_packets WHERE status = 'active' AND expires_at <= ? ORDER BY expires_at LIMIT ?", [now, limit])),
      ...(await this.db.all<PacketRow>("SELECT * FROM red_packets WHERE message_id IS NULL AND created_at < ? AND status = 'active' ORDER BY created_at LIMIT ?", [unpostedBefore, limit])),
      ...(await this.db.all<PacketRow>("SELECT * FROM red_packets WHERE status_posted = 0 AND status <> 'active' ORDER BY ended_at LIMIT ?", [limit])),
    ];
    for (const row of rows) if (!seen.has(row.id)) seen.set(row.id, packetFromRow(row));
    return [...seen.values()];
  }

  async reconcile(now: number): Promise<ReconcileReport> {
    // One read-only snapshot: consistent even while the server keeps writing.
    const raw = await this.db.transaction(
      async (tx): Promise<ReconcileRaw> => {
        const all = async (q: string, params: unknown[] = []) => (await tx.all(q, params)).map((r) => numericRow(r, ['tx_id', 'account', 'packet', 'id', 'status']));
        const [unbalanced] = await all(RECONCILE_SQL.unbalancedTxCount);
        const [totals] = await all(RECONCILE_SQL.totals);
        const [overdue] = await all(RECONCILE_SQL.overdue('?'), [now - OVERDUE_GRACE_MS]);
        return {
          at: now,
          unbalancedTxCount: Number(unbalanced!.n),
          unbalancedTx: (await all(RECONCILE_SQL.unbalancedTx)) as ReconcileRaw['unbalancedTx'],
          accountMismatch: (await all(RECONCILE_SQL.accountMismatch)) as ReconcileRaw['accountMismatch'],
          escrowMismatch: (await all(RECONCILE_SQL.escrowMismatch)) as ReconcileRaw['escrowMismatch'],
          totals: totals as ReconcileRaw['totals'],
          packetMismatch: await all(RECONCILE_SQL.packetMismatch),
          overdue: Number(overdue!.n),
        };
      },
      { readOnly: true },
    );
    return buildReport(raw);
  }
}

async function balanceOf(q: Queryable, account: string): Promise<number> {
  return Number((await q.get<{ balance: number | string }>(BALANCE, [account]))?.balance ?? 0);
}

/** Credit (or, negative, debit without a floor) an account; its new balance. */
async function credit(tx: Queryable, account: string, amount: number, at: number): Promise<number> {
  return Number((await tx.get<{ balance: number | string }>(CREDIT, [account, amount, at]))!.balance);
}

/** One ledger transaction of two entries that sum to zero. */
async function move(tx: Queryable, txId: string, from: string, to: string, amount: number, kind: LedgerKind, ref: string, at: number): Promise<void> {
  await tx.run(ENTRY_PAIR, [txId, from, -amount, kind, ref, at, txId, to, amount, kind, ref, at]);
}

async function refund(tx: Queryable, p: PacketRow, amount: number, now: number): Promise<void> {
  if (amount <= 0) return;
  const acct = userAccount(p.sender_id);
  await move(tx, `r:${p.id}`, escrowAccount(p.id), acct, amount, 'rp_refund', p.id, now);
  await credit(tx, acct, amount, now);
}
