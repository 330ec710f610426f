/**
 * Issue 9: 2 000 clients grab and some never open → every share is claimed or refunded at
 * expiry, none stranded, the ledger reconciles. Under a manual clock, so hold expiry and
 * packet expiry are exact; the store is a real SQLite file.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedPacketStatusBody, type GrabResult } from '@magpie/protocol';
import type { SqlWalletStore } from '../src/wallet/sql-wallet-store.ts';
import { sqliteWallet } from './sql-engines.ts';
import { seededUniform } from '../src/wallet/split.ts';
import { assertReconciles } from './wallet-store-contract.ts';
import { ManualClock, makeService, principal, TEST_OPTIONS } from './redpacket-helpers.ts';

const CLIENTS = 2000;
const SHARES = 200;
const TOTAL = 88_888;
const HOLD = TEST_OPTIONS.grabHoldMs;

describe('red packets: 2 000 clients grab, some never open', () => {
  let dir: string;
  let wallet: SqlWalletStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'magpie-rp-ghost-'));
    wallet = await sqliteWallet(join(dir, 'magpie.db'));
  });
  after(async () => {
    await wallet.close();
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * Rounds of concurrent grabs. A client that is `busy` grabs again next round; between
   * rounds the clock moves by the hold time, so unopened holds lapse. A "ghost" that is
   * admitted never opens; an "opener" that is admitted opens at once.
   */
  async function run(tag: string, isOpener: (i: number) => boolean) {
    const clock = new ManualClock();
    const { members, poster, service } = makeService(wallet, {}, clock);
    const sender = `sender-${tag}`;
    const clients = Array.from({ length: CLIENTS }, (_, i) => `${tag}-${i}`);
    members.group(`g:${tag}`, [sender, ...clients]);
    await wallet.topUp({ reference: `seed-${tag}`, userId: sender, amount: TOTAL, now: clock.now() });
    const { packet } = await service.send(principal(sender), { clientMsgId: tag, conv: `g:${tag}`, split: 'random', total: TOTAL, count: SHARES });

    let waiting = clients.map((c, i) => ({ c, opener: isOpener(i) }));
    const claimedBy = new Map<string, number>();
    let admittedGhosts = 0;
    let busyAnswers = 0;
    let allClaimedAtOpen = 0;
    let rounds = 0;
    while (waiting.length > 0 && clock.now() < packet.expiresAt) {
      rounds++;
      const answers: GrabResult[] = await Promise.all(waiting.map(({ c }) => service.grab(c, packet.id)));
      const next: typeof waiting = [];
      const opens: Promise<void>[] = [];
      answers.forEach((a, k) => {
        const w = waiting[k]!;
        if (a.result === 'busy') {
          busyAnswers++;
          // Never stranded: "busy" only while the live holds cover every share left (plus slack).
          const st = service.filter.state(packet.id)!;
          assert.ok(service.filter.holdsOf(packet.id, clock.now()) >= st.remaining, 'busy only while every share left is held');
          next.push(w);
        } else if (a.result === 'admitted') {
          if (!w.opener) {
            admittedGhosts++;
            return;
          }
          opens.push(
            service.open(w.c, packet.id).then((o) => {
              if (o.result === 'claimed') claimedBy.set(w.c, o.amount);
              else if (o.result === 'all_claimed') allClaimedAtOpen++;
              else assert.fail(`unexpected open answer ${JSON.stringify(o)}`);
            }),
          );
        } else {
          assert.ok(a.result === 'all_claimed' || a.result === 'expired', `unexpected grab answer ${JSON.stringify(a)}`);
        }
      });
      await Promise.all(opens);
      waiting = next;
      clock.advance(HOLD);
    }
    return { clock, poster, service, packet, sender, claimedBy, admittedGhosts, busyAnswers, allClaimedAtOpen, rounds };
  }

  it('enough openers: the ghosts\' shares go to later grabbers once their holds lapse — all 200 claimed, nothing refunded', async () => {
    const coin = seededUniform(42);
    const r = await run('ghosts-a', () => coin() % 4n !== 0n); // about a quarter never open
    assert.ok(r.admittedGhosts > 20, `ghosts held shares (${r.admittedGhosts})`);
    assert.ok(r.busyAnswers > 1000, `latecomers were turned away cheaply (${r.busyAnswers} busy answers)`);
    assert.ok(r.rounds >= 2, 'shares held by ghosts came back after the hold time');
    assert.equal(r.claimedBy.size, SHARES, 'every share claimed');
    const p = await wallet.getPacket(r.packet.id);
    assert.equal(p!.status, 'finished');
    assert.equal(p!.remainingAmount, 0);
    assert.equal(
      [...r.claimedBy.values()].reduce((s, a) => s + a, 0),
      TOTAL,
    );
    const claims = await wallet.claims(r.packet.id);
    assert.equal(claims.length, SHARES);
    assert.ok(claims.every((c) => r.claimedBy.get(c.user) === c.amount));
    // The packet finished long before expiry; the sweeper finds nothing to refund.
    r.clock.advance(24 * 3600_000);
    const s = await r.service.sweep();
    assert.equal(s.refunded, 0);
    assert.equal(await wallet.balance(r.sender), 0);
    await assertReconciles(wallet, r.clock.now());
  });

  it('too few openers: what nobody opened goes back to the sender at expiry — claims + refund = total', async () => {
    const openers = new Set(Array.from({ length: 120 }, (_, k) => k * 16 + 3)); // 120 of 2 000 ever open
    const r = await run('ghosts-b', (i) => openers.has(i));
    assert.equal(r.claimedBy.size, 120, 'every opener got a share');
    assert.ok(r.admittedGhosts >= CLIENTS - 120 - 10, `nearly every ghost was admitted at some point (${r.admittedGhosts})`);
    const before = await wallet.getPacket(r.packet.id);
    assert.equal(before!.status, 'active');
    assert.equal(before!.remainingCount, SHARES - 120);

    r.clock.t = r.packet.expiresAt;
    const s = await r.service.sweep();
    const claimed = [...r.claimedBy.values()].reduce((a, b) => a + b, 0);
    assert.equal(s.expired, 1);
    assert.equal(s.refunded, TOTAL - claimed);
    const p = await wallet.getPacket(r.packet.id);
    assert.equal(p!.status, 'expired');
    assert.equal(p!.remainingAmount, 0, 'nothing left in escrow');
    assert.equal(p!.refunded + claimed, TOTAL, 'claims + refund = total');
    assert.equal(await wallet.balance(r.sender), TOTAL - claimed, 'the sender got the rest back');
    const status = r.poster.ofKind('redpacket.status');
    assert.equal(status.length, 1);
    const body = RedPacketStatusBody.parse(status[0]!.body);
    assert.deepEqual(body, { packetId: r.packet.id, status: 'expired', claimedCount: 120, claimedAmount: claimed, refunded: TOTAL - claimed, bestLuck: null });
    await assertReconciles(wallet, r.clock.now());
    const report = await wallet.reconcile(r.clock.now());
    assert.equal(report.totals.activePackets, 0, 'no packet left active: nothing stranded');
  });
});
