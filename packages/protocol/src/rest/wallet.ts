import { z } from 'zod';
import { RED_PACKET_SPLITS, RED_PACKET_STATUSES } from '../redpacket.ts';
import { MessageSchema } from '../server-frames.ts';
import { safeText } from '../text.ts';
import { QuerySeq, Seq, queryLimit, restRoute } from './route.ts';

/** Wallets and red packets, the users' side (server: wallet/routes.ts). Amounts are integers in fen. */

const Fen = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const Id = z.string().min(1).max(64);
const PacketParams = z.strictObject({ id: z.string() });

export const RedPacketViewSchema = z.strictObject({
  id: z.string(),
  conv: z.string(),
  sender: z.string(),
  split: z.enum(RED_PACKET_SPLITS),
  total: Seq,
  count: Seq,
  greeting: z.string(),
  exclusiveTo: z.string().nullable(),
  createdAt: z.number().int(),
  expiresAt: z.number().int(),
  status: z.enum(RED_PACKET_STATUSES),
  remainingCount: Seq,
  remainingAmount: Seq,
  refunded: Seq,
  messageId: z.string().nullable(),
});
export const RedPacketClaimSchema = z.strictObject({ user: z.string(), amount: Seq, seq: Seq, at: z.number().int() });
export const LedgerEntrySchema = z.strictObject({
  id: z.number().int(),
  txId: z.string(),
  account: z.string(),
  amount: z.number().int(),
  kind: z.enum(['topup', 'withdraw', 'withdraw_reversal', 'rp_send', 'rp_claim', 'rp_refund']),
  ref: z.string(),
  at: z.number().int(),
});
const Busy = z.strictObject({ result: z.literal('busy'), retryAfterMs: Seq });
const AllClaimed = z.strictObject({ result: z.literal('all_claimed') });
const SendReply = z.strictObject({ packet: RedPacketViewSchema, message: MessageSchema.nullable(), duplicate: z.boolean() });

export const walletRoutes = {
  sendPacket: restRoute({
    method: 'POST',
    url: '/api/redpackets',
    summary: 'Send a red packet (201; 200 for a repeated clientMsgId)',
    auth: 'user',
    body: z
      .strictObject({
        clientMsgId: z.string().min(1).max(64),
        to: Id.optional(),
        conv: z.string().min(1).max(128).optional(),
        split: z.enum(RED_PACKET_SPLITS).default('random'),
        /** Random split: total in fen. */
        total: Fen.optional(),
        /** Fixed split: each share in fen. */
        amount: Fen.optional(),
        count: z.number().int().positive().max(1_000_000),
        greeting: safeText(100).optional(),
        exclusiveTo: Id.nullable().optional(),
        /** The payment PIN (rest/payments.ts); required while the server setting `payments.pinRequired` is on. */
        pin: z.string().regex(/^[0-9]{6}$/, 'a payment PIN is six digits').optional(),
      })
      .refine((b) => (b.to === undefined) !== (b.conv === undefined), { message: 'exactly one of `to` and `conv` is required' })
      .refine((b) => (b.split === 'fixed' ? b.amount !== undefined && b.total === undefined : b.total !== undefined && b.amount === undefined), {
        message: 'a random split takes `total`, a fixed split takes `amount`',
      }),
    reply: { 200: SendReply, 201: SendReply },
  }),
  packet: restRoute({
    method: 'GET',
    url: '/api/redpackets/:id',
    summary: 'A packet, its claims and best luck (members)',
    auth: 'user',
    params: PacketParams,
    reply: { 200: z.strictObject({ packet: RedPacketViewSchema, claims: z.array(RedPacketClaimSchema), bestLuck: RedPacketClaimSchema.nullable() }) },
  }),
  grab: restRoute({
    method: 'POST',
    url: '/api/redpackets/:id/grab',
    summary: 'Grab (the filter before open)',
    auth: 'user',
    params: PacketParams,
    reply: {
      200: z.discriminatedUnion('result', [
        z.strictObject({ result: z.literal('admitted'), holdUntil: z.number().int() }),
        Busy,
        AllClaimed,
        z.strictObject({ result: z.literal('expired') }),
        z.strictObject({ result: z.literal('opened'), amount: Seq }),
      ]),
    },
  }),
  open: restRoute({
    method: 'POST',
    url: '/api/redpackets/:id/open',
    summary: 'Open: claim a share and credit it',
    auth: 'user',
    params: PacketParams,
    reply: { 200: z.discriminatedUnion('result', [z.strictObject({ result: z.literal('claimed'), amount: Seq, seq: Seq, remainingCount: Seq }), AllClaimed, Busy]) },
  }),
  balance: restRoute({ method: 'GET', url: '/api/wallet', summary: 'Own balance', auth: 'user', reply: { 200: z.strictObject({ balance: z.number().int(), unit: z.literal('fen') }) } }),
  entries: restRoute({
    method: 'GET',
    url: '/api/wallet/entries',
    summary: 'Own ledger entries, newest first',
    auth: 'user',
    query: z.strictObject({ before: QuerySeq.min(1).optional(), limit: queryLimit(200).optional() }),
    reply: { 200: z.strictObject({ entries: z.array(LedgerEntrySchema) }) },
  }),
};
/** One ledger entry as `GET /api/wallet/entries` shows it (signed fen: + credits the wallet, − debits it). */
export type LedgerEntryView = z.infer<typeof LedgerEntrySchema>;

