import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, registerAndLogin, login, RawClient, pullAll, api, sleep, type ServerProcess, type Account } from './harness.ts';

/**
 * Group delivered counts end to end (raw protocol, real server process): the sender's two
 * devices see a message's count rise as members' devices ACK (a member with two devices
 * counts once), counts are coalesced per conversation and flush, and a sender device that
 * was offline learns the counts through `sync` and `history`.
 */
describe('group delivered counts end to end', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: { MAGPIE_USER_RATE: '2000', MAGPIE_USER_BURST: '2000' } });
  });
  after(async () => {
    await srv.stop();
  });

  /** The highest count seen per seq in `delivered.counts` frames of `conv` (after frame index `from`). */
  function counts(c: RawClient, conv: string, from = 0): Map<number, number> {
    const m = new Map<number, number>();
    for (const f of c.frames.slice(from)) {
      if (f.type !== 'delivered.counts' || f.conv !== conv) continue;
      for (const [seq, n] of f.counts as [number, number][]) m.set(seq, Math.max(m.get(seq) ?? 0, n));
    }
    return m;
  }
  const countFrames = (c: RawClient, conv: string) => c.frames.filter((f) => f.type === 'delivered.counts' && f.conv === conv);
  const waitCount = (c: RawClient, conv: string, seq: number, n: number) =>
    c.waitFor(() => (counts(c, conv).get(seq) ?? 0) >= n).then(() => assert.equal(counts(c, conv).get(seq), n, `count of seq ${seq}`));
  const msgOf = (c: RawClient, conv: string, seq: number) => c.waitFor((f) => f.type === 'msg' && f.message.conv === conv && f.message.seq === seq);

  it('the sender’s two devices see the count rise; a member with two devices counts once; an offline device catches up', async () => {
    const a = await registerAndLogin(srv.url, { deviceId: 'phone', platform: 'ios' });
    const aDesk = await login(srv.url, a.username, 'desk', 'desktop');
    const b = await registerAndLogin(srv.url, { deviceId: 'phone', platform: 'ios' });
    const bDesk = await login(srv.url, b.username, 'desk', 'desktop');
    const c = await registerAndLogin(srv.url);
    const d = await registerAndLogin(srv.url);
    const created = await api(srv.url, 'POST', '/api/groups', { name: 'Receipts', members: [b.userId, c.userId, d.userId] }, a.token);
    assert.equal(created.status, 201);
    const conv: string = created.body.group.conv;

    const open = async (acc: Account) => (await RawClient.connect(srv.wsUrl, acc.token)).client;
    const [pa, da, pb, db, cc] = await Promise.all([open(a), open(aDesk), open(b), open(bDesk), open(c)]);

    // seq 1 is the creation notice; A's phone sends seq 2.
    const sent = await pa.request({ type: 'send', clientMsgId: 'r1', conv, kind: 'text', body: { text: 'who got this?' } });
    assert.equal(sent.message.seq, 2);
    assert.equal(sent.message.deliveredCount, undefined, 'the send reply carries no count');
    const onDesk = await msgOf(da, conv, 2);
    assert.equal(onDesk.message.deliveredCount, undefined, 'live frames carry no count');

    // B's phone stores it: both of A's devices see 1 (and the first-recipient `delivered`).
    const atB = await msgOf(pb, conv, 2);
    pb.send({ type: 'ack', inboxSeq: atB.inboxSeq });
    for (const dev of [pa, da]) {
      await waitCount(dev, conv, 2, 1);
      const first = await dev.waitFor((f) => f.type === 'delivered' && f.conv === conv);
      assert.deepEqual(first, { type: 'delivered', conv, seq: 2, by: b.userId });
    }
    // B's desk stores it too: B is counted once, nothing new is sent.
    const atBDesk = await msgOf(db, conv, 2);
    const framesBefore = countFrames(pa, conv).length;
    db.send({ type: 'ack', inboxSeq: atBDesk.inboxSeq });
    await sleep(200);
    assert.equal(countFrames(pa, conv).length, framesBefore, 'a second device of the same member does not count');
    // C stores it: 2 on both devices.
    const atC = await msgOf(cc, conv, 2);
    cc.send({ type: 'ack', inboxSeq: atC.inboxSeq });
    await waitCount(pa, conv, 2, 2);
    await waitCount(da, conv, 2, 2);

    // Coalescing: three messages acknowledged by one cumulative ACK → one frame with three pairs.
    for (let i = 0; i < 3; i++) await pa.request({ type: 'send', clientMsgId: `burst${i}`, conv, kind: 'text', body: { text: `burst ${i}` } });
    const lastAtC = await msgOf(cc, conv, 5);
    const fromFrame = pa.frames.length;
    cc.send({ type: 'ack', inboxSeq: lastAtC.inboxSeq });
    const burst = await pa.waitFor((f) => f.type === 'delivered.counts' && f.conv === conv, 5000, fromFrame);
    assert.deepEqual(burst, { type: 'delivered.counts', conv, counts: [[3, 1], [4, 1], [5, 1]] });

    // A's desk goes offline, remembering its inbox position.
    const deskSeq = Math.max(...da.messages().map((f) => f.inboxSeq));
    da.close();
    await da.waitClose();
    const late = await pa.request({ type: 'send', clientMsgId: 'late', conv, kind: 'text', body: { text: 'while the desk is away' } });
    assert.equal(late.message.seq, 6);
    // B's desk (its ACK also covers the burst) and D (connecting for the first time,
    // pulling everything) store it.
    const atBLate = await msgOf(db, conv, 6);
    db.send({ type: 'ack', inboxSeq: atBLate.inboxSeq });
    const { client: dc } = await RawClient.connect(srv.wsUrl, d.token);
    const pulledD = await pullAll(dc, 0);
    assert.ok(pulledD.items.every((i) => i.message.deliveredCount === undefined), 'others’ messages carry no count');
    dc.send({ type: 'ack', inboxSeq: pulledD.inboxSeq });
    await waitCount(pa, conv, 6, 2);
    await waitCount(pa, conv, 2, 3);
    for (const seq of [3, 4, 5]) await waitCount(pa, conv, seq, 3);

    // The desk comes back: `sync` returns the message it missed with its count, `history`
    // the current counts of the ones it already held.
    const { client: da2, welcome } = await RawClient.connect(srv.wsUrl, aDesk.token, deskSeq);
    assert.equal(welcome.sync, 'incremental');
    const pulled = await pullAll(da2, deskSeq);
    assert.deepEqual(
      pulled.items.map((i) => [i.message.seq, i.message.deliveredCount]),
      [[6, 2]],
    );
    const hist = await da2.request({ type: 'history', conv, after: 0, limit: 50 });
    assert.deepEqual(
      hist.messages.map((m: any) => [m.seq, m.deliveredCount]),
      [
        [1, undefined],
        [2, 3],
        [3, 3],
        [4, 3],
        [5, 3],
        [6, 2],
      ],
    );
    // The same history read by a member shows no counts on A's messages.
    const histB = await pb.request({ type: 'history', conv, after: 0, limit: 50 });
    assert.ok(histB.messages.every((m: any) => m.deliveredCount === undefined));
    // REST history carries them too.
    const rest = await api(srv.url, 'GET', `/api/conversations/${encodeURIComponent(conv)}/messages?after=5&limit=5`, undefined, aDesk.token);
    assert.deepEqual(rest.body.messages.map((m: any) => m.deliveredCount), [2]);

    for (const x of [pa, da, pb, db, cc, dc, da2]) assert.deepEqual(x.schemaErrors, []);
    for (const x of [pa, pb, db, cc, dc, da2]) x.close();
  });

  it('direct chats are unchanged: no counts, no delivered.counts frames', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const { client: ca } = await RawClient.connect(srv.wsUrl, a.token);
    const { client: cb } = await RawClient.connect(srv.wsUrl, b.token);
    const sent = await ca.request({ type: 'send', clientMsgId: 'd1', to: b.userId, kind: 'text', body: { text: 'hi' } });
    const got = await cb.waitFor((f) => f.type === 'msg');
    cb.send({ type: 'ack', inboxSeq: got.inboxSeq });
    await ca.waitFor((f) => f.type === 'delivered' && f.conv === sent.message.conv);
    await sleep(100);
    assert.equal(ca.frames.filter((f) => f.type === 'delivered.counts').length, 0);
    const hist = await ca.request({ type: 'history', conv: sent.message.conv });
    assert.equal('deliveredCount' in hist.messages[0], false);
    ca.close();
    cb.close();
  });
});
