/**
 * RedPacketService on the SQLite wallet store, with in-memory membership and poster:
 * send, grab, open, claim list, best luck, expiry, failed announcements, and every refusal
 * issue 5 lists.
 */
import { beforeEach, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MagpieError, RedPacketStatusBody } from '@magpie/protocol';
import type { SqlWalletStore } from '../src/wallet/sql-wallet-store.ts';
import { sqliteWallet } from './sql-engines.ts';
import type { RedPacketService } from '../src/wallet/redpacket-service.ts';
import { assertReconciles } from './wallet-store-contract.ts';
import { FakeMembers, FakePoster, ManualClock, expectMagpieError, makeService, principal } from './redpacket-helpers.ts';

describe('red packets: service', () => {
  let wallet: SqlWalletStore;
  let clock: ManualClock;
  let members: FakeMembers;
  let poster: FakePoster;
  let service: RedPacketService;
  const group = 'g:family';
  const users = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];

  const setup = (over: Parameters<typeof makeService>[1] = {}) => {
    ({ members, poster, service } = makeService(wallet, over, clock));
    members.group(group, users);
    members.users.add('outsider');
  };

  beforeEach(async () => {
    wallet = await sqliteWallet();
    clock = new ManualClock();
    setup();
    await wallet.topUp({ reference: 'seed-alice', userId: 'alice', amount: 100_000, now: clock.now() });
  });
  afterEach(async () => {
    await service.stop();
    await wallet.close();
  });

  const send = (over: Record<string, unknown> = {}, who = 'alice') =>
    service.send(principal(who), { clientMsgId: `c${Math.random()}`, conv: group, split: 'random', total: 1000, count: 5, greeting: 'Happy new year', ...over });

  it('send: debits the sender into escrow and posts a redpacket message (idempotent per clientMsgId)', async () => {
    const out = await send({ clientMsgId: 'cny-1' });
    assert.equal(out.packet.status, 'active');
    assert.equal(out.packet.total, 1000);
    assert.equal(out.packet.remainingCount, 5);
    assert.equal(out.packet.expiresAt, clock.now() + 24 * 3600_000, 'default expiry 24 h');
    assert.equal(await wallet.balance('alice'), 99_000);
    const msgs = poster.ofKind('redpacket');
    assert.equal(msgs.length, 1);
    assert.equal(msgs[0]!.clientMsgId, `rp:${out.packet.id}`);
    assert.deepEqual(msgs[0]!.body, {
      packetId: out.packet.id,
      split: 'random',
      count: 5,
      total: 1000,
      greeting: 'Happy new year',
      exclusiveTo: null,
      expiresAt: out.packet.expiresAt,
    });
    assert.equal(out.packet.messageId, msgs[0]!.id);

    const again = await send({ clientMsgId: 'cny-1' });
    assert.equal(again.duplicate, true);
    assert.equal(again.packet.id, out.packet.id);
    assert.equal(again.message!.id, msgs[0]!.id);
    assert.equal(await wallet.balance('alice'), 99_000, 'a retried send does not debit twice');
    assert.equal(poster.ofKind('redpacket').length, 1);
  });

  it('grab → open: credits the claimer in the open; claim list with amounts and times; best luck; status message for everyone', async () => {
    const { packet } = await send({ total: 1000, count: 3 });
    const claimers = ['bob', 'carol', 'dave'];
    for (const u of claimers) {
      const g = await service.grab(u, packet.id);
      assert.equal(g.result, 'admitted');
      clock.advance(1000);
      const o = await service.open(u, packet.id);
      assert.equal(o.result, 'claimed');
      if (o.result === 'claimed') assert.equal(await wallet.balance(u), o.amount);
    }
    const details = await service.details('erin', packet.id);
    assert.equal(details.packet.status, 'finished');
    assert.deepEqual(
      details.claims.map((c) => c.user),
      claimers,
    );
    assert.equal(
      details.claims.reduce((s, c) => s + c.amount, 0),
      1000,
    );
    assert.ok(details.claims.every((c, i) => c.seq === i + 1 && c.at > packet.createdAt));
    const max = Math.max(...details.claims.map((c) => c.amount));
    assert.equal(details.bestLuck!.user, details.claims.find((c) => c.amount === max)!.user, 'best luck: largest, earliest on ties');
    // The status message is posted right after the last open.
    await new Promise((r) => setTimeout(r, 20));
    const status = poster.ofKind('redpacket.status');
    assert.equal(status.length, 1);
    const body = RedPacketStatusBody.parse(status[0]!.body);
    assert.equal(body.status, 'finished');
    assert.equal(body.claimedCount, 3);
    assert.equal(body.claimedAmount, 1000);
    assert.equal(body.refunded, 0);
    assert.deepEqual(body.bestLuck, { user: details.bestLuck!.user, amount: details.bestLuck!.amount });
    assert.equal(status[0]!.conv, group);
    assert.equal((await service.grab('erin', packet.id)).result, 'all_claimed');
    assert.deepEqual(await service.open('erin', packet.id), { result: 'all_claimed' });
    await assertReconciles(wallet, clock.now());
  });

  it('best luck ties go to the earliest claim (fixed split)', async () => {
    const { packet } = await send({ split: 'fixed', total: undefined, amount: 50, count: 3 });
    for (const u of ['carol', 'bob', 'dave']) assert.equal((await service.open(u, packet.id)).result, 'claimed');
    const d = await service.details('alice', packet.id);
    assert.deepEqual(
      d.claims.map((c) => c.amount),
      [50, 50, 50],
    );
    assert.equal(d.bestLuck!.user, 'carol');
  });

  it('"grabbed, then all claimed at open" is a normal answer', async () => {
    const { packet } = await send({ total: 10, count: 1 });
    // 1 share + overAdmitMin 2: three grabbers are admitted.
    for (const u of ['bob', 'carol', 'dave']) assert.equal((await service.grab(u, packet.id)).result, 'admitted');
    assert.equal((await service.grab('erin', packet.id)).result, 'busy');
    const results = await Promise.all(['bob', 'carol', 'dave'].map((u) => service.open(u, packet.id)));
    assert.equal(results.filter((r) => r.result === 'claimed').length, 1);
    assert.equal(results.filter((r) => r.result === 'all_claimed').length, 2);
    assert.equal((await service.grab('erin', packet.id)).result, 'all_claimed');
  });

  it('holds expire: a grabber who never opens blocks a share for grabHoldMs at most', async () => {
    setup({ overAdmitRatio: 0, overAdmitMin: 0, grabHoldMs: 5000 });
    const { packet } = await send({ total: 20, count: 2 });
    assert.equal((await service.grab('bob', packet.id)).result, 'admitted');
    assert.equal((await service.grab('carol', packet.id)).result, 'admitted');
    const busy = await service.grab('dave', packet.id);
    assert.equal(busy.result, 'busy');
    if (busy.result === 'busy') assert.equal(busy.retryAfterMs, 5000);
    clock.advance(2000);
    assert.equal((await service.open('bob', packet.id)).result, 'claimed');
    clock.advance(3000); // carol's hold has expired unopened
    assert.equal((await service.grab('dave', packet.id)).result, 'admitted');
    assert.equal((await service.open('dave', packet.id)).result, 'claimed');
    // carol comes back: the open is authoritative, and the packet is empty.
    assert.deepEqual(await service.open('carol', packet.id), { result: 'all_claimed' });
  });

  it('exclusive packet: only the recipient opens; count must be 1', async () => {
    await expectMagpieError(send({ exclusiveTo: 'bob', count: 2 }), 'invalid');
    await expectMagpieError(send({ exclusiveTo: 'outsider', count: 1 }), 'invalid');
    await expectMagpieError(send({ exclusiveTo: 'alice', count: 1 }), 'invalid');
    const { packet } = await send({ exclusiveTo: 'bob', count: 1, total: 888 });
    await expectMagpieError(service.grab('carol', packet.id), 'forbidden', 'exclusive');
    await expectMagpieError(service.open('carol', packet.id), 'forbidden', 'exclusive');
    assert.deepEqual(await service.open('bob', packet.id), { result: 'claimed', amount: 888, seq: 1, remainingCount: 0 });
  });

  it('1:1 packet: posted to the peer; the sender cannot open it', async () => {
    const { packet, message } = await service.send(principal('alice'), { clientMsgId: 'd1', to: 'bob', split: 'random', total: 520, count: 1 });
    assert.equal(packet.conv, 'd:alice:bob');
    assert.equal(message!.conv, 'd:alice:bob');
    await expectMagpieError(service.open('alice', packet.id), 'forbidden', 'own_packet');
    await expectMagpieError(service.open('carol', packet.id), 'forbidden', 'not_member');
    assert.equal((await service.open('bob', packet.id)).result, 'claimed');
    assert.equal(await wallet.balance('bob'), 520);
    await expectMagpieError(service.send(principal('alice'), { clientMsgId: 'd2', to: 'bob', split: 'random', total: 520, count: 2 }), 'invalid');
    await expectMagpieError(service.send(principal('alice'), { clientMsgId: 'd3', to: 'alice', split: 'random', total: 5, count: 1 }), 'invalid');
    await expectMagpieError(service.send(principal('alice'), { clientMsgId: 'd4', to: 'nobody', split: 'random', total: 5, count: 1 }), 'not_found');
  });

  describe('refusals', () => {
    it('a non-member grabs, opens or reads', async () => {
      const { packet } = await send();
      await expectMagpieError(service.grab('outsider', packet.id), 'forbidden', 'not_member');
      await expectMagpieError(service.open('outsider', packet.id), 'forbidden', 'not_member');
      await expectMagpieError(service.details('outsider', packet.id), 'forbidden');
      await expectMagpieError(service.grab('bob', 'rp-nope'), 'not_found');
      assert.equal((await wallet.claims(packet.id)).length, 0);
    });

    it('a non-member sends into a group; an unknown conversation', async () => {
      await wallet.topUp({ reference: 'o', userId: 'outsider', amount: 5000, now: 1 });
      await expectMagpieError(send({}, 'outsider'), 'forbidden');
      await expectMagpieError(send({ conv: 'g:nope' }), 'not_found');
      assert.equal(await wallet.balance('outsider'), 5000);
    });

    it('a second open', async () => {
      const { packet } = await send();
      const first = await service.open('bob', packet.id);
      assert.equal(first.result, 'claimed');
      const err = await expectMagpieError(service.open('bob', packet.id), 'conflict', 'already_opened');
      assert.equal((err.details as { amount: number }).amount, first.result === 'claimed' ? first.amount : -1);
      assert.equal((await service.grab('bob', packet.id)).result, 'opened');
      // The database refuses it too, even when this node's memory does not know the claim.
      const fresh = makeService(wallet, {}, clock);
      fresh.members.group(group, users);
      await expectMagpieError(fresh.service.open('bob', packet.id), 'conflict', 'already_opened');
      assert.equal((await wallet.claims(packet.id)).length, 1);
      assert.equal(await wallet.balance('bob'), first.result === 'claimed' ? first.amount : -1);
    });

    it('an open after expiry (before and after the sweeper ran)', async () => {
      const { packet } = await send({ total: 1000, count: 5 });
      assert.equal((await service.grab('bob', packet.id)).result, 'admitted');
      clock.advance(24 * 3600_000);
      await expectMagpieError(service.open('bob', packet.id), 'forbidden', 'expired');
      assert.equal((await service.grab('carol', packet.id)).result, 'expired');
      await service.sweep();
      await expectMagpieError(service.open('carol', packet.id), 'forbidden', 'expired');
      const fresh = makeService(wallet, {}, clock);
      fresh.members.group(group, users);
      await expectMagpieError(fresh.service.open('dave', packet.id), 'forbidden', 'expired');
      assert.equal(await wallet.balance('alice'), 100_000, 'everything refunded');
    });

    it('insufficient balance', async () => {
      await expectMagpieError(send({ total: 100_001 }), 'forbidden', 'insufficient_balance');
      await expectMagpieError(send({ total: 1000, count: 1 }, 'bob'), 'forbidden', 'insufficient_balance');
      assert.equal(await wallet.balance('alice'), 100_000);
      assert.equal(poster.posts.length, 0);
    });

    it('zero, negative and fractional amounts and counts', async () => {
      for (const bad of [{ total: 0 }, { total: -5 }, { total: 10.5 }, { count: 0 }, { count: -1 }, { count: 2.5 }, { split: 'fixed', total: undefined, amount: 0 }, { split: 'fixed', total: undefined, amount: -3 }]) {
        await expectMagpieError(send(bad), 'invalid');
      }
      assert.equal(await wallet.balance('alice'), 100_000);
    });

    it('a count above the limit; a total above the limit', async () => {
      const err = await expectMagpieError(send({ count: 201, total: 10_000 }), 'invalid', 'count_above_limit');
      assert.match(err.message, /200/);
      await expectMagpieError(send({ split: 'fixed', total: undefined, amount: 1_000_000, count: 3 }), 'invalid', 'total_above_limit');
    });

    it('a total below count × 1 fen', async () => {
      await expectMagpieError(send({ total: 4, count: 5 }), 'invalid', 'total_below_count');
      const ok = await send({ total: 5, count: 5 });
      assert.equal(ok.packet.total, 5);
    });
  });

  describe('expiry and failed announcements', () => {
    it('expiry refunds the rest to the sender and tells the conversation', async () => {
      const { packet } = await send({ total: 1000, count: 5 });
      const a = await service.open('bob', packet.id);
      const b = await service.open('carol', packet.id);
      const claimed = (a.result === 'claimed' ? a.amount : 0) + (b.result === 'claimed' ? b.amount : 0);
      clock.advance(24 * 3600_000 - 1);
      assert.deepEqual(await service.sweep(), { expired: 0, refunded: 0, posted: 0, announced: 0 });
      clock.advance(1);
      const s = await service.sweep();
      assert.equal(s.expired, 1);
      assert.equal(s.refunded, 1000 - claimed);
      assert.equal(await wallet.balance('alice'), 100_000 - claimed);
      const status = poster.ofKind('redpacket.status');
      assert.equal(status.length, 1);
      assert.deepEqual(status[0]!.body, { packetId: packet.id, status: 'expired', claimedCount: 2, claimedAmount: claimed, refunded: 1000 - claimed, bestLuck: null });
      assert.deepEqual(await service.sweep(), { expired: 0, refunded: 0, posted: 0, announced: 0 }, 'nothing twice');
      const d = await service.details('dave', packet.id);
      assert.equal(d.packet.status, 'expired');
      assert.equal(d.packet.refunded, 1000 - claimed);
      assert.equal(d.claims.length, 2);
      await assertReconciles(wallet, clock.now());
    });

    it('a post that keeps failing is retried by the sweeper; a refused post refunds at once', async () => {
      poster.failNext = 3; // every attempt inside send
      await expectMagpieError(send({ clientMsgId: 'flaky', total: 300 }), 'unavailable');
      assert.equal(await wallet.balance('alice'), 99_700, 'paid, waiting to be posted');
      clock.advance(30_001);
      const s = await service.sweep();
      assert.equal(s.posted, 1);
      const msgs = poster.ofKind('redpacket');
      assert.equal(msgs.length, 1);
      const again = await send({ clientMsgId: 'flaky', total: 300 });
      assert.equal(again.duplicate, true);
      assert.equal(again.packet.messageId, msgs[0]!.id);

      poster.failNext = 1;
      poster.failWith = () => new MagpieError('forbidden', 'not a member of this conversation');
      await expectMagpieError(send({ clientMsgId: 'left', total: 400 }), 'forbidden');
      assert.equal(await wallet.balance('alice'), 99_700, 'refunded at once');
      await expectMagpieError(send({ clientMsgId: 'left', total: 400 }), 'forbidden', 'refunded');
      await assertReconciles(wallet, clock.now());
    });

    it('a packet that cannot be posted for postGiveUpMs is refunded', async () => {
      poster.failNext = 1000;
      await expectMagpieError(send({ total: 700 }), 'unavailable');
      clock.advance(30_001);
      assert.equal((await service.sweep()).refunded, 0);
      clock.advance(600_000);
      assert.equal((await service.sweep()).refunded, 700);
      assert.equal(await wallet.balance('alice'), 100_000);
      assert.equal(poster.ofKind('redpacket.status').length, 0, 'no status for a packet nobody saw');
      await assertReconciles(wallet, clock.now());
    });
  });
});
