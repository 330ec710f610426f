import { MagpieError, type PaymentKind, type PaymentRequestView } from '@magpie/protocol';
import type { Logger } from 'pino';
import { timeId } from '../../util/ids.ts';
import type { WalletStore } from '../wallet-store.ts';
import type { PaymentProvider, ProviderRequest } from './payment-provider.ts';
import { ledgerReference, type PaymentRecord, type PaymentsStore } from './payments-store.ts';
import type { PinService } from './pin-service.ts';

export interface PaymentsLimits {
  /** Largest single top-up or withdrawal, fen. */
  maxAmount: number;
  /** Largest balance a top-up may reach, fen. */
  maxBalance: number;
}

export interface PaymentOutcome {
  payment: PaymentRequestView;
  balance: number;
  duplicate: boolean;
}

/**
 * Money in and out through the payment provider. A request is stored (`pending`) before the
 * provider is asked, and its money moves only in the wallet's ledger under reference
 * `pay:<id>` (idempotent there too), so a crash at any point leaves a pending request that a
 * retry with the same clientId, or the recovery sweep, finishes without paying twice.
 *
 * Top-up: provider paid → ledger credit → `done`. Withdrawal: PIN → ledger debit (held
 * `pending` in the ledger) → payout → `paid`, or `reversed` (the ledger gives the money back)
 * when the provider refuses at once or later through `settle`.
 */
export class PaymentsService {
  private timer: NodeJS.Timeout | null = null;
  private recovering: Promise<unknown> | null = null;

  constructor(
    private readonly store: PaymentsStore,
    private readonly wallet: WalletStore,
    private readonly provider: PaymentProvider,
    private readonly pins: PinService,
    private readonly opts: { limits: PaymentsLimits; recoverAfterMs: number; recoverIntervalMs: number },
    private readonly extra: { log?: Logger; now?: () => number } = {},
  ) {}

  private now(): number {
    return (this.extra.now ?? Date.now)();
  }

  async list(userId: string, q: { before?: number; limit?: number }): Promise<{ payments: PaymentRequestView[] }> {
    return { payments: (await this.store.listRequests(userId, { before: q.before, limit: q.limit ?? 50 })).map(view) };
  }

  async topUp(userId: string, input: { clientId: string; amount: number }): Promise<PaymentOutcome> {
    this.checkAmount(input.amount);
    const { record, duplicate } = await this.open(userId, 'topup', input);
    if (record.status !== 'pending') return this.outcome(record, duplicate);
    if (!duplicate) {
      const balance = await this.wallet.balance(userId);
      if (balance + input.amount > this.opts.limits.maxBalance) {
        const failed = (await this.store.transition(record.id, ['pending'], 'failed', { reason: 'balance_limit', now: this.now() })) ?? record;
        throw new MagpieError('forbidden', `the balance would pass the limit of ${this.opts.limits.maxBalance} fen`, { details: { reason: 'balance_limit', max: this.opts.limits.maxBalance, payment: failed.id } });
      }
    }
    return this.outcome(await this.runTopUp(record, duplicate ? 'status' : 'start'), duplicate);
  }

  async withdraw(userId: string, input: { clientId: string; amount: number; pin?: string }): Promise<PaymentOutcome> {
    this.checkAmount(input.amount);
    await this.pins.guard(userId, input.pin);
    const { record, duplicate } = await this.open(userId, 'withdraw', input);
    if (record.status !== 'pending') return this.outcome(record, duplicate);
    return this.outcome(await this.runWithdrawal(record), duplicate);
  }

  /** The provider's callback (or the operator): a pending withdrawal was paid, or reversed. */
  async settle(id: string, result: 'paid' | 'reversed', reason?: string): Promise<PaymentOutcome> {
    const record = await this.store.getRequest(id);
    if (!record || record.kind !== 'withdraw') throw new MagpieError('not_found', 'no such withdrawal');
    if (record.status !== 'pending') {
      if (record.status === result) return this.outcome(record, true);
      throw new MagpieError('conflict', `the withdrawal is ${record.status} already`, { details: { reason: 'already_settled', status: record.status } });
    }
    return this.outcome(await this.finishWithdrawal(record, result, reason ?? null), false);
  }

  // ---------------------------------------------------------------- steps

  private checkAmount(amount: number): void {
    const max = this.opts.limits.maxAmount;
    if (!Number.isSafeInteger(amount) || amount < 1) throw new MagpieError('invalid', 'amount must be a positive integer of fen');
    if (amount > max) throw new MagpieError('invalid', `amount above the limit of ${max} fen per operation`, { details: { reason: 'amount_above_limit', max } });
  }

  private async open(userId: string, kind: PaymentKind, input: { clientId: string; amount: number }): Promise<{ record: PaymentRecord; duplicate: boolean }> {
    const got = await this.store.createRequest({ id: timeId('pay'), userId, clientId: input.clientId, kind, amount: input.amount, provider: this.provider.name, createdAt: this.now() });
    if (got.duplicate && (got.record.kind !== kind || got.record.amount !== input.amount)) {
      throw new MagpieError('conflict', 'clientId was used for a different payment', { details: { reason: 'idempotency_conflict' } });
    }
    return got;
  }

