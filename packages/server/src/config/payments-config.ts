import { z } from 'zod';

/** Payments settings (`payments` in the config file; MAGPIE_PAYMENTS_* in the environment). */
export const PaymentsConfigSchema = z.strictObject({
  /** Sending a red packet and withdrawing need the 6-digit payment PIN. */
  pinRequired: z.boolean().default(true),
  /** Wrong PIN tries in a row before the PIN locks. */
  pinMaxTries: z.number().int().min(1).max(100).default(5),
  /** How long a locked PIN stays locked (re-entering the account password lifts it at once). */
  pinLockMs: z.number().int().min(1000).default(15 * 60_000),
  /**
   * The payment provider. `sandbox` (the default) moves no real money: every top-up is paid at
   * once and payouts follow `sandboxPayout`. An operator with a real gateway implements
   * `PaymentProvider` (wallet/payments/payment-provider.ts) and passes it to the server.
   */
  provider: z.enum(['sandbox']).default('sandbox'),
  /** Sandbox payouts: `paid` at once, left `pending` (settle with the admin route), or `refused` (reversed at once). */
  sandboxPayout: z.enum(['paid', 'pending', 'refused']).default('paid'),
  /** Pending requests untouched this long are looked up at the provider again (crash recovery). */
  recoverAfterMs: z.number().int().min(1000).default(60_000),
  recoverIntervalMs: z.number().int().min(100).default(30_000),
});

export type PaymentsConfig = z.infer<typeof PaymentsConfigSchema>;

type Raw = Record<string, unknown>;
const payments = (c: Raw): Raw => (c.payments = { ...(c.payments as Raw) }) as Raw;

export const PAYMENTS_ENV: Record<string, (c: Raw, v: string) => void> = {
  MAGPIE_PAYMENTS_PIN_REQUIRED: (c, v) => void (payments(c).pinRequired = v === '1' || v === 'true'),
  MAGPIE_PAYMENTS_PIN_MAX_TRIES: (c, v) => void (payments(c).pinMaxTries = Number(v)),
  MAGPIE_PAYMENTS_PIN_LOCK_MS: (c, v) => void (payments(c).pinLockMs = Number(v)),
  MAGPIE_PAYMENTS_SANDBOX_PAYOUT: (c, v) => void (payments(c).sandboxPayout = v),
};
