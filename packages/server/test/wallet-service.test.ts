/**
 * Wallet service and routes: top-up and withdrawal through the PaymentGateway (confirmed,
 * refused, unknown outcome → pending → settled by the operator), balances and entries for
 * users, and the operator API's switch (disabled without an admin token).
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifyInstance } from 'fastify';
import { MagpieError } from '@magpie/protocol';
import type { SqlWalletStore } from '../src/wallet/sql-wallet-store.ts';
import { sqliteWallet } from './sql-engines.ts';
import { WalletService, type PaymentGateway, type PaymentRequest } from '../src/wallet/wallet-service.ts';
import { registerWalletRoutes } from '../src/wallet/routes.ts';
import { RestApi } from '../src/http/rest.ts';
import type { AccountService } from '../src/services/account-service.ts';
import type { RedPacketService } from '../src/wallet/redpacket-service.ts';
import { errorBody } from '../src/util/errors.ts';
import { assertReconciles } from './wallet-store-contract.ts';
import { expectMagpieError, principal } from './redpacket-helpers.ts';

class ScriptedGateway implements PaymentGateway {
  readonly name = 'scripted';
  confirm: 'ok' | 'refuse' = 'ok';
  payoutMode: 'ok' | 'refuse' | 'throw' = 'ok';
  readonly payouts: PaymentRequest[] = [];
  async confirmTopUp(): Promise<{ ok: true } | { ok: false; reason: string }> {
    return this.confirm === 'ok' ? { ok: true } : { ok: false, reason: 'no such payment' };
  }
  async payout(req: PaymentRequest): Promise<{ ok: true } | { ok: false; reason: string }> {
    if (this.payoutMode === 'throw') throw new Error('provider timeout');
    if (this.payoutMode === 'refuse') return { ok: false, reason: 'account closed' };
    this.payouts.push(req);
    return { ok: true };
  }
}

describe('wallet service', () => {
  let store: SqlWalletStore;
  let gateway: ScriptedGateway;
  let wallet: WalletService;
  const users = { getUser: async (id: string) => (id.startsWith('u') ? { id } : null) };

  beforeEach(async () => {
    store = await sqliteWallet();
    gateway = new ScriptedGateway();
    wallet = new WalletService(store, gateway, users);
  });
  afterEach(async () => store.close());

  it('top-up needs the gateway to confirm and a real user', async () => {
    gateway.confirm = 'refuse';
    await expectMagpieError(wallet.topUp({ userId: 'u1', amount: 100, reference: 'a' }), 'forbidden', 'gateway_refused');
    gateway.confirm = 'ok';
    await expectMagpieError(wallet.topUp({ userId: 'nobody', amount: 100, reference: 'b' }), 'not_found');
    const r = await wallet.topUp({ userId: 'u1', amount: 100, reference: 'c' });
    assert.equal(r.balance, 100);
    await expectMagpieError(wallet.topUp({ userId: 'u1', amount: 99, reference: 'c' }), 'conflict');
    assert.deepEqual(await wallet.balance('u1'), { balance: 100, unit: 'fen' });
  });

  it('withdrawal: paid, refused by the gateway (reversed), unknown outcome (pending → operator settles)', async () => {
    await wallet.topUp({ userId: 'u1', amount: 1000, reference: 'in' });
    await expectMagpieError(wallet.withdraw({ userId: 'u1', amount: 1001, reference: 'w0' }), 'forbidden', 'insufficient_balance');

    const paid = await wallet.withdraw({ userId: 'u1', amount: 300, reference: 'w1' });
    assert.equal(paid.status, 'paid');
    assert.equal(paid.balance, 700);
    assert.equal(gateway.payouts.length, 1);

    gateway.payoutMode = 'refuse';
    const refused = await wallet.withdraw({ userId: 'u1', amount: 200, reference: 'w2' });
    assert.equal(refused.status, 'reversed');
    assert.equal(refused.balance, 700, 'the debit was reversed');

    gateway.payoutMode = 'throw';
    await expectMagpieError(wallet.withdraw({ userId: 'u1', amount: 100, reference: 'w3' }), 'unavailable', 'payout_pending');
    assert.equal((await wallet.balance('u1')).balance, 600, 'held while the outcome is unknown');
    const settled = await wallet.settle('w3', 'paid');
    assert.equal(settled.status, 'paid');
    const twice = await expectMagpieError(wallet.settle('w3', 'reversed'), 'conflict', 'already_settled');
    assert.deepEqual(twice.details, { reason: 'already_settled', status: 'paid' }, 'settled once; the answer says how');
    await expectMagpieError(wallet.settle('nope', 'paid'), 'not_found');

    const { entries } = await wallet.entries('u1', {});
    assert.deepEqual(
      entries.map((e) => [e.kind, e.amount]),
      [
        ['withdraw', -100],
        ['withdraw_reversal', 200],
        ['withdraw', -200],
        ['withdraw', -300],
        ['topup', 1000],
      ],
    );
    const report = await wallet.reconcile();
    assert.equal(report.ok, true);
    assert.equal(report.totals.deposits, 1000);
    assert.equal(report.totals.withdrawals, 400);
    assert.equal(report.totals.userBalances, 600);
    await assertReconciles(store, Date.now());
  });
});

describe('wallet routes', () => {
  let app: FastifyInstance;
  let store: SqlWalletStore;

  async function build(adminToken: string | undefined): Promise<void> {
    store = await sqliteWallet();
    const wallet = new WalletService(store, new ScriptedGateway(), { getUser: async (id: string) => ({ id }) });
    const accounts = {
      authenticate: async (token: string | undefined) => {
        if (!token?.startsWith('user-')) throw new MagpieError('unauthorized');
        return principal(token.slice(5));
      },
    } as unknown as AccountService;
    app = Fastify();
    app.setErrorHandler((err, _req, reply) => {
      const e = err instanceof MagpieError ? err : new MagpieError('invalid', (err as Error).message);
      void reply.code(e.status).send(errorBody(e));
    });
    registerWalletRoutes(new RestApi(app, accounts, adminToken), { redPackets: {} as RedPacketService, wallet });
    await app.ready();
  }
  afterEach(async () => {
    await app.close();
    await store.close();
  });

  it('without an admin token the operator API is disabled', async () => {
    await build(undefined);
    const r = await app.inject({ method: 'POST', url: '/api/admin/wallet/topup', headers: { authorization: 'Bearer anything' }, payload: { userId: 'u1', amount: 5, reference: 'x' } });
    assert.equal(r.statusCode, 403);
    assert.match(r.json().error.message, /disabled/);
    assert.equal((await app.inject({ method: 'GET', url: '/api/admin/reconcile' })).statusCode, 403);
  });

  it('with a token: operator calls need it; users see their own balance and entries', async () => {
    const ADMIN = 'an-admin-token-of-some-length';
    await build(ADMIN);
    const topup = (auth: string) => app.inject({ method: 'POST', url: '/api/admin/wallet/topup', headers: { authorization: auth }, payload: { userId: 'u7', amount: 250, reference: 'r1' } });
    assert.equal((await topup('Bearer wrong')).statusCode, 401);
    assert.equal((await topup('Bearer user-u7')).statusCode, 401);
    assert.equal((await topup(`Bearer ${ADMIN}`)).statusCode, 200);
    const bal = await app.inject({ method: 'GET', url: '/api/wallet', headers: { authorization: 'Bearer user-u7' } });
    assert.deepEqual(bal.json(), { balance: 250, unit: 'fen' });
    const entries = await app.inject({ method: 'GET', url: '/api/wallet/entries?limit=5', headers: { authorization: 'Bearer user-u7' } });
    assert.equal(entries.json().entries.length, 1);
    assert.equal((await app.inject({ method: 'GET', url: '/api/wallet' })).statusCode, 401);
    const w = await app.inject({ method: 'POST', url: '/api/admin/wallet/withdraw', headers: { authorization: `Bearer ${ADMIN}` }, payload: { userId: 'u7', amount: 50, reference: 'w1' } });
    assert.equal(w.json().status, 'paid');
    const neg = await app.inject({ method: 'POST', url: '/api/admin/wallet/withdraw', headers: { authorization: `Bearer ${ADMIN}` }, payload: { userId: 'u7', amount: -50, reference: 'w2' } });
    assert.equal(neg.statusCode, 400);
    const rec = await app.inject({ method: 'GET', url: '/api/admin/reconcile', headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(rec.json().ok, true);
  });
});
