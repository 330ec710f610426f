/**
 * Payments on one engine (run on SQLite and PostgreSQL by payments-sqlite / payments-postgres):
 * the payment PIN (set once, wrong tries, lock, parallel guesses, reset with the account
 * password) and top-ups and withdrawals through a provider landing in the ledger (paid,
 * refused → reversed, pending → settled, insufficient balance, idempotency, recovery), with
 * the ledger reconciling after each.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MagpieError } from '@magpie/protocol';
import { PasswordHasher } from '../src/util/passwords.ts';
import type { Principal } from '../src/services/account-service.ts';
import type { WalletStore } from '../src/wallet/wallet-store.ts';
import { PinService } from '../src/wallet/payments/pin-service.ts';
import { PaymentsService } from '../src/wallet/payments/payments-service.ts';
import { SandboxProvider, type PaymentProvider, type ProviderPayout, type ProviderRequest, type ProviderTopUp } from '../src/wallet/payments/payment-provider.ts';
import type { PaymentsStore } from '../src/wallet/payments/payments-store.ts';
import { assertReconciles } from './wallet-store-contract.ts';
import { ManualClock, expectMagpieError, principal } from './redpacket-helpers.ts';

export interface PaymentsFixture {
  store: PaymentsStore;
  wallet: WalletStore;
  cleanup(): Promise<void>;
}

/** A provider whose answers the test scripts; otherwise the sandbox. */
class ScriptedProvider implements PaymentProvider {
  readonly name = 'scripted';
  topUp: ProviderTopUp['status'] = 'paid';
  payoutMode: ProviderPayout['status'] | 'throw' = 'paid';
  readonly payouts: ProviderRequest[] = [];
  async startTopUp(req: ProviderRequest): Promise<ProviderTopUp> {
    return this.answer(req);
  }
  async topUpStatus(req: ProviderRequest): Promise<ProviderTopUp> {
    return this.answer(req);
  }
  private answer(req: ProviderRequest): ProviderTopUp {
    if (this.topUp === 'failed') return { status: 'failed', reason: 'card declined' };
    return { status: this.topUp, providerRef: `p-${req.reference}` };
  }
  async payout(req: ProviderRequest): Promise<ProviderPayout> {
    this.payouts.push(req);
    if (this.payoutMode === 'throw') throw new Error('provider timeout');
    if (this.payoutMode === 'refused') return { status: 'refused', reason: 'account closed' };
    return { status: this.payoutMode, providerRef: `p-${req.reference}` };
  }
}

const PASSWORD = 'correct horse battery';

