import { z } from 'zod';
import { Seq, queryLimit, restRoute } from './route.ts';

/**
 * Payments, the users' side (server: wallet/payments/payment-routes.ts): the payment PIN and
 * money in and out through the configured payment provider. Amounts are integers in fen.
 */

const Fen = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
/** A payment PIN: exactly six digits. */
export const PinSchema = z.string().regex(/^[0-9]{6}$/, 'a payment PIN is six digits');
const ClientId = z.string().min(1).max(64);

export const PinStatusSchema = z.strictObject({
  /** A PIN has been set. */
  set: z.boolean(),
  /** Sending red packets and withdrawing need the PIN (server setting `payments.pinRequired`). */
  required: z.boolean(),
  /** While locked after too many wrong tries: when the lock ends (ms since epoch); else null. */
  lockedUntil: z.number().int().nullable(),
  /** Wrong tries left before the lock. */
  triesLeft: Seq,
});
export type PinStatus = z.infer<typeof PinStatusSchema>;

export const PAYMENT_KINDS = ['topup', 'withdraw'] as const;
export const PAYMENT_STATUSES = ['pending', 'done', 'paid', 'reversed', 'failed'] as const;
export type PaymentKind = (typeof PAYMENT_KINDS)[number];
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

export const PaymentRequestSchema = z.strictObject({
  id: z.string(),
  kind: z.enum(PAYMENT_KINDS),
  amount: Seq,
  /** The provider that handles it (`sandbox` by default). */
  provider: z.string(),
  /**
   * Top-up: `pending` (waiting for the provider) → `done` (credited) or `failed`.
   * Withdrawal: `pending` (debited, payout under way) → `paid`, or `reversed` (money back in the wallet).
   */
  status: z.enum(PAYMENT_STATUSES),
  /** Why it failed or was reversed. */
  reason: z.string().nullable(),
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
});
export type PaymentRequestView = z.infer<typeof PaymentRequestSchema>;

const PaymentReply = z.strictObject({ payment: PaymentRequestSchema, balance: z.number().int(), duplicate: z.boolean() });

export const paymentRoutes = {
  pinStatus: restRoute({ method: 'GET', url: '/api/wallet/pin', summary: 'Payment PIN status', auth: 'user', reply: { 200: PinStatusSchema } }),
  setPin: restRoute({
    method: 'PUT',
    url: '/api/wallet/pin',
    summary: 'Set the payment PIN (once; 409 pin_already_set afterwards)',
    auth: 'user',
    body: z.strictObject({ pin: PinSchema }),
    reply: { 200: PinStatusSchema },
  }),
  resetPin: restRoute({
    method: 'POST',
    url: '/api/wallet/pin/reset',
    summary: 'Replace the payment PIN by re-entering the account password (also lifts a lock)',
    auth: 'user',
    body: z.strictObject({ password: z.string().min(1).max(1024), pin: PinSchema }),
    reply: { 200: PinStatusSchema },
  }),
  topUp: restRoute({
    method: 'POST',
    url: '/api/wallet/topups',
    summary: 'Top up through the payment provider (idempotent per clientId)',
    auth: 'user',
    body: z.strictObject({ clientId: ClientId, amount: Fen }),
    reply: { 200: PaymentReply },
  }),
  withdraw: restRoute({
    method: 'POST',
    url: '/api/wallet/withdrawals',
    summary: 'Withdraw through the payment provider (PIN; idempotent per clientId)',
    auth: 'user',
    body: z.strictObject({ clientId: ClientId, amount: Fen, pin: PinSchema.optional() }),
    reply: { 200: PaymentReply },
  }),
  payments: restRoute({
    method: 'GET',
    url: '/api/wallet/payments',
    summary: 'Own top-ups and withdrawals, newest first',
    auth: 'user',
    query: z.strictObject({ before: z.coerce.number().int().min(1).optional(), limit: queryLimit(100).optional() }),
    reply: { 200: z.strictObject({ payments: z.array(PaymentRequestSchema) }) },
  }),
  settleWithdrawal: restRoute({
    method: 'POST',
    url: '/api/admin/payments/:id/settle',
    summary: 'Provider callback / operator: a pending withdrawal was paid or reversed',
    auth: 'admin',
    params: z.strictObject({ id: z.string() }),
    body: z.strictObject({ result: z.enum(['paid', 'reversed']), reason: z.string().max(200).optional() }),
    reply: { 200: PaymentReply },
  }),
};
