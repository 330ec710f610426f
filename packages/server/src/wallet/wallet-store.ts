import type { RedPacketClaim, RedPacketSplit, RedPacketStatus } from '@magpie/protocol';

/**
 * WalletStore: the durable state of wallets and red packets, on a double-entry ledger.
 * One implementation, sql-wallet-store.ts, on the server's database (SQLite or PostgreSQL,
 * db/engine.ts); it passes test/wallet-store-contract.ts on both. It is separate from the
 * messaging `Store` on purpose: money has its own transactions and its own reconciliation.
 *
 * Accounts: `u:<userId>` (a user's wallet), `rp:<packetId>` (one packet's escrow) and
 * `gateway` (the outside world: top-ups come from it, withdrawals go to it).
 *
 * Guarantees every implementation gives:
 * - Amounts are integers in fen. Every movement is one ledger transaction of entries that
 *   sum to zero; a transaction is written completely or not at all.
 * - A resolved promise means the change is durable (on SQLite with synchronous=FULL,
 *   fsynced). A rejected promise means nothing of that call was stored.
 * - Cached balances (a user account's `balance`, a packet's `remainingAmount`) change in the
 *   same transaction as the entries, so each always equals the sum of its account's entries.
 * - A user balance never goes below zero: debits are compare-and-set on `balance >= amount`.
 * - `createPacket` debits the sender and credits the packet's escrow in one transaction, and
 *   is idempotent per (sender, clientId).
 * - `open` records the claim, decrements the packet's remaining amount and count with a
 *   compare-and-set, and moves the amount from escrow to the claimer — one transaction for
 *   the whole batch (group commit), each request answered on its own. One claim per
 *   (packet, user) is enforced by a unique key in the database. No open succeeds at or after
 *   `expiresAt` (measured with the request's `now`), and never more than `count` claims.
 * - `expire` refunds whatever is left in escrow to the sender with a compare-and-set on the
 *   packet's status, so it races safely with opens and with other nodes' sweepers.
 * - Gateway operations are idempotent per `reference`.
 * - Only the types of this file cross the boundary; no driver type leaks.
 */
export interface WalletStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Create tables and indexes if missing. Safe to call on every start. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  // --- wallets ---
  /** A user's balance in fen (0 for a user without a wallet yet). */
  balance(userId: string): Promise<number>;
  /** A user's ledger entries, newest first, with id below `before`. */
  entries(userId: string, q: { before?: number; limit: number }): Promise<LedgerEntry[]>;
  /**
   * Credit a user from the gateway. Idempotent per reference (a repeat returns the first
   * result; the same reference with another user, amount or kind is `reference_conflict`).
   * Refuses (`balance_limit`) without writing anything when the balance would pass `maxBalance`.
   */
  topUp(op: GatewayOp): Promise<GatewayOpOutcome>;
  /**
   * Debit a user to the gateway (status `pending` until `settleWithdrawal`).
   * Idempotent per reference. Refuses (`insufficient_balance`) without writing anything.
   */
  withdraw(op: GatewayOp): Promise<GatewayOpOutcome>;
  /**
   * Finish a pending withdrawal: `paid`, or `reversed` (the money goes back to the user).
   * A withdrawal that is settled already is refused with `already_settled` and its status.
   */
  settleWithdrawal(reference: string, result: 'paid' | 'reversed', now: number): Promise<GatewayOpOutcome>;

  // --- red packets ---
  createPacket(p: NewPacket): Promise<CreatePacketOutcome>;
  getPacket(id: string): Promise<PacketRecord | null>;
  /** Claims of a packet in claim order. */
  claims(packetId: string): Promise<RedPacketClaim[]>;
  /** The claim of one user, if any. */
  claimOf(packetId: string, userId: string): Promise<RedPacketClaim | null>;
  open(batch: OpenRequest[]): Promise<OpenOutcome[]>;
  /** Refund what is left of an active packet whose `expiresAt <= now`; null if it was not active and due. */
  expire(packetId: string, now: number): Promise<{ refunded: number; claimedCount: number } | null>;
  /**
   * Refund a packet whose announcement could not be posted (the whole remaining escrow,
   * status `expired`). Only while it is active and unposted; null otherwise.
   */
  refundUnposted(packetId: string, now: number): Promise<{ refunded: number } | null>;
  markPosted(packetId: string, messageId: string): Promise<void>;
  /** The status messages of these packets are posted (one transaction). */
  markStatusPosted(packetIds: string[]): Promise<void>;
  /**
   * Packets the sweeper must look at: active ones due at `now`, active ones unposted and
   * created before `unpostedBefore`, ended ones whose status message is not posted yet.
   */
  duePackets(now: number, unpostedBefore: number, limit: number): Promise<PacketRecord[]>;

  /** Prove from the ledger that money is neither created nor destroyed; see ReconcileReport. */
  reconcile(now: number): Promise<ReconcileReport>;
}