export function runPaymentsContract(name: string, factory: () => Promise<PaymentsFixture>): void {
  describe(`payments: ${name}`, () => {
    let fx: PaymentsFixture;
    let clock: ManualClock;
    let hasher: PasswordHasher;
    let hashes: number;
    let pins: PinService;
    let provider: ScriptedProvider;
    let payments: PaymentsService;
    const ann: Principal = principal('u_ann');
    const accounts = {
      async confirmPassword(_p: Principal, password: string): Promise<void> {
        if (password !== PASSWORD) throw new MagpieError('bad_credentials');
      },
    };

    beforeEach(async () => {
      fx = await factory();
      clock = new ManualClock();
      hasher = new PasswordHasher({ concurrency: 2, queue: 1000 });
      hashes = 0;
      const counting = { hash: (s: string) => hasher.hash(s), verify: (s: string, h: string) => (hashes++, hasher.verify(s, h)) };
      pins = new PinService(fx.store, counting, accounts, { required: true, maxTries: 3, lockMs: 60_000 }, clock.now);
      provider = new ScriptedProvider();
      payments = new PaymentsService(fx.store, fx.wallet, provider, pins, { limits: { maxAmount: 1_000_000, maxBalance: 5_000_000 }, recoverAfterMs: 1000, recoverIntervalMs: 1000 }, { now: clock.now });
    });
    afterEach(async () => fx.cleanup());

    it('PIN: six digits, set once, required when set, status tells tries and lock', async () => {
      await expectMagpieError(pins.guard('u_ann', undefined), 'forbidden', 'pin_not_set');
      await expectMagpieError(pins.guard('u_ann', '123456'), 'forbidden', 'pin_not_set');
      await expectMagpieError(pins.set('u_ann', '12345'), 'invalid', 'pin_format');
      await expectMagpieError(pins.set('u_ann', '12345a'), 'invalid', 'pin_format');
      assert.deepEqual(await pins.status('u_ann'), { set: false, required: true, lockedUntil: null, triesLeft: 3 });
      await pins.set('u_ann', '246810');
      await expectMagpieError(pins.set('u_ann', '111111'), 'conflict', 'pin_already_set');
      await expectMagpieError(pins.guard('u_ann', undefined), 'forbidden', 'pin_required');
      await pins.guard('u_ann', '246810');
      const stored = await fx.store.getPin('u_ann');
      assert.match(stored!.hash, /^scrypt\$/, 'hashed like passwords');
      assert.ok(!stored!.hash.includes('246810'));
    });

    it('PIN: locked after N wrong tries, even the right PIN is refused without a hash; the lock runs out', async () => {
      await pins.set('u_ann', '246810');
      const e1 = await expectMagpieError(pins.verify('u_ann', '000000'), 'forbidden', 'pin_wrong');
      assert.equal((e1.details as { triesLeft: number }).triesLeft, 2);
      await pins.verify('u_ann', '246810'); // a right PIN resets the count
      assert.equal((await pins.status('u_ann')).triesLeft, 3);
      await expectMagpieError(pins.verify('u_ann', '000000'), 'forbidden', 'pin_wrong');
      await expectMagpieError(pins.verify('u_ann', '000001'), 'forbidden', 'pin_wrong');
      const locked = await expectMagpieError(pins.verify('u_ann', '000002'), 'forbidden', 'pin_locked');
      assert.equal((locked.details as { lockedUntil: number }).lockedUntil, clock.t + 60_000);
      assert.equal(locked.retryAfterMs, 60_000);
      const before = hashes;
      await expectMagpieError(pins.verify('u_ann', '246810'), 'forbidden', 'pin_locked');
      assert.equal(hashes, before, 'a locked PIN costs no hash');
      const st = await pins.status('u_ann');
      assert.equal(st.lockedUntil, clock.t + 60_000);
      assert.equal(st.triesLeft, 0);
      clock.advance(60_001);
      assert.equal((await pins.status('u_ann')).triesLeft, 3);
      await pins.verify('u_ann', '246810');
    });

    it('PIN: guesses sent in parallel cannot pass the limit', async () => {
      await pins.set('u_ann', '246810');
      const guesses = Array.from({ length: 20 }, (_, i) => pins.verify('u_ann', String(100000 + i)).then(() => 'ok', (e: MagpieError) => (e.details as { reason: string }).reason));
      const out = await Promise.all(guesses);
      assert.ok(!out.includes('ok'));
      assert.ok(hashes <= 3, `at most maxTries hashes ran (${hashes})`);
      assert.equal(out.filter((r) => r === 'pin_wrong').length, 2);
      await expectMagpieError(pins.verify('u_ann', '246810'), 'forbidden', 'pin_locked');
    });

    it('PIN: reset with the account password replaces it and lifts the lock; a wrong password changes nothing', async () => {
      await pins.set('u_ann', '246810');
      for (const g of ['000000', '000001', '000002']) await pins.verify('u_ann', g).catch(() => {});
      await expectMagpieError(pins.verify('u_ann', '246810'), 'forbidden', 'pin_locked');
      await expectMagpieError(pins.reset(ann, 'wrong password', '135790'), 'bad_credentials');
      await expectMagpieError(pins.verify('u_ann', '246810'), 'forbidden', 'pin_locked');
      const st = await pins.reset(ann, PASSWORD, '135790');
      assert.deepEqual(st, { set: true, required: true, lockedUntil: null, triesLeft: 3 });
      await pins.verify('u_ann', '135790');
      await expectMagpieError(pins.verify('u_ann', '246810'), 'forbidden', 'pin_wrong');
    });

    it('top-up through the provider lands in the ledger once per clientId', async () => {
      const r = await payments.topUp('u_ann', { clientId: 't1', amount: 10_000 });
      assert.equal(r.payment.status, 'done');
      assert.equal(r.payment.kind, 'topup');
      assert.equal(r.balance, 10_000);
      assert.equal(r.duplicate, false);
      const again = await payments.topUp('u_ann', { clientId: 't1', amount: 10_000 });
      assert.equal(again.duplicate, true);
      assert.equal(again.balance, 10_000);
      await expectMagpieError(payments.topUp('u_ann', { clientId: 't1', amount: 9_999 }), 'conflict', 'idempotency_conflict');
      const entries = await fx.wallet.entries('u_ann', { limit: 10 });
      assert.deepEqual(entries.map((e) => [e.kind, e.amount, e.ref]), [['topup', 10_000, `pay:${r.payment.id}`]]);
      // over the balance limit (5 000 000): refused, nothing credited
      await payments.topUp('u_ann', { clientId: 't2a', amount: 1_000_000 }).then(() => payments.topUp('u_ann', { clientId: 't2b', amount: 1_000_000 })).then(() => payments.topUp('u_ann', { clientId: 't2c', amount: 1_000_000 })).then(() => payments.topUp('u_ann', { clientId: 't2d', amount: 1_000_000 }));
      await expectMagpieError(payments.topUp('u_ann', { clientId: 't2', amount: 1_000_000 }), 'forbidden', 'balance_limit');
      provider.topUp = 'failed';
      const failed = await payments.topUp('u_ann', { clientId: 't3', amount: 100 });
      assert.equal(failed.payment.status, 'failed');
      assert.equal(failed.payment.reason, 'card declined');
      assert.equal(failed.balance, 4_010_000);
      const list = await payments.list('u_ann', {});
      assert.deepEqual(list.payments.map((p) => p.status).sort(), ['done', 'done', 'done', 'done', 'done', 'failed', 'failed']);
      await assertReconciles(fx.wallet, clock.t);
    });

    it('withdrawal: PIN, paid; refused → reversed; pending → settled reversed by the callback; insufficient balance changes nothing', async () => {
      await pins.set('u_ann', '246810');
      await payments.topUp('u_ann', { clientId: 'in', amount: 10_000 });
      await expectMagpieError(payments.withdraw('u_ann', { clientId: 'w0', amount: 100 }), 'forbidden', 'pin_required');
      await expectMagpieError(payments.withdraw('u_ann', { clientId: 'w0', amount: 100, pin: '000000' }), 'forbidden', 'pin_wrong');
      assert.equal(await fx.wallet.balance('u_ann'), 10_000);

      const paid = await payments.withdraw('u_ann', { clientId: 'w1', amount: 1_000, pin: '246810' });
      assert.equal(paid.payment.status, 'paid');
      assert.equal(paid.balance, 9_000);

      provider.payoutMode = 'refused';
      const refused = await payments.withdraw('u_ann', { clientId: 'w2', amount: 2_000, pin: '246810' });
      assert.equal(refused.payment.status, 'reversed');
      assert.equal(refused.payment.reason, 'account closed');
      assert.equal(refused.balance, 9_000);

      provider.payoutMode = 'pending';
      const pending = await payments.withdraw('u_ann', { clientId: 'w3', amount: 3_000, pin: '246810' });
      assert.equal(pending.payment.status, 'pending');
      assert.equal(pending.balance, 6_000);
      const reversed = await payments.settle(pending.payment.id, 'reversed', 'bank rejected');
      assert.equal(reversed.payment.status, 'reversed');
      assert.equal(reversed.balance, 9_000);
      assert.equal((await payments.settle(pending.payment.id, 'reversed')).duplicate, true);
      await expectMagpieError(payments.settle(pending.payment.id, 'paid'), 'conflict', 'already_settled');
      await expectMagpieError(payments.settle('pay_nope', 'paid'), 'not_found');

      await expectMagpieError(payments.withdraw('u_ann', { clientId: 'w4', amount: 9_001, pin: '246810' }), 'forbidden', 'insufficient_balance');
      assert.equal(await fx.wallet.balance('u_ann'), 9_000);

      const kinds = (await fx.wallet.entries('u_ann', { limit: 20 })).map((e) => `${e.kind}:${e.amount}`).reverse();
      assert.deepEqual(kinds, ['topup:10000', 'withdraw:-1000', 'withdraw:-2000', 'withdraw_reversal:2000', 'withdraw:-3000', 'withdraw_reversal:3000']);
      await assertReconciles(fx.wallet, clock.t);
    });

    it('an unknown outcome stays pending and the recovery sweep finishes it without paying twice', async () => {
      await pins.set('u_ann', '246810');
      provider.topUp = 'pending';
      const t = await payments.topUp('u_ann', { clientId: 'slow', amount: 500 });
      assert.equal(t.payment.status, 'pending');
      assert.equal(t.balance, 0);
      provider.topUp = 'paid';
      clock.advance(2_000);
      assert.equal(await payments.recover(), 1);
      assert.equal(await fx.wallet.balance('u_ann'), 500);
      assert.equal((await payments.topUp('u_ann', { clientId: 'slow', amount: 500 })).payment.status, 'done');

      provider.payoutMode = 'throw';
      const w = await payments.withdraw('u_ann', { clientId: 'out', amount: 200, pin: '246810' });
      assert.equal(w.payment.status, 'pending');
      assert.equal(w.balance, 300);
      provider.payoutMode = 'paid';
      clock.advance(2_000);
      assert.equal(await payments.recover(), 1);
      const final = (await payments.list('u_ann', {})).payments.find((p) => p.id === w.payment.id)!;
      assert.equal(final.status, 'paid');
      assert.equal(await fx.wallet.balance('u_ann'), 300, 'debited once');
      await assertReconciles(fx.wallet, clock.t);
    });

    it('the sandbox provider pays top-ups at once and follows its payout setting', async () => {
      const sandbox = new PaymentsService(fx.store, fx.wallet, new SandboxProvider({ payout: 'refused' }), pins, { limits: { maxAmount: 1_000_000, maxBalance: 5_000_000 }, recoverAfterMs: 1000, recoverIntervalMs: 1000 }, { now: clock.now });
      await pins.set('u_ann', '246810');
      const t = await sandbox.topUp('u_ann', { clientId: 's1', amount: 700 });
      assert.equal(t.payment.provider, 'sandbox');
      assert.equal(t.payment.status, 'done');
      const w = await sandbox.withdraw('u_ann', { clientId: 's2', amount: 300, pin: '246810' });
      assert.equal(w.payment.status, 'reversed');
      assert.equal(w.balance, 700);
      await assertReconciles(fx.wallet, clock.t);
    });
  });
}
