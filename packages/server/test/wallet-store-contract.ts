/**
 * The one contract suite of `WalletStore` (src/wallet/wallet-store.ts), run by
 * test/wallet-store-sqlite.test.ts and test/wallet-store-postgres.test.ts.
 * Ids carry random suffixes; `exec` runs raw SQL against the store's database (to tamper
 * with it and check that reconciliation notices).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { NewPacket, OpenOutcome, WalletStore } from '../src/wallet/wallet-store.ts';

export interface WalletStoreFixture {
  store: WalletStore;
  exec(sql: string): Promise<void>;
  cleanup(): Promise<void>;
}

const rand = (): string => randomBytes(6).toString('hex');
const HOUR = 3600_000;

export function newPacket(sender: string, over: Partial<NewPacket> = {}): NewPacket {
  const id = `rp${rand()}`;
  return {
    id,
    clientId: `c-${id}`,
    conv: `g:${rand()}`,
    sender,
    split: 'random',
    total: 1000,
    count: 10,
    greeting: 'Happy new year',
    exclusiveTo: null,
    createdAt: 1_000_000,
    expiresAt: 1_000_000 + 24 * HOUR,
    ...over,
  };
}

export async function assertReconciles(store: WalletStore, now = 2_000_000): Promise<void> {
  const report = await store.reconcile(now);
  assert.ok(report.ok, `reconciliation failed: ${JSON.stringify(report.checks.filter((c) => !c.ok))}`);
}

function ok(o: OpenOutcome): Extract<OpenOutcome, { ok: true }> {
  assert.equal(o.ok, true, `expected a claim, got ${JSON.stringify(o)}`);
  return o as Extract<OpenOutcome, { ok: true }>;
}

export function runWalletStoreContract(name: string, factory: () => Promise<WalletStoreFixture>): void {
  describe(`WalletStore contract: ${name}`, () => {
    let fx: WalletStoreFixture;
    let store: WalletStore;
    before(async () => {
      fx = await factory();
      store = fx.store;
      await store.migrate();
      await store.migrate(); // idempotent
    });
    after(async () => fx.cleanup());

    const funded = async (amount: number): Promise<string> => {
      const user = `u${rand()}`;
      const r = await store.topUp({ reference: `ref-${rand()}`, userId: user, amount, now: 1_000_000 });
      assert.ok(r.ok);
      return user;
    };

    it('top-up credits from the gateway, idempotent per reference', async () => {
      const user = `u${rand()}`;
      const reference = `ref-${rand()}`;
      assert.equal(await store.balance(user), 0);
      const first = await store.topUp({ reference, userId: user, amount: 500, now: 1 });
      assert.deepEqual(first, { ok: true, status: 'done', duplicate: false, balance: 500, kind: 'topup' });
      const again = await store.topUp({ reference, userId: user, amount: 500, now: 2 });
      assert.deepEqual(again, { ok: true, status: 'done', duplicate: true, balance: 500, kind: 'topup' });
      assert.deepEqual(await store.topUp({ reference, userId: user, amount: 501, now: 3 }), { ok: false, error: 'reference_conflict' });
      assert.equal(await store.balance(user), 500);
      const entries = await store.entries(user, { limit: 10 });
      assert.equal(entries.length, 1);
      assert.equal(entries[0]!.amount, 500);
      assert.equal(entries[0]!.kind, 'topup');
      await assertReconciles(store);
    });

    it('balance cap: a top-up or a claim that would pass maxBalance is refused without writing', async () => {
      const user = await funded(900);
      assert.deepEqual(await store.topUp({ reference: `cap-${rand()}`, userId: user, amount: 101, now: 2, maxBalance: 1000 }), { ok: false, error: 'balance_limit' });
      const reference = `cap-${rand()}`;
      assert.ok((await store.topUp({ reference, userId: user, amount: 100, now: 3, maxBalance: 1000 })).ok, 'up to the cap is fine');
      assert.equal(await store.balance(user), 1000);
      const sender = await funded(100);
      const np = newPacket(sender, { total: 100, count: 1, split: 'fixed' });
      assert.ok((await store.createPacket(np)).ok);
      const [refused] = await store.open([{ packetId: np.id, userId: user, now: 1_000_010, maxBalance: 1050 }]);
      assert.deepEqual(refused, { ok: false, error: 'balance_limit' });
      assert.equal((await store.getPacket(np.id))!.remainingCount, 1, 'the share stays');
      const [ok] = await store.open([{ packetId: np.id, userId: user, now: 1_000_011, maxBalance: 1100 }]);
      assert.ok(ok!.ok);
      assert.equal(await store.balance(user), 1100);
      await assertReconciles(store);
    });

    it('withdrawal: refused without writing when the balance is short; pending → paid, or reversed', async () => {
      const user = await funded(300);
      assert.deepEqual(await store.withdraw({ reference: `w-${rand()}`, userId: user, amount: 301, now: 5 }), { ok: false, error: 'insufficient_balance' });
      assert.equal(await store.balance(user), 300);
      assert.equal((await store.entries(user, { limit: 10 })).length, 1);

      const r1 = `w-${rand()}`;
      const w1 = await store.withdraw({ reference: r1, userId: user, amount: 100, now: 6 });
      assert.ok(w1.ok && w1.status === 'pending' && w1.balance === 200);
      const paid = await store.settleWithdrawal(r1, 'paid', 7);
      assert.ok(paid.ok && paid.status === 'paid' && !paid.duplicate);
      assert.deepEqual(await store.settleWithdrawal(r1, 'reversed', 8), { ok: false, error: 'already_settled', status: 'paid' }, 'a settled withdrawal stays settled');
      assert.deepEqual(await store.settleWithdrawal(r1, 'paid', 8), { ok: false, error: 'already_settled', status: 'paid' });
      assert.equal(await store.balance(user), 200);

      const r2 = `w-${rand()}`;
      assert.ok((await store.withdraw({ reference: r2, userId: user, amount: 150, now: 9 })).ok);
      assert.equal(await store.balance(user), 50);
      const rev = await store.settleWithdrawal(r2, 'reversed', 10);
      assert.ok(rev.ok && rev.status === 'reversed' && rev.balance === 200);
      assert.deepEqual(await store.settleWithdrawal(`nope-${rand()}`, 'paid', 11), { ok: false, error: 'not_found' });
      await assertReconciles(store);
    });

    it('createPacket debits the sender into escrow in one transaction; refuses a short balance; idempotent per clientId', async () => {
      const sender = await funded(1500);
      const poor = newPacket(sender, { total: 1501 });
      assert.deepEqual(await store.createPacket(poor), { ok: false, error: 'insufficient_balance' });
      assert.equal(await store.getPacket(poor.id), null, 'nothing stored for a refused packet');
      assert.equal(await store.balance(sender), 1500);

      const np = newPacket(sender);
      const made = await store.createPacket(np);
      assert.ok(made.ok && !made.duplicate);
      assert.equal(made.packet.status, 'active');
      assert.equal(made.packet.remainingAmount, 1000);
      assert.equal(made.packet.remainingCount, 10);
      assert.equal(await store.balance(sender), 500);
      const again = await store.createPacket({ ...np, id: `rp${rand()}` });
      assert.ok(again.ok && again.duplicate && again.packet.id === np.id, 'same (sender, clientId) → the first packet');
      assert.equal(await store.balance(sender), 500, 'no second debit');
      await assertReconciles(store);
    });

    it('open: exact count, exact sum, one claim per user, claim order, finished at the last share', async () => {
      const sender = await funded(1000);
      const np = newPacket(sender, { total: 1000, count: 5 });
      assert.ok((await store.createPacket(np)).ok);
      const users = Array.from({ length: 7 }, () => `u${rand()}`);
      const now = np.createdAt + 1000;
      // Two users in one batch twice: the second of each pair is a second open.
      const out = await store.open([
        { packetId: np.id, userId: users[0]!, now },
        { packetId: np.id, userId: users[0]!, now },
        { packetId: np.id, userId: users[1]!, now },
      ]);
      const c0 = ok(out[0]!);
      assert.equal(c0.claim.seq, 1);
      assert.deepEqual(out[1], { ok: false, error: 'already_opened', claim: c0.claim });
      assert.equal(ok(out[2]!).claim.seq, 2);
      const rest = await store.open(users.slice(2).map((u) => ({ packetId: np.id, userId: u, now: now + 1 })));
      assert.equal(ok(rest[0]!).claim.seq, 3);
      assert.equal(ok(rest[1]!).claim.seq, 4);
      const last = ok(rest[2]!);
      assert.equal(last.claim.seq, 5);
      assert.equal(last.finished, true);
      assert.equal(last.remainingCount, 0);
      assert.equal(last.remainingAmount, 0);
      assert.deepEqual(rest[3], { ok: false, error: 'all_claimed' });
      assert.deepEqual(rest[4], { ok: false, error: 'all_claimed' });

      const claims = await store.claims(np.id);
      assert.deepEqual(
        claims.map((c) => c.seq),
        [1, 2, 3, 4, 5],
      );
      assert.equal(
        claims.reduce((s, c) => s + c.amount, 0),
        1000,
      );
      for (const c of claims) {
        assert.equal(await store.balance(c.user), c.amount, 'credited in the open transaction');
        assert.deepEqual(await store.claimOf(np.id, c.user), c);
      }
      assert.equal(await store.claimOf(np.id, users[6]!), null);
      const p = await store.getPacket(np.id);
      assert.equal(p!.status, 'finished');
      assert.ok(p!.endedAt !== null);
      assert.deepEqual(await store.open([{ packetId: `rp${rand()}`, userId: users[0]!, now }]), [{ ok: false, error: 'not_found' }]);
      await assertReconciles(store);
    });

    it('fixed split: every share equal', async () => {
      const sender = await funded(600);
      const np = newPacket(sender, { split: 'fixed', total: 600, count: 6 });
      assert.ok((await store.createPacket(np)).ok);
      const out = await store.open(Array.from({ length: 6 }, () => ({ packetId: np.id, userId: `u${rand()}`, now: np.createdAt })));
      assert.deepEqual(
        out.map((o) => ok(o).claim.amount),
        [100, 100, 100, 100, 100, 100],
      );
    });

    it('expiry: no open at or after expiresAt; expire refunds exactly the rest, once, only when due', async () => {
      const sender = await funded(1000);
      const np = newPacket(sender, { total: 1000, count: 4 });
      assert.ok((await store.createPacket(np)).ok);
      const a = ok((await store.open([{ packetId: np.id, userId: `u${rand()}`, now: np.expiresAt - 1 }]))[0]!);
      assert.deepEqual(await store.open([{ packetId: np.id, userId: `u${rand()}`, now: np.expiresAt }]), [{ ok: false, error: 'expired' }]);
      assert.equal(await store.expire(np.id, np.expiresAt - 1), null, 'not due yet');
      const r = await store.expire(np.id, np.expiresAt);
      assert.deepEqual(r, { refunded: 1000 - a.claim.amount, claimedCount: 1 });
      assert.equal(await store.expire(np.id, np.expiresAt + 1), null, 'only once');
      assert.equal(await store.balance(sender), 1000 - a.claim.amount);
      const p = await store.getPacket(np.id);
      assert.equal(p!.status, 'expired');
      assert.equal(p!.refunded, 1000 - a.claim.amount);
      assert.equal(p!.remainingAmount, 0);
      assert.deepEqual(await store.open([{ packetId: np.id, userId: `u${rand()}`, now: np.expiresAt - 10 }]), [{ ok: false, error: 'expired' }], 'expired status wins even with an early clock');

      const full = newPacket(sender, { total: 2, count: 2 });
      assert.ok((await store.createPacket(full)).ok);
      await store.open([
        { packetId: full.id, userId: `u${rand()}`, now: full.createdAt },
        { packetId: full.id, userId: `u${rand()}`, now: full.createdAt },
      ]);
      assert.equal(await store.expire(full.id, full.expiresAt + 1), null, 'a finished packet has nothing to refund');
      await assertReconciles(store, np.expiresAt + 1);
    });

    it('unposted packets: refundUnposted only before markPosted; duePackets finds what the sweeper must do', async () => {
      const sender = await funded(3000);
      const posted = newPacket(sender, { createdAt: 5_000, expiresAt: 9_000 });
      const unposted = newPacket(sender, { createdAt: 5_000, expiresAt: 10_000_000 });
      const late = newPacket(sender, { createdAt: 5_000, expiresAt: 10_000_000 });
      for (const p of [posted, unposted, late]) assert.ok((await store.createPacket(p)).ok);
      await store.markPosted(posted.id, 'm1');
      await store.markPosted(late.id, 'm2');
      assert.equal(await store.refundUnposted(posted.id, 6_000), null);
      const due = await store.duePackets(9_000, 6_000, 1000);
      const ids = new Set(due.map((p) => p.id));
      assert.ok(ids.has(posted.id), 'expired active packet is due');
      assert.ok(ids.has(unposted.id), 'unposted old packet is due');
      assert.ok(!ids.has(late.id), 'posted, unexpired packet is not due');
      assert.deepEqual(await store.refundUnposted(unposted.id, 6_000), { refunded: 1000 });
      assert.equal(await store.refundUnposted(unposted.id, 6_001), null);
      assert.ok((await store.expire(posted.id, 9_000)) !== null);
      const ended = await store.duePackets(9_000, 0, 1000);
      assert.ok(ended.some((p) => p.id === posted.id && !p.statusPosted), 'an ended packet waits for its status message');
      await store.markStatusPosted([posted.id, unposted.id]);
      const after2 = await store.duePackets(9_000, 0, 1000);
      assert.ok(!after2.some((p) => p.id === posted.id || p.id === unposted.id));
      assert.equal(await store.balance(sender), 3000 - 1000);
      await assertReconciles(store, 9_000);
    });

    it('reconciliation notices a tampered balance, a one-sided entry and over-claimed packet', async () => {
      const user = await funded(100);
      await assertReconciles(store);
      await fx.exec(`UPDATE wallet_accounts SET balance = balance + 1 WHERE id = 'u:${user}'`);
      let report = await store.reconcile(2_000_000);
      assert.equal(report.ok, false);
      assert.equal(report.checks.find((c) => c.name === 'balances_match_entries')!.ok, false);
      assert.equal(report.checks.find((c) => c.name === 'money_conserved')!.ok, false);
      await fx.exec(`UPDATE wallet_accounts SET balance = balance - 1 WHERE id = 'u:${user}'`);
      await assertReconciles(store);

      await fx.exec(`INSERT INTO ledger_entries (tx_id, account, amount, kind, ref, at) VALUES ('forged-${user}', 'u:${user}', 5, 'topup', 'x', 1)`);
      report = await store.reconcile(2_000_000);
      assert.equal(report.checks.find((c) => c.name === 'transactions_balance')!.ok, false);
      await fx.exec(`DELETE FROM ledger_entries WHERE tx_id = 'forged-${user}'`);
      await assertReconciles(store);

      const sender = await funded(10);
      const np = newPacket(sender, { total: 10, count: 2 });
      assert.ok((await store.createPacket(np)).ok);
      await fx.exec(`INSERT INTO red_packet_claims (packet_id, user_id, amount, seq, at) VALUES ('${np.id}', 'ghost', 3, 1, 1)`);
      report = await store.reconcile(2_000_000);
      assert.equal(report.checks.find((c) => c.name === 'packets_add_up')!.ok, false);
      await fx.exec(`DELETE FROM red_packet_claims WHERE packet_id = '${np.id}'`);

      await fx.exec(`UPDATE red_packets SET expires_at = 1 WHERE id = '${np.id}'`);
      report = await store.reconcile(2_000_000);
      assert.equal(report.checks.find((c) => c.name === 'nothing_stranded')!.ok, false, 'an active packet long past expiry is stranded money');
      assert.ok(await store.expire(np.id, 2_000_000));
      await assertReconciles(store);
    });
  });
}