  private req(r: PaymentRecord): ProviderRequest {
    return { reference: r.id, userId: r.userId, amount: r.amount };
  }

  private async runTopUp(record: PaymentRecord, how: 'start' | 'status'): Promise<PaymentRecord> {
    const answer = how === 'start' ? await this.provider.startTopUp(this.req(record)) : await this.provider.topUpStatus(this.req(record));
    if (answer.status === 'failed') return (await this.store.transition(record.id, ['pending'], 'failed', { reason: answer.reason, now: this.now() })) ?? (await this.reread(record));
    if (answer.status === 'pending') return record;
    const credited = await this.wallet.topUp({ reference: ledgerReference(record.id), userId: record.userId, amount: record.amount, now: this.now(), maxBalance: this.opts.limits.maxBalance });
    if (!credited.ok) {
      // Paid at the provider but over the balance limit: the operator refunds it there (docs/operations.md).
      this.extra.log?.error({ payment: record.id, error: credited.error }, 'top-up paid but not credited');
      return (await this.store.transition(record.id, ['pending'], 'failed', { reason: credited.error, providerRef: answer.providerRef, now: this.now() })) ?? (await this.reread(record));
    }
    return (await this.store.transition(record.id, ['pending'], 'done', { providerRef: answer.providerRef, now: this.now() })) ?? (await this.reread(record));
  }

  private async runWithdrawal(record: PaymentRecord): Promise<PaymentRecord> {
    const ref = ledgerReference(record.id);
    const debited = await this.wallet.withdraw({ reference: ref, userId: record.userId, amount: record.amount, now: this.now() });
    if (!debited.ok) {
      const failed = (await this.store.transition(record.id, ['pending'], 'failed', { reason: debited.error, now: this.now() })) ?? record;
      if (debited.error === 'insufficient_balance') throw new MagpieError('forbidden', 'insufficient balance', { details: { reason: 'insufficient_balance', payment: failed.id } });
      throw new MagpieError('conflict', `withdrawal refused: ${debited.error}`, { details: { reason: debited.error } });
    }
    if (debited.status === 'paid' || debited.status === 'reversed') return this.finishWithdrawal(record, debited.status, null);
    let answer;
    try {
      answer = await this.provider.payout(this.req(record));
    } catch (err) {
      this.extra.log?.error({ err, payment: record.id }, 'payout outcome unknown; the withdrawal stays pending');
      return record;
    }
    if (answer.status === 'pending') return (await this.store.transition(record.id, ['pending'], 'pending', { providerRef: answer.providerRef, now: this.now() })) ?? record;
    if (answer.status === 'paid') return this.finishWithdrawal(record, 'paid', null, answer.providerRef);
    return this.finishWithdrawal(record, 'reversed', answer.reason);
  }

  private async finishWithdrawal(record: PaymentRecord, result: 'paid' | 'reversed', reason: string | null, providerRef?: string): Promise<PaymentRecord> {
    const settled = await this.wallet.settleWithdrawal(ledgerReference(record.id), result, this.now());
    const final = settled.ok ? result : settled.error === 'already_settled' ? settled.status : null;
    if (final === null) throw new MagpieError('internal', `withdrawal ${record.id} has no ledger entry (${settled.ok ? '' : settled.error})`);
    return (await this.store.transition(record.id, ['pending'], final, { reason, providerRef: providerRef ?? null, now: this.now() })) ?? (await this.reread(record));
  }

  private async reread(record: PaymentRecord): Promise<PaymentRecord> {
    return (await this.store.getRequest(record.id)) ?? record;
  }

  private async outcome(record: PaymentRecord, duplicate: boolean): Promise<PaymentOutcome> {
    return { payment: view(record), balance: await this.wallet.balance(record.userId), duplicate };
  }

  // ---------------------------------------------------------------- recovery

  /** Look pending requests up again (after a crash or an unknown provider answer). */
  async recover(): Promise<number> {
    const due = await this.store.pendingRequests(this.now() - this.opts.recoverAfterMs, 100);
    let moved = 0;
    for (const r of due) {
      try {
        const after = r.kind === 'topup' ? await this.runTopUp(r, 'status') : await this.runWithdrawal(r);
        if (after.status !== 'pending') moved++;
      } catch (err) {
        this.extra.log?.warn({ err, payment: r.id }, 'payment recovery step failed; retried later');
      }
    }
    return moved;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.recovering) return;
      this.recovering = this.recover()
        .catch((err: unknown) => this.extra.log?.error({ err }, 'payment recovery failed'))
        .finally(() => (this.recovering = null));
    }, this.opts.recoverIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.recovering;
  }
}

export function view(r: PaymentRecord): PaymentRequestView {
  return { id: r.id, kind: r.kind, amount: r.amount, provider: r.provider, status: r.status, reason: r.reason, createdAt: r.createdAt, updatedAt: r.updatedAt };
}
