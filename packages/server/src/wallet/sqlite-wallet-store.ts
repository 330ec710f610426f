import Database from 'better-sqlite3';
import { openSqlite, type SqliteHandle } from '../store/sqlite-connection.ts';
import type { RedPacketClaim } from '@magpie/protocol';
import { cryptoUniform, nextShare, type UniformSource } from './split.ts';
import { buildReport, numericRow, type ReconcileRaw } from './reconcile.ts';
import { RECONCILE_SQL, WALLET_SCHEMA_SQLITE } from './wallet-schema.ts';
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

export interface SqliteWalletStoreOptions {
  /** The server's database file (join(config.dataDir, 'magpie.db')), or ':memory:'. */
  path: string;
  synchronous?: 'full' | 'normal';
  /** Source of U for the split; the OS CSPRNG by default. */
  uniform?: UniformSource;
}

export interface PacketRow {
  id: string;
  client_id: string;
  conv_id: string;
  sender_id: string;
  split: 'random' | 'fixed';
  total: number;
  count: number;
  greeting: string;
  exclusive_to: string | null;
  created_at: number;
  expires_at: number;
  status: 'active' | 'finished' | 'expired';
  remaining_amount: number;
  remaining_count: number;
  refunded: number;
  message_id: string | null;
  status_posted: number;
  ended_at: number | null;
}

export function packetFromRow(r: PacketRow): PacketRecord {
  return {
    id: r.id,
    clientId: r.client_id,
    conv: r.conv_id,
    sender: r.sender_id,
    split: r.split,
    total: Number(r.total),
    count: Number(r.count),
    greeting: r.greeting,
    exclusiveTo: r.exclusive_to,
    createdAt: Number(r.created_at),
    expiresAt: Number(r.expires_at),
    status: r.status,
    remainingAmount: Number(r.remaining_amount),
    remainingCount: Number(r.remaining_count),
    refunded: Number(r.refunded),
    messageId: r.message_id,
    statusPosted: Number(r.status_posted) === 1,
    endedAt: r.ended_at === null ? null : Number(r.ended_at),
  };
}

export interface ClaimRow {
  user_id: string;
  amount: number;
  seq: number;
  at: number;
}
export const claimFromRow = (r: ClaimRow): RedPacketClaim => ({ user: r.user_id, amount: Number(r.amount), seq: Number(r.seq), at: Number(r.at) });

export interface EntryRow {
  id: number;
  tx_id: string;
  account: string;
  amount: number;
  kind: LedgerKind;
  ref: string;
  at: number;
}
export const entryFromRow = (r: EntryRow): LedgerEntry => ({
  id: Number(r.id),
  txId: r.tx_id,
  account: r.account,
  amount: Number(r.amount),
  kind: r.kind,
  ref: r.ref,
  at: Number(r.at),
});

interface OpRow {
  reference: string;
  kind: 'topup' | 'withdraw';
  user_id: string;
  amount: number;
  status: 'done' | 'pending' | 'paid' | 'reversed';
}

/**
 * WalletStore on SQLite: the process's shared connection (store/sqlite-connection.ts) to the server's database
 * file. Every call is one synchronous IMMEDIATE transaction, so a batch of opens costs one
 * commit (one fsync with synchronous=FULL). Within the process nothing interleaves with a
 * transaction; other processes (the reconcile CLI) wait on the busy timeout.
 */
export class SqliteWalletStore implements WalletStore {
  readonly kind = 'sqlite' as const;
  private readonly handle: SqliteHandle;
  private readonly db: Database.Database;
  private readonly q: ReturnType<SqliteWalletStore['prepare']>;
  private readonly draw: UniformSource;

  constructor(opts: SqliteWalletStoreOptions) {
    this.handle = openSqlite(opts.path, { synchronous: opts.synchronous });
    this.db = this.handle.db;
    this.db.exec(WALLET_SCHEMA_SQLITE);
    this.draw = opts.uniform ?? cryptoUniform();
    this.q = this.prepare();
  }

