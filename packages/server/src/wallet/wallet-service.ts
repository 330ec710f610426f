import { MagpieError } from '@magpie/protocol';
import type { Logger } from 'pino';
import type { GatewayOpOutcome, LedgerEntry, ReconcileReport, WalletStore } from './wallet-store.ts';

export interface PaymentRequest {
  reference: string;
  userId: string;
  /** fen */
  amount: number;
}

/**
 * Where a real payment provider plugs in. Magpie calls `confirmTopUp` before crediting a
 * wallet and `payout` after debiting one for a withdrawal; a refused payout reverses the
 * debit. Both must be idempotent per `reference` (the provider's order id).
 */
export interface PaymentGateway {
  readonly name: string;
  /** Confirm that money for this top-up arrived (a real gateway verifies the provider's notification or queries the order). */
  confirmTopUp(req: PaymentRequest): Promise<{ ok: true } | { ok: false; reason: string }>;
  /** Pay money out (a real gateway calls the provider's payout API). `ok: false` means nothing was paid. */
  payout(req: PaymentRequest): Promise<{ ok: true } | { ok: false; reason: string }>;
}

/**
 * The stand-in gateway: the operator calling the admin API is the confirmation (they saw the
 * money arrive) and pays withdrawals out by hand outside Magpie.
 */
export class OperatorGateway implements PaymentGateway {
  readonly name = 'operator';
  async confirmTopUp(): Promise<{ ok: true }> {
    return { ok: true };
  }
  async payout(): Promise<{ ok: true }> {
    return { ok: true };
  }
}

/** Wallet reads for users; top-up, withdrawal and reconciliation for the operator. */
export class WalletService {
  constructor(
    private readonly wallet: WalletStore,
    private readonly gateway: PaymentGateway,
    private readonly users: { getUser(id: string): Promise<unknown> },
    private readonly extra: { log?: Logger; now?: () => number; limits?: WalletLimits } = {},
  ) {}

  /** A top-up or withdrawal above `maxAmount` is refused before anything is written. */
  private checkAmount(amount: number): void {
    const max = this.extra.limits?.maxAmount;
    if (max !== undefined && amount > max) {
      throw new MagpieError('invalid', `amount above the limit of ${max} fen per operation`, { details: { reason: 'amount_above_limit', max } });
    }
  }

  private now(): number {
    return (this.extra.now ?? Date.now)();
  }

  async balance(userId: string): Promise<{ balance: number; unit: 'fen' }> {
    return { balance: await this.wallet.balance(userId), unit: 'fen' };
  }

  async entries(userId: string, q: { before?: number; limit?: number }): Promise<{ entries: LedgerEntry[] }> {
    return { entries: await this.wallet.entries(userId, { before: q.before, limit: q.limit ?? 50 }) };
  }

  async topUp(req: PaymentRequest): Promise<Extract<GatewayOpOutcome, { ok: true }>> {
    this.checkAmount(req.amount);
    if (!(await this.users.getUser(req.userId))) throw new MagpieError('not_found', `no such user: ${req.userId}`);
    const confirmed = await this.gateway.confirmTopUp(req);
    if (!confirmed.ok) throw new MagpieError('forbidden', `the ${this.gateway.name} gateway did not confirm the payment: ${confirmed.reason}`, { details: { reason: 'gateway_refused' } });
    return expectOk(await this.wallet.topUp({ ...req, now: this.now(), maxBalance: this.extra.limits?.maxBalance }), this.extra.limits);
  }

  /** Debit (pending) → payout → settle: paid, or reversed when the gateway refuses. */
  async withdraw(req: PaymentRequest): Promise<Extract<GatewayOpOutcome, { ok: true }>> {
    this.checkAmount(req.amount);
    if (!(await this.users.getUser(req.userId))) throw new MagpieError('not_found', `no such user: ${req.userId}`);
    const debited = expectOk(await this.wallet.withdraw({ ...req, now: this.now() }));
    if (debited.status !== 'pending') return debited;
    let paid: { ok: boolean; reason?: string };
    try {
      paid = await this.gateway.payout(req);
    } catch (err) {
      // Unknown outcome: leave it pending for the operator to settle (POST …/settle).
      this.extra.log?.error({ err, reference: req.reference }, 'payout failed with an unknown outcome; withdrawal left pending');
      throw new MagpieError('unavailable', 'payout outcome unknown; the withdrawal is pending', { details: { reason: 'payout_pending' } });
    }
    const settled = await this.wallet.settleWithdrawal(req.reference, paid.ok ? 'paid' : 'reversed', this.now());
    // A retried withdrawal whose first call settled meanwhile: report that settlement.
    if (!settled.ok && settled.error === 'already_settled') return { ok: true, status: settled.status, duplicate: true, balance: await this.wallet.balance(req.userId), kind: 'withdraw' };
    return expectOk(settled);
  }

  async settle(reference: string, result: 'paid' | 'reversed'): Promise<Extract<GatewayOpOutcome, { ok: true }>> {
    return expectOk(await this.wallet.settleWithdrawal(reference, result, this.now()));
  }

  reconcile(): Promise<ReconcileReport> {
    return this.wallet.reconcile(this.now());
  }
}

export interface WalletLimits {
  /** Largest single top-up or withdrawal, fen. */
  maxAmount: number;
  /** Largest balance a top-up may reach, fen. */
  maxBalance: number;
}

function expectOk(o: GatewayOpOutcome, limits?: WalletLimits): Extract<GatewayOpOutcome, { ok: true }> {
  if (o.ok) return o;
  switch (o.error) {
    case 'insufficient_balance':
      throw new MagpieError('forbidden', 'insufficient balance', { details: { reason: 'insufficient_balance' } });
    case 'reference_conflict':
      throw new MagpieError('conflict', 'this reference was used for a different operation (another user, amount or kind)', { details: { reason: 'idempotency_conflict' } });
    case 'not_found':
      throw new MagpieError('not_found', 'no such withdrawal');
    case 'balance_limit':
      throw new MagpieError('forbidden', `the balance would pass the limit of ${limits?.maxBalance} fen`, { details: { reason: 'balance_limit', max: limits?.maxBalance } });
    case 'already_settled':
      throw new MagpieError('conflict', `the withdrawal is settled already (${o.status})`, { details: { reason: 'already_settled', status: o.status } });
  }
}
