import { randomBytes } from 'node:crypto';

/** One top-up or withdrawal as the provider sees it. `reference` is Magpie's request id (the provider's order id). */
export interface ProviderRequest {
  reference: string;
  userId: string;
  /** fen */
  amount: number;
}

export type ProviderTopUp =
  | { status: 'paid'; providerRef: string }
  /** Waiting for the payer (a real gateway: send the user to `payUrl`; the provider's notification or a later `topUpStatus` finishes it). */
  | { status: 'pending'; providerRef: string; payUrl?: string }
  | { status: 'failed'; reason: string };

export type ProviderPayout =
  | { status: 'paid'; providerRef: string }
  /** Accepted, result later: the provider's callback settles it (POST /api/admin/payments/:id/settle). */
  | { status: 'pending'; providerRef: string }
  /** Nothing was paid: Magpie reverses the debit. */
  | { status: 'refused'; reason: string };

/**
 * Where money enters and leaves Magpie: what an operator implements for a real payment
 * gateway. Every method must be idempotent per `reference` (Magpie retries after a crash with
 * the same reference). A method that cannot tell the outcome throws: the request stays
 * `pending` and is looked up again later, never guessed.
 */
export interface PaymentProvider {
  readonly name: string;
  /** Start a top-up (money in). */
  startTopUp(req: ProviderRequest): Promise<ProviderTopUp>;
  /** The current state of a top-up started earlier. */
  topUpStatus(req: ProviderRequest): Promise<ProviderTopUp>;
  /** Pay money out for a withdrawal (Magpie has debited the wallet already). */
  payout(req: ProviderRequest): Promise<ProviderPayout>;
}

/**
 * The default provider: a sandbox that moves no real money. Top-ups are paid at once;
 * payouts are `paid`, `pending` or `refused` as configured (`payments.sandboxPayout`), so
 * every path of the ledger can be tried without a gateway. Not for production money.
 */
export class SandboxProvider implements PaymentProvider {
  readonly name = 'sandbox';
  constructor(private readonly opts: { payout: 'paid' | 'pending' | 'refused' } = { payout: 'paid' }) {}

  private ref(req: ProviderRequest): string {
    return `sbx_${req.reference}_${randomBytes(3).toString('hex')}`;
  }

  async startTopUp(req: ProviderRequest): Promise<ProviderTopUp> {
    return { status: 'paid', providerRef: this.ref(req) };
  }

  async topUpStatus(req: ProviderRequest): Promise<ProviderTopUp> {
    return { status: 'paid', providerRef: this.ref(req) };
  }

  async payout(req: ProviderRequest): Promise<ProviderPayout> {
    switch (this.opts.payout) {
      case 'paid':
        return { status: 'paid', providerRef: this.ref(req) };
      case 'pending':
        return { status: 'pending', providerRef: this.ref(req) };
      case 'refused':
        return { status: 'refused', reason: 'sandbox: payouts are set to be refused' };
    }
  }
}
