import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, registerAndLogin, login, RawClient, pullAll, api, sleep, type ServerProcess } from './harness.ts';

describe('1:1 chat end to end (raw protocol, real server process)', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: { MAGPIE_USER_BURST: '5000', MAGPIE_USER_RATE: '5000' } });
  });
  after(async () => {
    await srv.stop();
  });

  it('A and B chat: live delivery in seq order, gap-free inboxSeq, idempotent resend', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const { client: ca } = await RawClient.connect(srv.wsUrl, a.token);
    const { client: cb, welcome } = await RawClient.connect(srv.wsUrl, b.token);
    assert.equal(welcome.sync, 'none');
    const replies = [];
    for (let i = 1; i <= 20; i++) replies.push(await ca.request({ type: 'send', clientMsgId: `c${i}`, to: b.userId, kind: 'text', body: { text: `m${i}` } }));
    assert.deepEqual(replies.map((r) => r.message.seq), Array.from({ length: 20 }, (_, i) => i + 1));
    assert.deepEqual(replies.map((r) => r.inboxSeq), Array.from({ length: 20 }, (_, i) => i + 1));
    await cb.waitFor(() => cb.firstArrivals().length === 20);
    assert.deepEqual(cb.firstArrivals().map((f) => f.inboxSeq), Array.from({ length: 20 }, (_, i) => i + 1));
    assert.deepEqual(cb.firstArrivals().map((f) => f.message.body.text), Array.from({ length: 20 }, (_, i) => `m${i + 1}`));
    // B has not ACKed, so the server may still be retrying: ACK everything and let retries
    // settle; from then on, a duplicate send must not add a single frame.
    cb.send({ type: 'ack', inboxSeq: 20 });
    await sleep(200);
    const framesBefore = cb.messages().length;
    const again = await ca.request({ type: 'send', clientMsgId: 'c3', to: b.userId, kind: 'text', body: { text: 'm3' } });
    assert.equal(again.duplicate, true);
    assert.equal(again.message.seq, 3);
    assert.equal(again.inboxSeq, 3);
    await sleep(100);
    assert.equal(cb.messages().length, framesBefore, 'a duplicate send is not delivered again');
    assert.equal(cb.firstArrivals().length, 20);
    assert.deepEqual([...ca.schemaErrors, ...cb.schemaErrors], []);
    ca.close();
    cb.close();
  });

  it('delivered status reaches both of the sender’s devices when the recipient ACKs', async () => {
    const a = await registerAndLogin(srv.url, { deviceId: 'phone', platform: 'ios' });
    const a2 = await login(srv.url, a.username, 'desk', 'desktop');
    const b = await registerAndLogin(srv.url);
    const { client: ca } = await RawClient.connect(srv.wsUrl, a.token);
    const { client: ca2 } = await RawClient.connect(srv.wsUrl, a2.token);
    const { client: cb } = await RawClient.connect(srv.wsUrl, b.token);
    const sent = await ca.request({ type: 'send', clientMsgId: 'x1', to: b.userId, kind: 'text', body: { text: 'hello' } });
    // The sender's other device gets the message live too.
    const onDesk = await ca2.waitFor((f) => f.type === 'msg');
    assert.equal(onDesk.message.id, sent.message.id);
    const got = await cb.waitFor((f) => f.type === 'msg');
    cb.send({ type: 'ack', inboxSeq: got.inboxSeq });
    for (const c of [ca, ca2]) {
      const d = await c.waitFor((f) => f.type === 'delivered');
      assert.deepEqual(d, { type: 'delivered', conv: sent.message.conv, seq: 1, by: b.userId });
    }
    const list = await ca.request({ type: 'convs', since: 0 });
    assert.equal(list.entries[0].deliveredSeq, 1);
    for (const c of [ca, ca2, cb]) c.close();
  });

  it('B, offline, receives everything on reconnect, in order (incremental sync)', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const { client: ca } = await RawClient.connect(srv.wsUrl, a.token);
    const { client: cb } = await RawClient.connect(srv.wsUrl, b.token);
    await ca.request({ type: 'send', clientMsgId: 'first', to: b.userId, kind: 'text', body: { text: 'first' } });
    const first = await cb.waitFor((f) => f.type === 'msg');
    cb.close();
    await cb.waitClose();
    for (let i = 0; i < 450; i++) await ca.request({ type: 'send', clientMsgId: `o${i}`, to: b.userId, kind: 'custom', body: { type: 'n', data: { i } } });
    const { client: cb2, welcome } = await RawClient.connect(srv.wsUrl, b.token, first.inboxSeq);
    assert.equal(welcome.sync, 'incremental');
    assert.equal(welcome.inboxSeq, 451);
    const pulled = await pullAll(cb2, first.inboxSeq);
    assert.equal(pulled.full, false);
    assert.deepEqual(pulled.items.map((x) => x.inboxSeq), Array.from({ length: 450 }, (_, i) => i + 2));
    assert.deepEqual(pulled.items.map((x) => x.message.body.data.i), Array.from({ length: 450 }, (_, i) => i));
    assert.deepEqual(pulled.items.map((x) => x.message.seq), Array.from({ length: 450 }, (_, i) => i + 2));
    ca.close();
    cb2.close();
  });

  it('three devices of one user stay in sync, read state included', async () => {
    const a = await registerAndLogin(srv.url);
    const b1 = await registerAndLogin(srv.url, { deviceId: 'b-phone', platform: 'android' });
    const b2 = await login(srv.url, b1.username, 'b-desk', 'desktop');
    const b3 = await login(srv.url, b1.username, 'b-web', 'web');
    const { client: ca } = await RawClient.connect(srv.wsUrl, a.token);
    const devices = await Promise.all([b1, b2, b3].map(async (d) => (await RawClient.connect(srv.wsUrl, d.token)).client));
    for (let i = 0; i < 5; i++) await ca.request({ type: 'send', clientMsgId: `t${i}`, to: b1.userId, kind: 'text', body: { text: `t${i}` } });
    for (const d of devices) await d.waitFor(() => d.firstArrivals().length === 5);
    for (const d of devices) assert.deepEqual(d.firstArrivals().map((f) => f.message.seq), [1, 2, 3, 4, 5]);
    const conv = devices[0]!.messages()[0].message.conv;
    const before = await devices[0]!.request({ type: 'convs', since: 0 });
    assert.equal(before.entries[0].unread, 5);
    assert.equal(before.entries[0].oldestUnreadSeq, 1);
    const { entry } = await devices[0]!.request({ type: 'read', conv, seq: 3 });
    assert.equal(entry.readSeq, 3);
    assert.equal(entry.unread, 2);
    assert.equal(entry.oldestUnreadSeq, 4);
    for (const d of devices.slice(1)) {
      const ev = await d.waitFor((f) => f.type === 'conv');
      assert.equal(ev.entry.readSeq, 3);
      assert.equal(ev.entry.unread, 2);
    }
    // The reply to the marking device is its answer; it gets no echo.
    await sleep(100);
    assert.equal(devices[0]!.frames.filter((f) => f.type === 'conv').length, 0);
    // Read state never moves back.
    const back = await devices[1]!.request({ type: 'read', conv, seq: 1 });
    assert.equal(back.entry.readSeq, 3);
    for (const c of [ca, ...devices]) c.close();
  });

  it('an offline device learns exactly the list changes made elsewhere through `convs since V`', async () => {
    const a = await registerAndLogin(srv.url);
    const c = await registerAndLogin(srv.url);
    const d = await registerAndLogin(srv.url);
    const b1 = await registerAndLogin(srv.url, { deviceId: 'one', platform: 'ios' });
    const b2 = await login(srv.url, b1.username, 'two', 'desktop');
    const { client: ca } = await RawClient.connect(srv.wsUrl, a.token);
    const { client: cc } = await RawClient.connect(srv.wsUrl, c.token);
    const { client: cd } = await RawClient.connect(srv.wsUrl, d.token);
    const fromA = await ca.request({ type: 'send', clientMsgId: 'a', to: b1.userId, kind: 'text', body: { text: 'from a' } });
    const fromC = await cc.request({ type: 'send', clientMsgId: 'c', to: b1.userId, kind: 'text', body: { text: 'from c' } });
    const fromD = await cd.request({ type: 'send', clientMsgId: 'd', to: b1.userId, kind: 'text', body: { text: 'from d' } });
    // Device two syncs its list, then goes offline.
    const { client: two } = await RawClient.connect(srv.wsUrl, b2.token);
    const snapshot = await two.request({ type: 'convs', since: 0 });
    assert.equal(snapshot.entries.length, 3);
    two.close();
    const { client: one } = await RawClient.connect(srv.wsUrl, b1.token);
    await one.request({ type: 'conv.update', conv: fromA.message.conv, pinned: true, draft: 'later…' });
    await one.request({ type: 'conv.update', conv: fromC.message.conv, deleted: true });
    await one.request({ type: 'read', conv: fromD.message.conv, seq: 1 });
    await one.request({ type: 'conv.update', conv: fromD.message.conv, muted: true });
    const { client: two2 } = await RawClient.connect(srv.wsUrl, b2.token);
    const changes = await two2.request({ type: 'convs', since: snapshot.version });
    const byConv = new Map(changes.entries.map((e: any) => [e.conv, e]));
    assert.equal(changes.entries.length, 3, 'each changed entry once, at its latest version');
    assert.equal((byConv.get(fromA.message.conv) as any).pinned, true);
    assert.equal((byConv.get(fromA.message.conv) as any).draft, 'later…');
    assert.equal((byConv.get(fromC.message.conv) as any).deleted, true);
    assert.equal((byConv.get(fromD.message.conv) as any).unread, 0, 'badge cleared elsewhere');
    assert.equal((byConv.get(fromD.message.conv) as any).muted, true);
    const none = await two2.request({ type: 'convs', since: changes.version });
    assert.deepEqual(none.entries, []);
    // A deleted conversation comes back with the next message, and its old history stays hidden.
    await cc.request({ type: 'send', clientMsgId: 'c2', to: b1.userId, kind: 'text', body: { text: 'again' } });
    const back = await two2.request({ type: 'convs', since: changes.version });
    assert.equal(back.entries[0].deleted, false);
    const hist = await two2.request({ type: 'history', conv: fromC.message.conv });
    assert.deepEqual(hist.messages.map((m: any) => m.body.text), ['again']);
    for (const x of [ca, cc, cd, one, two2]) x.close();
  });

  it('a lost last message is noticed at the next heartbeat: pong carries the latest inboxSeq', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const { client: ca } = await RawClient.connect(srv.wsUrl, a.token);
    const { client: cb } = await RawClient.connect(srv.wsUrl, b.token);
    await ca.request({ type: 'send', clientMsgId: 'l1', to: b.userId, kind: 'text', body: { text: 'lost?' } });
    // Pretend the live frame was lost: the client's local inboxSeq is still 0.
    cb.send({ type: 'ping', id: 9 });
    const pong = await cb.waitFor((f) => f.type === 'pong' && f.id === 9);
    assert.equal(pong.inboxSeq, 1);
    const page = await cb.request({ type: 'sync', since: 0 });
    assert.equal(page.items[0].message.body.text, 'lost?');
    ca.close();
    cb.close();
  });

  it('history pages newest first, and from the oldest unread forward', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const { client: ca } = await RawClient.connect(srv.wsUrl, a.token);
    let conv = '';
    for (let i = 1; i <= 30; i++) conv = (await ca.request({ type: 'send', clientMsgId: `h${i}`, to: b.userId, kind: 'text', body: { text: `h${i}` } })).message.conv;
    const page1 = await api(srv.url, 'GET', `/api/conversations/${encodeURIComponent(conv)}/messages?limit=10`, undefined, b.token);
    assert.deepEqual(page1.body.messages.map((m: any) => m.seq), [30, 29, 28, 27, 26, 25, 24, 23, 22, 21]);
    assert.equal(page1.body.more, true);
    const { client: cb } = await RawClient.connect(srv.wsUrl, b.token);
    await cb.request({ type: 'read', conv, seq: 12 });
    const list = await cb.request({ type: 'convs', since: 0 });
    assert.equal(list.entries[0].oldestUnreadSeq, 13);
    const fromUnread = await cb.request({ type: 'history', conv, after: list.entries[0].oldestUnreadSeq - 1, limit: 5 });
    assert.deepEqual(fromUnread.messages.map((m: any) => m.seq), [13, 14, 15, 16, 17]);
    assert.equal(fromUnread.more, true);
    ca.close();
    cb.close();
  });
});