/** A gateway operation's result (top-up, withdrawal, settlement). */
export const WalletOpSchema = z.strictObject({
  ok: z.literal(true),
  status: z.enum(['done', 'pending', 'paid', 'reversed']),
  duplicate: z.boolean(),
  balance: z.number().int(),
  kind: z.enum(['topup', 'withdraw']),
});
export const ReconcileReportSchema = z.strictObject({
  ok: z.boolean(),
  at: z.number().int(),
  totals: z.strictObject({
    deposits: z.number().int(),
    withdrawals: z.number().int(),
    userBalances: z.number().int(),
    escrow: z.number().int(),
    packets: Seq,
    activePackets: Seq,
    claims: Seq,
    entries: Seq,
  }),
  checks: z.array(z.strictObject({ name: z.string(), ok: z.boolean(), detail: z.string() })),
});
const GatewayBody = z.strictObject({ userId: Id, amount: Fen, reference: z.string().min(1).max(128) });

/** Wallets, the operator's side (Bearer adminToken; disabled when none is configured). */
export const walletAdminRoutes = {
  topUp: restRoute({
    method: 'POST',
    url: '/api/admin/wallet/topup',
    summary: 'Credit a user from the payment gateway (idempotent per reference)',
    auth: 'admin',
    body: GatewayBody,
    reply: { 200: WalletOpSchema },
  }),
  withdraw: restRoute({
    method: 'POST',
    url: '/api/admin/wallet/withdraw',
    summary: 'Pay a user out through the payment gateway (idempotent per reference)',
    auth: 'admin',
    body: GatewayBody,
    reply: { 200: WalletOpSchema },
  }),
  settle: restRoute({
    method: 'POST',
    url: '/api/admin/wallet/withdrawals/:reference/settle',
    summary: 'Settle a pending withdrawal: paid, or reversed (the money goes back)',
    auth: 'admin',
    params: z.strictObject({ reference: z.string().min(1).max(128) }),
    body: z.strictObject({ result: z.enum(['paid', 'reversed']) }),
    reply: { 200: WalletOpSchema },
  }),
  reconcile: restRoute({
    method: 'GET',
    url: '/api/admin/reconcile',
    summary: 'Reconciliation report from the ledger (200 either way: read `ok`)',
    auth: 'admin',
    reply: { 200: ReconcileReportSchema },
  }),
};
