import type { RedPacketClaim } from '@magpie/protocol';
import type { LedgerEntry, LedgerKind, PacketRecord } from './wallet-store.ts';

/** Rows of the wallet tables and their mapping. BIGINT columns come back as strings from PostgreSQL: Number() them. */

export interface PacketRow {
  id: string;
  client_id: string;
  conv_id: string;
  sender_id: string;
  split: 'random' | 'fixed';
  total: number | string;
  count: number | string;
  greeting: string;
  exclusive_to: string | null;
  created_at: number | string;
  expires_at: number | string;
  status: 'active' | 'finished' | 'expired';
  remaining_amount: number | string;
  remaining_count: number | string;
  refunded: number | string;
  message_id: string | null;
  status_posted: number | string;
  ended_at: number | string | null;
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
  amount: number | string;
  seq: number | string;
  at: number | string;
}
export const claimFromRow = (r: ClaimRow): RedPacketClaim => ({ user: r.user_id, amount: Number(r.amount), seq: Number(r.seq), at: Number(r.at) });

export interface EntryRow {
  id: number | string;
  tx_id: string;
  account: string;
  amount: number | string;
  kind: LedgerKind;
  ref: string;
  at: number | string;
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

export interface OpRow {
  reference: string;
  kind: 'topup' | 'withdraw';
  user_id: string;
  amount: number | string;
  status: 'done' | 'pending' | 'paid' | 'reversed';
}

export function assertFen(amount: number): void {
  if (!Number.isSafeInteger(amount) || amount <= 0) throw new RangeError(`amount must be a positive integer of fen, got ${amount}`);
}