describe('full sync when the client was away longer than the ring allows', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: { MAGPIE_RING_CAPACITY: '16', MAGPIE_SYNC_GAP_THRESHOLD: '10' } });
  });
  after(async () => {
    await srv.stop();
  });

  it('answers `full` and the client recovers through the conversation list and history', async () => {
    const a = await registerAndLogin(srv.url);
    const c = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const { client: ca } = await RawClient.connect(srv.wsUrl, a.token);
    const { client: cc } = await RawClient.connect(srv.wsUrl, c.token);
    for (let i = 0; i < 40; i++) await ca.request({ type: 'send', clientMsgId: `f${i}`, to: b.userId, kind: 'text', body: { text: `a${i}` } });
    for (let i = 0; i < 25; i++) await cc.request({ type: 'send', clientMsgId: `g${i}`, to: b.userId, kind: 'text', body: { text: `c${i}` } });
    const { client: cb, welcome } = await RawClient.connect(srv.wsUrl, b.token, 0);
    assert.equal(welcome.sync, 'full');
    assert.equal(welcome.inboxSeq, 65);
    const refused = await cb.request({ type: 'sync', since: 0 });
    assert.equal(refused.full, true, 'a too-long gap is never streamed as a flood');
    assert.deepEqual(refused.items, []);
    const list = await cb.request({ type: 'convs', since: 0 });
    assert.equal(list.entries.length, 2);
    const unread = list.entries.map((e: any) => e.unread).sort((x: number, y: number) => x - y);
    assert.deepEqual(unread, [25, 40]);
    for (const e of list.entries) {
      assert.equal(e.oldestUnreadSeq, 1);
      const page = await cb.request({ type: 'history', conv: e.conv, limit: 10 });
      assert.equal(page.messages[0].seq, e.lastSeq);
      assert.equal(page.messages.length, 10);
    }
    // Within the threshold and the ring, the same user syncs incrementally again.
    await ca.request({ type: 'send', clientMsgId: 'after', to: b.userId, kind: 'text', body: { text: 'after' } });
    const { client: cb2, welcome: w2 } = await RawClient.connect(srv.wsUrl, b.token, 65);
    assert.equal(w2.sync, 'incremental');
    const pulled = await pullAll(cb2, 65);
    assert.deepEqual(pulled.items.map((x) => x.message.body.text), ['after']);
    for (const x of [ca, cc, cb, cb2]) x.close();
  });
});
