/**
 * The SDK's WalletApi and RedPacketWatch against the real server process (SQLite): PIN,
 * sandbox top-up and withdrawal, red packets sent into a group (random and equal split) and
 * 1:1, opened by members, live claim events to the sender, details with best luck, expiry
 * with the refund, statements with paging, and a typed error for every refusal.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, registerAndLogin, type Account, type ServerProcess } from './harness.ts';
import { RestApi } from '../../sdk/src/rest.ts';
import { GroupsApi } from '../../sdk/src/groups.ts';
import { WalletApi, WalletError, RedPacketWatch, type RedPacketEvents } from '../../sdk/src/wallet.ts';
import { sdkClient, eventually } from './sdk-client.ts';

const EXPIRY_MS = 3_000;

async function refusal(p: Promise<unknown>, reason: string): Promise<WalletError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof WalletError, `expected a WalletError, got ${String(err)}`);
    assert.equal(err.reason, reason, err.message);
    return err;
  }
  assert.fail(`expected a refusal (${reason})`);
}

describe('SDK wallet and red packets against the real server', () => {
  let srv: ServerProcess;
  let rest: RestApi;
  const cfgDir = mkdtempSync(join(tmpdir(), 'magpie-wallet-cfg-'));
  before(async () => {
    const cfg = join(cfgDir, 'magpie.config.json');
    writeFileSync(cfg, JSON.stringify({ redPackets: { expiryMs: EXPIRY_MS, sweepIntervalMs: 100 }, payments: { pinMaxTries: 3 } }));
    srv = await startServer({ env: { MAGPIE_CONFIG: cfg, MAGPIE_IP_RATE: '100000', MAGPIE_IP_BURST: '100000' } });
    rest = new RestApi({ baseUrl: srv.url });
  });
  after(async () => {
    await srv.stop();
  });

  const wallet = (a: Account) => new WalletApi(rest, a.token);

  it('Ann tops up, sends 3 random shares into a group with her PIN; Bob and Cat open; the sender sees claims live; expiry refunds the rest', async () => {
    const [ann, bob, cat, eve] = await Promise.all([registerAndLogin(srv.url), registerAndLogin(srv.url), registerAndLogin(srv.url), registerAndLogin(srv.url)]);
    const A = wallet(ann);
    const B = wallet(bob);
    const C = wallet(cat);
    const group = await new GroupsApi(rest, ann.token).create({ name: 'Family', members: [bob.userId, cat.userId] });

    // No PIN yet: sending is refused before any money moves.
    assert.deepEqual(await A.pinStatus(), { set: false, required: true, lockedUntil: null, triesLeft: 3 });
    const top = await A.topUp(1_000);
    assert.equal(top.payment.status, 'done');
    assert.equal(top.payment.provider, 'sandbox');
    assert.equal(top.balance, 1_000);
    await refusal(A.sendRedPacket({ conv: group.conv, split: 'random', amount: 1_000, count: 3, greeting: 'Happy new year' }), 'pin_not_set');
    await refusal(A.setPin('12a456'), 'invalid');
    await A.setPin('135790');
    await refusal(A.setPin('111111'), 'pin_already_set');
    const wrong = await refusal(A.sendRedPacket({ conv: group.conv, split: 'random', amount: 1_000, count: 3, pin: '000000' }), 'pin_wrong');
    assert.equal(wrong.triesLeft, 2);
    await refusal(A.sendRedPacket({ conv: group.conv, split: 'random', amount: 2_000, count: 3, pin: '135790' }), 'insufficient_balance');
    await refusal(new WalletApi(rest, eve.token).sendRedPacket({ conv: group.conv, split: 'random', amount: 1, count: 1 }), 'not_member');
    assert.equal(await A.balance(), 1_000);

    // Ann's device watches live events.
    const client = sdkClient({ baseUrl: srv.url, token: ann.token });
    const watch = new RedPacketWatch(A, client);
    const claimed: RedPacketEvents['claimed'][] = [];
    const ended: RedPacketEvents['ended'][] = [];
    const packets: RedPacketEvents['packet'][] = [];
    watch.on('claimed', (e) => claimed.push(e));
    watch.on('ended', (e) => ended.push(e));
    watch.on('packet', (e) => packets.push(e));
    await client.connect();
    try {
      const sent = await A.sendRedPacket({ conv: group.conv, split: 'random', amount: 1_000, count: 3, greeting: 'Happy new year', pin: '135790' });
      const id = sent.packet.id;
      assert.equal(sent.packet.total, 1_000);
      assert.equal(sent.packet.count, 3);
      assert.equal(await A.balance(), 0);
      watch.watch(id);

      const b = await B.openRedPacket(id);
      const c = await C.openRedPacket(id);
      assert.ok(b.amount >= 1 && c.amount >= 1 && b.amount + c.amount <= 999, 'two shares leave at least 1 fen for the third');
      assert.equal(c.remainingCount, 1);
      const again = await refusal(B.openRedPacket(id), 'already_opened');
      assert.equal(again.amount, b.amount);
      await refusal(new WalletApi(rest, eve.token).openRedPacket(id), 'not_member');
      await refusal(new WalletApi(rest, eve.token).redPacket(id), 'not_member');

      await eventually(() => claimed.length === 2, 'two live claim events');
      assert.deepEqual(claimed.map((e) => [e.user, e.amount]).sort(), [[bob.userId, b.amount], [cat.userId, c.amount]].sort());
      await eventually(() => packets.some((p) => p.packetId === id), 'the redpacket message event');

      const d = await C.redPacket(id);
      assert.deepEqual(d.claims.map((x) => [x.user, x.amount, x.seq]), [[bob.userId, b.amount, 1], [cat.userId, c.amount, 2]]);
      assert.equal(d.bestLuck, null, 'no best luck before it is finished');
      assert.equal(d.packet.remainingAmount, 1_000 - b.amount - c.amount);

      // Expiry: the rest goes back to Ann and the status message ends it for everyone.
      await eventually(() => ended.some((e) => e.packetId === id), 'the expiry status message', EXPIRY_MS + 10_000);
      const end = ended.find((e) => e.packetId === id)!;
      assert.equal(end.body.status, 'expired');
      assert.equal(end.body.refunded, 1_000 - b.amount - c.amount);
      await refusal(new WalletApi(rest, (await registerAndLogin(srv.url)).token).openRedPacket(id), 'not_member');
      await eventually(() => watch.details(id)?.packet.status === 'expired', 'the watched details refreshed');

      assert.equal(await A.balance(), 1_000 - b.amount - c.amount);
      assert.equal(await B.balance(), b.amount);
      const annKinds = (await A.statement()).entries.map((e) => `${e.kind}:${e.amount}`);
      assert.deepEqual(annKinds, [`rp_refund:${1_000 - b.amount - c.amount}`, 'rp_send:-1000', 'topup:1000']);
      const bobKinds = (await B.statement()).entries.map((e) => `${e.kind}:${e.amount}:${e.ref}`);
      assert.deepEqual(bobKinds, [`rp_claim:${b.amount}:${id}`]);
      // Paging: one entry per page.
      const p1 = await A.statement({ limit: 1 });
      const p2 = await A.statement({ limit: 1, before: p1.next! });
      const p3 = await A.statement({ limit: 1, before: p2.next! });
      const p4 = await A.statement({ limit: 1, before: p3.next! });
      assert.deepEqual([...p1.entries, ...p2.entries, ...p3.entries].map((e) => e.kind), ['rp_refund', 'rp_send', 'topup']);
      assert.deepEqual(p4, { entries: [], next: null });
    } finally {
      watch.dispose();
      await client.close();
    }
  });

  it('equal split: all claimed with best luck; muted and locked PIN refused; reset with the password; withdraw through the sandbox', async () => {
    const [ann, bob, cat, dan] = await Promise.all([registerAndLogin(srv.url), registerAndLogin(srv.url), registerAndLogin(srv.url), registerAndLogin(srv.url)]);
    const A = wallet(ann);
    const groups = new GroupsApi(rest, ann.token);
    const group = await groups.create({ name: 'Team', members: [bob.userId, cat.userId, dan.userId] });
    await A.setPin('246810');
    await A.topUp(10_000);

    const eq = await A.sendRedPacket({ conv: group.conv, split: 'equal', amount: 150, count: 2, greeting: 'lunch', pin: '246810' });
    assert.equal(eq.packet.total, 300);
    assert.equal((await wallet(bob).openRedPacket(eq.packet.id)).amount, 150);
    assert.equal((await wallet(cat).openRedPacket(eq.packet.id)).amount, 150);
    await refusal(wallet(dan).openRedPacket(eq.packet.id), 'all_claimed');
    const d = await wallet(dan).redPacket(eq.packet.id);
    assert.equal(d.packet.status, 'finished');
    assert.equal(d.bestLuck?.user, bob.userId, 'a tie goes to the earliest claim');

    // 1:1: one share, only the peer can open it.
    const dm = await A.sendRedPacket({ to: bob.userId, split: 'random', amount: 88, count: 1, pin: '246810' });
    await refusal(A.openRedPacket(dm.packet.id), 'own_packet');
    assert.equal((await wallet(bob).openRedPacket(dm.packet.id)).amount, 88);
    await refusal(A.sendRedPacket({ to: bob.userId, split: 'random', amount: 100, count: 2, pin: '246810' }), 'invalid');

    // Muted in the group: refused before money moves, and no PIN try is spent.
    await groups.mute(group.conv, bob.userId, 60_000);
    const B = wallet(bob);
    await B.setPin('112233');
    await refusal(B.sendRedPacket({ conv: group.conv, split: 'random', amount: 10, count: 1, pin: '000000' }), 'muted');
    assert.equal((await B.pinStatus()).triesLeft, 3);

    // Three wrong PINs lock it; the right one is refused while locked; the account password resets it.
    const before = await A.balance();
    await refusal(A.withdraw(100, '000000'), 'pin_wrong');
    await refusal(A.withdraw(100, '000001'), 'pin_wrong');
    const locked = await refusal(A.withdraw(100, '000002'), 'pin_locked');
    assert.ok(locked.lockedUntil! > Date.now());
    await refusal(A.sendRedPacket({ conv: group.conv, split: 'random', amount: 10, count: 1, pin: '246810' }), 'pin_locked');
    assert.equal((await A.pinStatus()).lockedUntil, locked.lockedUntil);
    await refusal(A.resetPin('not my password', '975310'), 'bad_password');
    const reset = await A.resetPin('correct horse', '975310');
    assert.deepEqual(reset, { set: true, required: true, lockedUntil: null, triesLeft: 3 });
    assert.equal(await A.balance(), before, 'refusals moved no money');

    const out = await A.withdraw(1_000, '975310', 'wd-1');
    assert.equal(out.payment.status, 'paid');
    assert.equal(out.balance, before - 1_000);
    assert.equal((await A.withdraw(1_000, '975310', 'wd-1')).duplicate, true);
    await refusal(A.withdraw(1_000_000, '975310'), 'insufficient_balance');
    const pays = await A.payments();
    assert.deepEqual(pays.map((p) => `${p.kind}:${p.status}`).slice(0, 2), ['withdraw:failed', 'withdraw:paid']);
  });
});