  private prepare() {
    const db = this.db;
    return {
      balance: db.prepare<[string], { balance: number }>('SELECT balance FROM wallet_accounts WHERE id = ?'),
      credit: db.prepare<[string, number, number]>(
        `INSERT INTO wallet_accounts (id, balance, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET balance = balance + excluded.balance, updated_at = excluded.updated_at`,
      ),
      debit: db.prepare<[number, number, string, number]>('UPDATE wallet_accounts SET balance = balance - ?, updated_at = ? WHERE id = ? AND balance >= ?'),
      entryPair: db.prepare<[string, string, number, string, string, number, string, string, number, string, string, number]>(
        'INSERT INTO ledger_entries (tx_id, account, amount, kind, ref, at) VALUES (?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?)',
      ),
      entriesBefore: db.prepare<[string, number, number], EntryRow>('SELECT * FROM ledger_entries WHERE account = ? AND id < ? ORDER BY id DESC LIMIT ?'),
      op: db.prepare<[string], OpRow>('SELECT * FROM wallet_ops WHERE reference = ?'),
      insertOp: db.prepare<[string, string, string, number, string, number, number]>(
        'INSERT INTO wallet_ops (reference, kind, user_id, amount, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      setOpStatus: db.prepare<[string, number, string]>('UPDATE wallet_ops SET status = ?, updated_at = ? WHERE reference = ?'),
      packet: db.prepare<[string], PacketRow>('SELECT * FROM red_packets WHERE id = ?'),
      packetByClient: db.prepare<[string, string], PacketRow>('SELECT * FROM red_packets WHERE sender_id = ? AND client_id = ?'),
      insertPacket: db.prepare(
        `INSERT INTO red_packets (id, client_id, conv_id, sender_id, split, total, count, greeting, exclusive_to, created_at, expires_at, status, remaining_amount, remaining_count)
         VALUES (@id, @clientId, @conv, @sender, @split, @total, @count, @greeting, @exclusiveTo, @createdAt, @expiresAt, 'active', @total, @count)`,
      ),
      openState: db.prepare<[string], Pick<PacketRow, 'split' | 'count' | 'status' | 'expires_at' | 'remaining_amount' | 'remaining_count'>>(
        'SELECT split, count, status, expires_at, remaining_amount, remaining_count FROM red_packets WHERE id = ?',
      ),
      casOpen: db.prepare<[number, number, string, number | null, string, number, number]>(
        `UPDATE red_packets SET remaining_amount = ?, remaining_count = ?, status = ?, ended_at = ?
         WHERE id = ? AND status = 'active' AND remaining_amount = ? AND remaining_count = ?`,
      ),
      casExpire: db.prepare<[number, number, string, number, number, number]>(
        `UPDATE red_packets SET status = 'expired', refunded = ?, remaining_amount = 0, remaining_count = 0, ended_at = ?
         WHERE id = ? AND status = 'active' AND remaining_amount = ? AND remaining_count = ? AND expires_at <= ?`,
      ),
      casRefundUnposted: db.prepare<[number, number, string, number, number]>(
        `UPDATE red_packets SET status = 'expired', refunded = ?, remaining_amount = 0, remaining_count = 0, ended_at = ?
         WHERE id = ? AND status = 'active' AND message_id IS NULL AND remaining_amount = ? AND remaining_count = ?`,
      ),
      claim: db.prepare<[string, string], ClaimRow>('SELECT user_id, amount, seq, at FROM red_packet_claims WHERE packet_id = ? AND user_id = ?'),
      claims: db.prepare<[string], ClaimRow>('SELECT user_id, amount, seq, at FROM red_packet_claims WHERE packet_id = ? ORDER BY seq'),
      insertClaim: db.prepare<[string, string, number, number, number]>('INSERT INTO red_packet_claims (packet_id, user_id, amount, seq, at) VALUES (?, ?, ?, ?, ?)'),
      deleteClaim: db.prepare<[string, string]>('DELETE FROM red_packet_claims WHERE packet_id = ? AND user_id = ?'),
      markPosted: db.prepare<[string, string]>('UPDATE red_packets SET message_id = ? WHERE id = ? AND message_id IS NULL'),
      markStatusPosted: db.prepare<[string]>('UPDATE red_packets SET status_posted = 1 WHERE id = ?'),
      dueExpired: db.prepare<[number, number], PacketRow>(`SELECT * FROM red_packets WHERE status = 'active' AND expires_at <= ? ORDER BY expires_at LIMIT ?`),
      dueUnposted: db.prepare<[number, number], PacketRow>(`SELECT * FROM red_packets WHERE message_id IS NULL AND created_at < ? AND status = 'active' ORDER BY created_at LIMIT ?`),
      dueUnannounced: db.prepare<[number], PacketRow>(`SELECT * FROM red_packets WHERE status_posted = 0 AND status <> 'active' ORDER BY ended_at LIMIT ?`),
    };
  }

  private tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  async migrate(): Promise<void> {
    this.db.exec(WALLET_SCHEMA_SQLITE);
  }

  async close(): Promise<void> {
    await this.handle.release();
  }

  async balance(userId: string): Promise<number> {
    return Number(this.q.balance.get(userAccount(userId))?.balance ?? 0);
  }

  async entries(userId: string, q: { before?: number; limit: number }): Promise<LedgerEntry[]> {
    return this.q.entriesBefore.all(userAccount(userId), q.before ?? Number.MAX_SAFE_INTEGER, q.limit).map(entryFromRow);
  }

  private move(txId: string, from: string, to: string, amount: number, kind: LedgerKind, ref: string, at: number): void {
    this.q.entryPair.run(txId, from, -amount, kind, ref, at, txId, to, amount, kind, ref, at);
  }

  private opOutcome(op: OpRow, userId: string, amount: number, kind: 'topup' | 'withdraw'): GatewayOpOutcome {
    if (op.kind !== kind || op.user_id !== userId || Number(op.amount) !== amount) return { ok: false, error: 'reference_conflict' };
    return { ok: true, status: op.status, duplicate: true, balance: Number(this.q.balance.get(userAccount(userId))?.balance ?? 0), kind };
  }

  async topUp(op: GatewayOp): Promise<GatewayOpOutcome> {
    assertFen(op.amount);
    return this.tx(() => {
      const prior = this.q.op.get(op.reference);
      if (prior) return this.opOutcome(prior, op.userId, op.amount, 'topup');
      const acct = userAccount(op.userId);
      if (op.maxBalance !== undefined && Number(this.q.balance.get(acct)?.balance ?? 0) + op.amount > op.maxBalance) return { ok: false, error: 'balance_limit' };
      this.q.insertOp.run(op.reference, 'topup', op.userId, op.amount, 'done', op.now, op.now);
      this.move(`t:${op.reference}`, GATEWAY_ACCOUNT, acct, op.amount, 'topup', op.reference, op.now);
      this.q.credit.run(GATEWAY_ACCOUNT, -op.amount, op.now);
      this.q.credit.run(acct, op.amount, op.now);
      return { ok: true, status: 'done', duplicate: false, balance: Number(this.q.balance.get(acct)!.balance), kind: 'topup' };
    });
  }

  async withdraw(op: GatewayOp): Promise<GatewayOpOutcome> {
    assertFen(op.amount);
    return this.tx(() => {
      const prior = this.q.op.get(op.reference);
      if (prior) return this.opOutcome(prior, op.userId, op.amount, 'withdraw');
      const acct = userAccount(op.userId);
      if (this.q.debit.run(op.amount, op.now, acct, op.amount).changes !== 1) return { ok: false, error: 'insufficient_balance' };
      this.q.insertOp.run(op.reference, 'withdraw', op.userId, op.amount, 'pending', op.now, op.now);
      this.move(`w:${op.reference}`, acct, GATEWAY_ACCOUNT, op.amount, 'withdraw', op.reference, op.now);
      this.q.credit.run(GATEWAY_ACCOUNT, op.amount, op.now);
      return { ok: true, status: 'pending', duplicate: false, balance: Number(this.q.balance.get(acct)!.balance), kind: 'withdraw' };
    });
  }

  async settleWithdrawal(reference: string, result: 'paid' | 'reversed', now: number): Promise<GatewayOpOutcome> {
    return this.tx(() => {
      const op = this.q.op.get(reference);
      if (!op) return { ok: false, error: 'not_found' };
      if (op.kind !== 'withdraw') return { ok: false, error: 'reference_conflict' };
      const acct = userAccount(op.user_id);
      const amount = Number(op.amount);
      if (op.status !== 'pending') return { ok: false, error: 'already_settled', status: op.status as 'paid' | 'reversed' };
      if (result === 'reversed') {
        this.move(`wr:${reference}`, GATEWAY_ACCOUNT, acct, amount, 'withdraw_reversal', reference, now);
        this.q.credit.run(GATEWAY_ACCOUNT, -amount, now);
        this.q.credit.run(acct, amount, now);
      }
      this.q.setOpStatus.run(result, now, reference);
      return { ok: true, status: result, duplicate: false, balance: Number(this.q.balance.get(acct)?.balance ?? 0), kind: 'withdraw' };
    });
  }

  async createPacket(p: NewPacket): Promise<CreatePacketOutcome> {
    assertFen(p.total);
    return this.tx(() => {
      const prior = this.q.packetByClient.get(p.sender, p.clientId);
      if (prior) return { ok: true, packet: packetFromRow(prior), duplicate: true };
      const acct = userAccount(p.sender);
      if (this.q.debit.run(p.total, p.createdAt, acct, p.total).changes !== 1) return { ok: false, error: 'insufficient_balance' };
      this.q.insertPacket.run(p);
      this.move(`s:${p.id}`, acct, escrowAccount(p.id), p.total, 'rp_send', p.id, p.createdAt);
      return { ok: true, packet: packetFromRow(this.q.packet.get(p.id)!), duplicate: false };
    });
  }

  async getPacket(id: string): Promise<PacketRecord | null> {
    const row = this.q.packet.get(id);
    return row ? packetFromRow(row) : null;
  }

  async claims(packetId: string): Promise<RedPacketClaim[]> {
    return this.q.claims.all(packetId).map(claimFromRow);
  }

  async claimOf(packetId: string, userId: string): Promise<RedPacketClaim | null> {
    const row = this.q.claim.get(packetId, userId);
    return row ? claimFromRow(row) : null;
  }

  async open(batch: OpenRequest[]): Promise<OpenOutcome[]> {
    return this.tx(() => batch.map((r) => this.openOne(r)));
  }

  private openOne(r: OpenRequest): OpenOutcome {
    const q = this.q;
    // Compare-and-set loop: inside one SQLite transaction the first attempt always wins;
    // the loop keeps the code honest about the CAS it relies on.
    for (;;) {
      const p = q.openState.get(r.packetId);
      if (!p) return { ok: false, error: 'not_found' };
      if (p.status === 'finished' || (p.status === 'expired' || r.now >= p.expires_at) || p.remaining_count === 0) {
        const prior = q.claim.get(r.packetId, r.userId);
        if (prior) return { ok: false, error: 'already_opened', claim: claimFromRow(prior) };
        return { ok: false, error: p.status === 'finished' ? 'all_claimed' : p.status === 'expired' || r.now >= p.expires_at ? 'expired' : 'all_claimed' };
      }
      const amount = nextShare(p.split, p.remaining_amount, p.remaining_count, this.draw);
      if (r.maxBalance !== undefined && Number(q.balance.get(userAccount(r.userId))?.balance ?? 0) + amount > r.maxBalance) {
        const prior = q.claim.get(r.packetId, r.userId);
        if (prior) return { ok: false, error: 'already_opened', claim: claimFromRow(prior) };
        return { ok: false, error: 'balance_limit' };
      }
      const count = p.remaining_count - 1;
      const left = p.remaining_amount - amount;
      const finished = count === 0;
      const seq = p.count - count;
      // The claim first: its primary key (packet, user) refuses a second claim. A failed
      // INSERT aborts only that statement, so nothing else of this open has happened yet.
      try {
        q.insertClaim.run(r.packetId, r.userId, amount, seq, r.now);
      } catch (err) {
        if ((err as { code?: string }).code !== 'SQLITE_CONSTRAINT_PRIMARYKEY') throw err;
        return { ok: false, error: 'already_opened', claim: claimFromRow(q.claim.get(r.packetId, r.userId)!) };
      }
      const changed = q.casOpen.run(left, count, finished ? 'finished' : 'active', finished ? r.now : null, r.packetId, p.remaining_amount, p.remaining_count).changes;
      if (changed !== 1) {
        q.deleteClaim.run(r.packetId, r.userId);
        continue;
      }
      const acct = userAccount(r.userId);
      this.move(`c:${r.packetId}:${r.userId}`, escrowAccount(r.packetId), acct, amount, 'rp_claim', r.packetId, r.now);
      q.credit.run(acct, amount, r.now);
      return { ok: true, claim: { user: r.userId, amount, seq, at: r.now }, remainingCount: count, remainingAmount: left, finished };
    }
  }

  async expire(packetId: string, now: number): Promise<{ refunded: number; claimedCount: number } | null> {
    return this.tx(() => {
      const p = this.q.packet.get(packetId);
      if (!p || p.status !== 'active' || p.expires_at > now) return null;
      if (this.q.casExpire.run(p.remaining_amount, now, packetId, p.remaining_amount, p.remaining_count, now).changes !== 1) return null;
      this.refund(p, now);
      return { refunded: p.remaining_amount, claimedCount: p.count - p.remaining_count };
    });
  }

  async refundUnposted(packetId: string, now: number): Promise<{ refunded: number } | null> {
    return this.tx(() => {
      const p = this.q.packet.get(packetId);
      if (!p || p.status !== 'active' || p.message_id !== null) return null;
      if (this.q.casRefundUnposted.run(p.remaining_amount, now, packetId, p.remaining_amount, p.remaining_count).changes !== 1) return null;
      this.refund(p, now);
      return { refunded: p.remaining_amount };
    });
  }

  private refund(p: PacketRow, now: number): void {
    if (p.remaining_amount <= 0) return;
    const acct = userAccount(p.sender_id);
    this.move(`r:${p.id}`, escrowAccount(p.id), acct, p.remaining_amount, 'rp_refund', p.id, now);
    this.q.credit.run(acct, p.remaining_amount, now);
  }

  async markPosted(packetId: string, messageId: string): Promise<void> {
    this.q.markPosted.run(messageId, packetId);
  }

  async markStatusPosted(packetIds: string[]): Promise<void> {
    if (packetIds.length === 0) return;
    this.tx(() => {
      for (const id of packetIds) this.q.markStatusPosted.run(id);
    });
  }

  async duePackets(now: number, unpostedBefore: number, limit: number): Promise<PacketRecord[]> {
    const seen = new Map<string, PacketRecord>();
    for (const row of [...this.q.dueExpired.all(now, limit), ...this.q.dueUnposted.all(unpostedBefore, limit), ...this.q.dueUnannounced.all(limit)]) {
      if (!seen.has(row.id)) seen.set(row.id, packetFromRow(row));
    }
    return [...seen.values()];
  }

  async reconcile(now: number): Promise<ReconcileReport> {
    // One read transaction: a consistent snapshot even while the server keeps writing.
    const raw = this.db.transaction((): ReconcileRaw => {
      const all = (sql: string, ...params: unknown[]) => (this.db.prepare(sql).all(...params) as Record<string, unknown>[]).map((r) => numericRow(r, ['tx_id', 'account', 'packet', 'id', 'status']));
      return {
        at: now,
        unbalancedTxCount: Number((this.db.prepare(RECONCILE_SQL.unbalancedTxCount).get() as { n: number }).n),
        unbalancedTx: all(RECONCILE_SQL.unbalancedTx) as ReconcileRaw['unbalancedTx'],
        accountMismatch: all(RECONCILE_SQL.accountMismatch) as ReconcileRaw['accountMismatch'],
        escrowMismatch: all(RECONCILE_SQL.escrowMismatch) as ReconcileRaw['escrowMismatch'],
        totals: all(RECONCILE_SQL.totals)[0] as ReconcileRaw['totals'],
        packetMismatch: all(RECONCILE_SQL.packetMismatch),
        overdue: Number((this.db.prepare(RECONCILE_SQL.overdue('?')).get(now - OVERDUE_GRACE_MS) as { n: number }).n),
      };
    }).deferred();
    return buildReport(raw);
  }
}

export function assertFen(amount: number): void {
  if (!Number.isSafeInteger(amount) || amount <= 0) throw new RangeError(`amount must be a positive integer of fen, got ${amount}`);
}
