import postgres from 'postgres';
import type { RedPacketClaim } from '@magpie/protocol';
import { cryptoUniform, nextShare, type UniformSource } from './split.ts';
import { buildReport, numericRow, type ReconcileRaw } from './reconcile.ts';
import { RECONCILE_SQL, WALLET_SCHEMA_POSTGRES } from './wallet-schema.ts';
import { assertFen, claimFromRow, entryFromRow, packetFromRow, type ClaimRow, type EntryRow, type PacketRow } from './sqlite-wallet-store.ts';
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

export interface PostgresWalletStoreOptions {
  url: string;
  /** Schema to use (created by `migrate`); the connection's search_path. Default: the server's default. */
  schema?: string;
  /** Pool size. */
  max?: number;
  /** Seconds an idle connection stays open (0: forever). Default 30. */
  idleTimeoutS?: number;
  uniform?: UniformSource;
}

type Sql = postgres.Sql;
type Tx = postgres.TransactionSql;

interface OpRow {
  reference: string;
  kind: 'topup' | 'withdraw';
  user_id: string;
  amount: number;
  status: 'done' | 'pending' | 'paid' | 'reversed';
}

/** Thrown inside a transaction to roll it back and run it again. */
class RetryTransaction extends Error {}

const RETRYABLE = new Set(['40P01', '40001']); // deadlock detected, serialization failure
const MAX_ATTEMPTS = 8;

/**
 * WalletStore on PostgreSQL (postgres.js). Each call is one READ COMMITTED transaction; a
 * batch of opens is one transaction. Opens are compare-and-set updates of the packet row
 * (`WHERE remaining_amount = $seen AND remaining_count = $seen`): a concurrent open from
 * another node that committed first makes the update match no row, and the open re-reads
 * and tries again. A unique key on (packet, user) makes a second claim impossible even when
 * two nodes race for the same user; the loser's transaction is rolled back and rerun, and
 * then answers `already_opened`. Deadlocks between nodes' batches are retried the same way.
 */
export class PostgresWalletStore implements WalletStore {
  readonly kind = 'postgres' as const;
  private readonly sql: Sql;
  private readonly draw: UniformSource;
  private readonly schema: string | undefined;