export interface LedgerEntry {
  id: number;
  txId: string;
  account: string;
  /** Signed fen: positive credits the account, negative debits it. */
  amount: number;
  kind: LedgerKind;
  /** Packet id or gateway reference. */
  ref: string;
  at: number;
}

export type LedgerKind = 'topup' | 'withdraw' | 'withdraw_reversal' | 'rp_send' | 'rp_claim' | 'rp_refund';

export interface GatewayOp {
  reference: string;
  userId: string;
  amount: number;
  now: number;
  /** Top-up: the balance may not pass this (fen). */
  maxBalance?: number;
}

export type GatewayOpOutcome =
  | { ok: true; status: 'done' | 'pending' | 'paid' | 'reversed'; duplicate: boolean; balance: number; kind: 'topup' | 'withdraw' }
  | { ok: false; error: 'insufficient_balance' | 'reference_conflict' | 'not_found' | 'balance_limit' }
  | { ok: false; error: 'already_settled'; status: 'paid' | 'reversed' };

export interface NewPacket {
  id: string;
  clientId: string;
  conv: string;
  sender: string;
  split: RedPacketSplit;
  total: number;
  count: number;
  greeting: string;
  exclusiveTo: string | null;
  createdAt: number;
  expiresAt: number;
}

export interface PacketRecord extends NewPacket {
  status: RedPacketStatus;
  remainingAmount: number;
  remainingCount: number;
  refunded: number;
  messageId: string | null;
  statusPosted: boolean;
  endedAt: number | null;
}

export type CreatePacketOutcome =
  | { ok: true; packet: PacketRecord; duplicate: boolean }
  | { ok: false; error: 'insufficient_balance' };

export interface OpenRequest {
  packetId: string;
  userId: string;
  now: number;
  /** The claimer's balance may not pass this (fen); the open is refused with `balance_limit`. */
  maxBalance?: number;
}

export type OpenOutcome =
  | { ok: true; claim: RedPacketClaim; remainingCount: number; remainingAmount: number; finished: boolean }
  | { ok: false; error: 'already_opened'; claim: RedPacketClaim }
  | { ok: false; error: 'all_claimed' | 'expired' | 'not_found' | 'balance_limit' };

export interface ReconcileCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/**
 * The reconciliation report. `ok` is true when every check passes:
 * - every ledger transaction sums to zero;
 * - every cached balance equals the sum of its account's entries (users, gateway, escrows);
 * - user balances + escrow = deposits − withdrawals (from entries and from cached balances);
 * - no user balance is negative;
 * - each packet: claims + refund + remaining = total, claims ≤ count, the claims table agrees
 *   with the ledger's claim entries, and an ended packet has nothing left in escrow;
 * - no active packet is past its expiry by more than the grace period (nothing stranded).
 */
export interface ReconcileReport {
  ok: boolean;
  at: number;
  totals: {
    deposits: number;
    withdrawals: number;
    userBalances: number;
    escrow: number;
    packets: number;
    activePackets: number;
    claims: number;
    entries: number;
  };
  checks: ReconcileCheck[];
}

/** Overdue: an active packet this long past its expiry counts as stranded in reconciliation. */
export const OVERDUE_GRACE_MS = 5 * 60_000;

export const GATEWAY_ACCOUNT = 'gateway';
export const userAccount = (userId: string): string => `u:${userId}`;
export const escrowAccount = (packetId: string): string => `rp:${packetId}`;
