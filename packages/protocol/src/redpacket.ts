import { z } from 'zod';
import { registerMessageKind, serverOnlyKinds } from './kinds.ts';

/**
 * Red packets on the wire. Amounts are integers in fen (1/100 yuan), never floats.
 *
 * A `redpacket` message is the announcement a sender's client shows in the conversation; it
 * is a pointer, not the authority. The packet's state (claims, remaining shares, status)
 * lives behind `GET /api/redpackets/:id`, which answers members of the packet's conversation
 * only. A client renders a packet from that resource and shows it only when the resource's
 * `conv` and `sender` match the message's, so a hand-made `redpacket` message cannot pass
 * for someone else's packet.
 *
 * `redpacket.status` is posted once per packet when it ends: all claimed, or expired and
 * refunded. It updates the packet for everyone in the conversation.
 */

export const RED_PACKET_SPLITS = ['random', 'fixed'] as const;
export type RedPacketSplit = (typeof RED_PACKET_SPLITS)[number];

export const RED_PACKET_STATUSES = ['active', 'finished', 'expired'] as const;
export type RedPacketStatus = (typeof RED_PACKET_STATUSES)[number];

const Fen = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

export const RedPacketBody = z.strictObject({
  packetId: z.string().min(1).max(64),
  split: z.enum(RED_PACKET_SPLITS),
  /** Number of shares. */
  count: z.number().int().min(1),
  /** Total in fen (for a fixed split: count × per-share amount). */
  total: Fen,
  greeting: z.string().max(200),
  /** When set, only this user may open the packet. */
  exclusiveTo: z.string().min(1).max(64).nullable(),
  expiresAt: z.number().int(),
});
export type RedPacketBody = z.infer<typeof RedPacketBody>;

export const RedPacketStatusBody = z.strictObject({
  packetId: z.string().min(1).max(64),
  status: z.enum(['finished', 'expired']),
  claimedCount: z.number().int().min(0),
  claimedAmount: z.number().int().min(0),
  /** Returned to the sender at expiry (0 when all was claimed). */
  refunded: z.number().int().min(0),
  /** Largest claim, ties to the earliest; null unless every share was claimed. */
  bestLuck: z.strictObject({ user: z.string(), amount: Fen }).nullable(),
});
export type RedPacketStatusBody = z.infer<typeof RedPacketStatusBody>;

registerMessageKind('redpacket', RedPacketBody);
registerMessageKind('redpacket.status', RedPacketStatusBody);
// Only the server posts these (for POST /api/redpackets and at a packet's end).
serverOnlyKinds.add('redpacket');
serverOnlyKinds.add('redpacket.status');

/** One claim of a packet, as members see it. */
export interface RedPacketClaim {
  user: string;
  amount: number;
  /** 1 for the first claim, 2 for the second, … (commit order). */
  seq: number;
  at: number;
}

/** A packet as `GET /api/redpackets/:id` shows it. */
export interface RedPacketView {
  id: string;
  conv: string;
  sender: string;
  split: RedPacketSplit;
  total: number;
  count: number;
  greeting: string;
  exclusiveTo: string | null;
  createdAt: number;
  expiresAt: number;
  status: RedPacketStatus;
  remainingCount: number;
  remainingAmount: number;
  /** Returned to the sender at expiry. */
  refunded: number;
  /** Id of the `redpacket` message announcing it (null until it is posted). */
  messageId: string | null;
}

/**
 * Answer to a grab. `admitted`: go ahead and open (the hold lasts until `holdUntil`).
 * `busy`: every share left is still held by someone who grabbed first after the server waited
 * briefly for them to settle; retry after `retryAfterMs` (holds that are not opened lapse, and
 * their places go first to those told `busy`). `all_claimed`, `expired`: the packet is over.
 * `opened`: this user already has a claim (`amount`).
 */
export type GrabResult =
  | { result: 'admitted'; holdUntil: number }
  | { result: 'busy'; retryAfterMs: number }
  | { result: 'all_claimed' }
  | { result: 'expired' }
  | { result: 'opened'; amount: number };

/**
 * Answer to an open. `claimed`: the money is in the wallet (credited in the same
 * transaction as the claim). `all_claimed`: grabbed, but the last share went to someone
 * else first — a normal outcome. `busy`: as for a grab.
 * Refusals (second open, expired, not a member) are errors, not results.
 */
export type OpenResult =
  | { result: 'claimed'; amount: number; seq: number; remainingCount: number }
  | { result: 'all_claimed' }
  | { result: 'busy'; retryAfterMs: number };