  constructor(opts: PostgresWalletStoreOptions) {
    if (opts.schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(opts.schema)) throw new Error(`bad schema name: ${opts.schema}`);
    this.schema = opts.schema;
    this.sql = postgres(opts.url, {
      max: opts.max ?? 10,
      // Idle connections are closed (the pool reopens on demand): a quiet node holds few.
      idle_timeout: opts.idleTimeoutS ?? 30,
      onnotice: () => {},
      ...(opts.schema ? { connection: { search_path: opts.schema } } : {}),
      types: {
        bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) },
        numeric: { to: 1700, from: [1700], serialize: (x: number) => String(x), parse: (x: string) => Number(x) },
      },
    });
    this.draw = opts.uniform ?? cryptoUniform();
  }

  async migrate(): Promise<void> {
    await this.sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(hashtext('magpie_wallet_migrate'))`;
      if (this.schema) await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
      await tx.unsafe(WALLET_SCHEMA_POSTGRES);
    });
  }

  async close(): Promise<void> {
    await this.sql.end({ timeout: 5 });
  }

  /** Run `fn` in a transaction, again when it deadlocks, fails to serialize or asks for a retry. */
  private async tx<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await this.sql.begin(fn)) as T;
      } catch (err) {
        const code = (err as { code?: string }).code;
        const again = err instanceof RetryTransaction || (code !== undefined && RETRYABLE.has(code));
        if (!again || attempt >= MAX_ATTEMPTS) throw err;
        await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
      }
    }
  }

  async balance(userId: string): Promise<number> {
    const [row] = await this.sql<{ balance: number }[]>`SELECT balance FROM wallet_accounts WHERE id = ${userAccount(userId)}`;
    return row ? Number(row.balance) : 0;
  }

  async entries(userId: string, q: { before?: number; limit: number }): Promise<LedgerEntry[]> {
    const rows = await this.sql<EntryRow[]>`
      SELECT * FROM ledger_entries WHERE account = ${userAccount(userId)} AND id < ${q.before ?? Number.MAX_SAFE_INTEGER}
      ORDER BY id DESC LIMIT ${q.limit}`;
    return rows.map(entryFromRow);
  }

  private async move(tx: Tx, txId: string, from: string, to: string, amount: number, kind: LedgerKind, ref: string, at: number): Promise<void> {
    await tx`INSERT INTO ledger_entries (tx_id, account, amount, kind, ref, at)
      VALUES (${txId}, ${from}, ${-amount}, ${kind}, ${ref}, ${at}), (${txId}, ${to}, ${amount}, ${kind}, ${ref}, ${at})`;
  }

  private async credit(tx: Tx, account: string, amount: number, at: number): Promise<number> {
    const [row] = await tx<{ balance: number }[]>`
      INSERT INTO wallet_accounts (id, balance, updated_at) VALUES (${account}, ${amount}, ${at})
      ON CONFLICT (id) DO UPDATE SET balance = wallet_accounts.balance + excluded.balance, updated_at = excluded.updated_at
      RETURNING balance`;
    return Number(row!.balance);
  }

  /** Compare-and-set debit; the new balance, or null when the balance is too low. */
  private async debit(tx: Tx, account: string, amount: number, at: number): Promise<number | null> {
    const [row] = await tx<{ balance: number }[]>`
      UPDATE wallet_accounts SET balance = balance - ${amount}, updated_at = ${at}
      WHERE id = ${account} AND balance >= ${amount} RETURNING balance`;
    return row ? Number(row.balance) : null;
  }

  private async opOutcome(tx: Tx, op: OpRow, userId: string, amount: number, kind: 'topup' | 'withdraw'): Promise<GatewayOpOutcome> {
    if (op.kind !== kind || op.user_id !== userId || Number(op.amount) !== amount) return { ok: false, error: 'reference_conflict' };
    const [row] = await tx<{ balance: number }[]>`SELECT balance FROM wallet_accounts WHERE id = ${userAccount(userId)}`;
    return { ok: true, status: op.status, duplicate: true, balance: Number(row?.balance ?? 0), kind };
  }

  async topUp(op: GatewayOp): Promise<GatewayOpOutcome> {
    assertFen(op.amount);
    return this.tx(async (tx): Promise<GatewayOpOutcome> => {
      const inserted = await tx`
        INSERT INTO wallet_ops (reference, kind, user_id, amount, status, created_at, updated_at)
        VALUES (${op.reference}, 'topup', ${op.userId}, ${op.amount}, 'done', ${op.now}, ${op.now})
        ON CONFLICT (reference) DO NOTHING RETURNING 1`;
      if (inserted.count === 0) {
        const [prior] = await tx<OpRow[]>`SELECT * FROM wallet_ops WHERE reference = ${op.reference}`;
        return this.opOutcome(tx, prior!, op.userId, op.amount, 'topup');
      }
      const acct = userAccount(op.userId);
      if (op.maxBalance !== undefined) {
        // Lock the account row (when it exists) so concurrent top-ups cannot pass the cap together.
        const [row] = await tx<{ balance: number }[]>`SELECT balance FROM wallet_accounts WHERE id = ${acct} FOR UPDATE`;
        if (Number(row?.balance ?? 0) + op.amount > op.maxBalance) {
          await tx`DELETE FROM wallet_ops WHERE reference = ${op.reference}`;
          return { ok: false, error: 'balance_limit' };
        }
      }
      await this.move(tx, `t:${op.reference}`, GATEWAY_ACCOUNT, acct, op.amount, 'topup', op.reference, op.now);
      await this.credit(tx, GATEWAY_ACCOUNT, -op.amount, op.now);
      const balance = await this.credit(tx, acct, op.amount, op.now);
      return { ok: true, status: 'done', duplicate: false, balance, kind: 'topup' };
    });
  }

  async withdraw(op: GatewayOp): Promise<GatewayOpOutcome> {
    assertFen(op.amount);
    return this.tx(async (tx): Promise<GatewayOpOutcome> => {
      const inserted = await tx`
        INSERT INTO wallet_ops (reference, kind, user_id, amount, status, created_at, updated_at)
        VALUES (${op.reference}, 'withdraw', ${op.userId}, ${op.amount}, 'pending', ${op.now}, ${op.now})
        ON CONFLICT (reference) DO NOTHING RETURNING 1`;
      if (inserted.count === 0) {
        const [prior] = await tx<OpRow[]>`SELECT * FROM wallet_ops WHERE reference = ${op.reference}`;
        return this.opOutcome(tx, prior!, op.userId, op.amount, 'withdraw');
      }
      const acct = userAccount(op.userId);
      const balance = await this.debit(tx, acct, op.amount, op.now);
      if (balance === null) {
        // Undo the op row: nothing of a refused withdrawal is stored.
        await tx`DELETE FROM wallet_ops WHERE reference = ${op.reference}`;
        return { ok: false, error: 'insufficient_balance' };
      }
      await this.move(tx, `w:${op.reference}`, acct, GATEWAY_ACCOUNT, op.amount, 'withdraw', op.reference, op.now);
      await this.credit(tx, GATEWAY_ACCOUNT, op.amount, op.now);
      return { ok: true, status: 'pending', duplicate: false, balance, kind: 'withdraw' };
    });
  }

  async settleWithdrawal(reference: string, result: 'paid' | 'reversed', now: number): Promise<GatewayOpOutcome> {
    return this.tx(async (tx): Promise<GatewayOpOutcome> => {
      const [op] = await tx<OpRow[]>`SELECT * FROM wallet_ops WHERE reference = ${reference} FOR UPDATE`;
      if (!op) return { ok: false, error: 'not_found' };
      if (op.kind !== 'withdraw') return { ok: false, error: 'reference_conflict' };
      const acct = userAccount(op.user_id);
      const amount = Number(op.amount);
      if (op.status !== 'pending') return { ok: false, error: 'already_settled', status: op.status as 'paid' | 'reversed' };
      if (result === 'reversed') {
        await this.move(tx, `wr:${reference}`, GATEWAY_ACCOUNT, acct, amount, 'withdraw_reversal', reference, now);
        await this.credit(tx, GATEWAY_ACCOUNT, -amount, now);
        await this.credit(tx, acct, amount, now);
      }
      await tx`UPDATE wallet_ops SET status = ${result}, updated_at = ${now} WHERE reference = ${reference}`;
      const [row] = await tx<{ balance: number }[]>`SELECT balance FROM wallet_accounts WHERE id = ${acct}`;
      return { ok: true, status: result, duplicate: false, balance: Number(row?.balance ?? 0), kind: 'withdraw' };
    });
  }

  async createPacket(p: NewPacket): Promise<CreatePacketOutcome> {
    assertFen(p.total);
    return this.tx(async (tx): Promise<CreatePacketOutcome> => {
      const inserted = await tx<PacketRow[]>`
        INSERT INTO red_packets (id, client_id, conv_id, sender_id, split, total, count, greeting, exclusive_to, created_at, expires_at, status, remaining_amount, remaining_count)
        VALUES (${p.id}, ${p.clientId}, ${p.conv}, ${p.sender}, ${p.split}, ${p.total}, ${p.count}, ${p.greeting}, ${p.exclusiveTo}, ${p.createdAt}, ${p.expiresAt}, 'active', ${p.total}, ${p.count})
        ON CONFLICT (sender_id, client_id) DO NOTHING RETURNING *`;
      if (inserted.length === 0) {
        const [prior] = await tx<PacketRow[]>`SELECT * FROM red_packets WHERE sender_id = ${p.sender} AND client_id = ${p.clientId}`;
        if (!prior) throw new RetryTransaction();
        return { ok: true, packet: packetFromRow(prior), duplicate: true };
      }
      const acct = userAccount(p.sender);
      if ((await this.debit(tx, acct, p.total, p.createdAt)) === null) {
        await tx`DELETE FROM red_packets WHERE id = ${p.id}`;
        return { ok: false, error: 'insufficient_balance' };
      }
      await this.move(tx, `s:${p.id}`, acct, escrowAccount(p.id), p.total, 'rp_send', p.id, p.createdAt);
      return { ok: true, packet: packetFromRow(inserted[0]!), duplicate: false };
    });
  }

  async getPacket(id: string): Promise<PacketRecord | null> {
    const [row] = await this.sql<PacketRow[]>`SELECT * FROM red_packets WHERE id = ${id}`;
    return row ? packetFromRow(row) : null;
  }

  async claims(packetId: string): Promise<RedPacketClaim[]> {
    const rows = await this.sql<ClaimRow[]>`SELECT user_id, amount, seq, at FROM red_packet_claims WHERE packet_id = ${packetId} ORDER BY seq`;
    return rows.map(claimFromRow);
  }

  async claimOf(packetId: string, userId: string): Promise<RedPacketClaim | null> {
    const [row] = await this.sql<ClaimRow[]>`SELECT user_id, amount, seq, at FROM red_packet_claims WHERE packet_id = ${packetId} AND user_id = ${userId}`;
    return row ? claimFromRow(row) : null;
  }

  async open(batch: OpenRequest[]): Promise<OpenOutcome[]> {
    return this.tx(async (tx) => {
      const out: OpenOutcome[] = [];
      for (const r of batch) out.push(await this.openOne(tx, r));
      return out;
    });
  }

  /** Two round trips per open: one read (packet + this user's claim), one write statement. */
  private async openOne(tx: Tx, r: OpenRequest): Promise<OpenOutcome> {
    for (let attempt = 0; ; attempt++) {
      if (attempt > 1000) throw new RetryTransaction();
      const [p] = await tx<(Pick<PacketRow, 'split' | 'count' | 'status' | 'expires_at' | 'remaining_amount' | 'remaining_count'> & { c_amount: number | null; c_seq: number | null; c_at: number | null; balance: number | null })[]>`
        SELECT p.split, p.count, p.status, p.expires_at, p.remaining_amount, p.remaining_count, c.amount AS c_amount, c.seq AS c_seq, c.at AS c_at, w.balance
        FROM red_packets p LEFT JOIN red_packet_claims c ON c.packet_id = p.id AND c.user_id = ${r.userId}
        LEFT JOIN wallet_accounts w ON w.id = ${userAccount(r.userId)}
        WHERE p.id = ${r.packetId}`;
      if (!p) return { ok: false, error: 'not_found' };
      if (p.c_amount !== null) return { ok: false, error: 'already_opened', claim: { user: r.userId, amount: Number(p.c_amount), seq: Number(p.c_seq), at: Number(p.c_at) } };
      if (p.status === 'finished') return { ok: false, error: 'all_claimed' };
      if (p.status === 'expired' || r.now >= Number(p.expires_at)) return { ok: false, error: 'expired' };
      if (p.remaining_count === 0) return { ok: false, error: 'all_claimed' };
      const amount = nextShare(p.split, p.remaining_amount, p.remaining_count, this.draw);
      // Read with the packet (READ COMMITTED): a concurrent credit can pass the cap by one claim at most.
      if (r.maxBalance !== undefined && Number(p.balance ?? 0) + amount > r.maxBalance) return { ok: false, error: 'balance_limit' };
      const count = p.remaining_count - 1;
      const left = p.remaining_amount - amount;
      const finished = count === 0;
      const seq = p.count - count;
      const acct = userAccount(r.userId);
      const txId = `c:${r.packetId}:${r.userId}`;
      // The CAS (matches only while nobody else has claimed since our read), then — only if
      // it matched — the claim, both ledger entries and the credit, in one statement.
      const [w] = await tx<{ updated: number; claimed: number }[]>`
        WITH u AS (
          UPDATE red_packets SET remaining_amount = ${left}, remaining_count = ${count},
            status = ${finished ? 'finished' : 'active'}, ended_at = ${finished ? r.now : null}
          WHERE id = ${r.packetId} AND status = 'active' AND remaining_amount = ${p.remaining_amount} AND remaining_count = ${p.remaining_count}
          RETURNING id
        ), c AS (
          INSERT INTO red_packet_claims (packet_id, user_id, amount, seq, at)
          SELECT id, ${r.userId}, ${amount}, ${seq}, ${r.now} FROM u
          ON CONFLICT (packet_id, user_id) DO NOTHING RETURNING packet_id
        ), e AS (
          INSERT INTO ledger_entries (tx_id, account, amount, kind, ref, at)
          SELECT ${txId}, v.account, v.amount, 'rp_claim', ${r.packetId}, ${r.now}
          FROM c, (VALUES (${escrowAccount(r.packetId)}::text, ${-amount}::bigint), (${acct}::text, ${amount}::bigint)) AS v(account, amount)
        ), a AS (
          INSERT INTO wallet_accounts (id, balance, updated_at) SELECT ${acct}, ${amount}, ${r.now} FROM c
          ON CONFLICT (id) DO UPDATE SET balance = wallet_accounts.balance + excluded.balance, updated_at = excluded.updated_at
        )
        SELECT (SELECT COUNT(*) FROM u)::bigint AS updated, (SELECT COUNT(*) FROM c)::bigint AS claimed`;
      if (Number(w!.updated) !== 1) continue;
      // Another node committed this user's claim after our read: roll back and rerun.
      if (Number(w!.claimed) !== 1) throw new RetryTransaction();
      return { ok: true, claim: { user: r.userId, amount, seq, at: r.now }, remainingCount: count, remainingAmount: left, finished };
    }
  }

  async expire(packetId: string, now: number): Promise<{ refunded: number; claimedCount: number } | null> {
    return this.tx(async (tx) => {
      const [p] = await tx<PacketRow[]>`
        UPDATE red_packets SET status = 'expired', refunded = remaining_amount, remaining_amount = 0, remaining_count = 0, ended_at = ${now}
        WHERE id = ${packetId} AND status = 'active' AND expires_at <= ${now}
        RETURNING *`;
      if (!p) return null;
      // RETURNING shows the new row; the refund is what it held before: `refunded`.
      const refunded = Number(p.refunded);
      await this.refund(tx, packetId, p.sender_id, refunded, now);
      const [c] = await tx<{ n: number }[]>`SELECT COUNT(*)::bigint AS n FROM red_packet_claims WHERE packet_id = ${packetId}`;
      return { refunded, claimedCount: Number(c!.n) };
    });
  }

  async refundUnposted(packetId: string, now: number): Promise<{ refunded: number } | null> {
    return this.tx(async (tx) => {
      const [p] = await tx<PacketRow[]>`
        UPDATE red_packets SET status = 'expired', refunded = remaining_amount, remaining_amount = 0, remaining_count = 0, ended_at = ${now}
        WHERE id = ${packetId} AND status = 'active' AND message_id IS NULL
        RETURNING *`;
      if (!p) return null;
      const refunded = Number(p.refunded);
      await this.refund(tx, packetId, p.sender_id, refunded, now);
      return { refunded };
    });
  }

  private async refund(tx: Tx, packetId: string, sender: string, amount: number, now: number): Promise<void> {
    if (amount <= 0) return;
    const acct = userAccount(sender);
    await this.move(tx, `r:${packetId}`, escrowAccount(packetId), acct, amount, 'rp_refund', packetId, now);
    await this.credit(tx, acct, amount, now);
  }

  async markPosted(packetId: string, messageId: string): Promise<void> {
    await this.sql`UPDATE red_packets SET message_id = ${messageId} WHERE id = ${packetId} AND message_id IS NULL`;
  }

  async markStatusPosted(packetIds: string[]): Promise<void> {
    if (packetIds.length === 0) return;
    await this.sql`UPDATE red_packets SET status_posted = 1 WHERE id = ANY(${packetIds}::text[])`;
  }

  async duePackets(now: number, unpostedBefore: number, limit: number): Promise<PacketRecord[]> {
    const rows = await this.sql<PacketRow[]>`
      (SELECT * FROM red_packets WHERE status = 'active' AND expires_at <= ${now} ORDER BY expires_at LIMIT ${limit})
      UNION
      (SELECT * FROM red_packets WHERE message_id IS NULL AND created_at < ${unpostedBefore} AND status = 'active' ORDER BY created_at LIMIT ${limit})
      UNION
      (SELECT * FROM red_packets WHERE status_posted = 0 AND status <> 'active' ORDER BY ended_at LIMIT ${limit})`;
    return rows.map(packetFromRow);
  }

  async reconcile(now: number): Promise<ReconcileReport> {
    const raw = await this.sql.begin('isolation level repeatable read read only', async (tx): Promise<ReconcileRaw> => {
      const all = async (q: string, params: (string | number)[] = []) =>
        ((await tx.unsafe(q, params)) as unknown as Record<string, unknown>[]).map((r) => numericRow({ ...r }, ['tx_id', 'account', 'packet', 'id', 'status']));
      const [unbalanced] = await all(RECONCILE_SQL.unbalancedTxCount);
      const [totals] = await all(RECONCILE_SQL.totals);
      const [overdue] = await all(RECONCILE_SQL.overdue('$1'), [now - OVERDUE_GRACE_MS]);
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
    });
    return buildReport(raw as ReconcileRaw);
  }
}
