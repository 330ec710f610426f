import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Receipts, RestApi } from '@magpie/sdk';
import { startServer, registerAndLogin, login, RawClient, api, sleep, type ServerProcess, type Account } from './harness.ts';
import { sdkClient, eventually } from './sdk-client.ts';

/**
 * Read receipts, typing, presence and group notification levels end to end (raw protocol,
 * the real server process), on the engine the caller's env selects.
 */
export function runReceiptsE2e(name: string, env: () => Promise<Record<string, string> | null>, cleanup: () => Promise<void> = async () => {}): void {
  describe(`receipts, typing, presence end to end: ${name}`, () => {
    let srv: ServerProcess;
    let skip = false;
    before(async () => {
      const e = await env();
      if (!e) {
        skip = true;
        return;
      }
      srv = await startServer({ env: { MAGPIE_USER_RATE: '2000', MAGPIE_USER_BURST: '2000', MAGPIE_PRESENCE_DEBOUNCE_MS: '100', MAGPIE_RECEIPTS_FLUSH_MS: '20', ...e } });
    });
    after(async () => {
      await srv?.stop();
      await cleanup();
    });
    const open = async (acc: Account) => (await RawClient.connect(srv.wsUrl, acc.token)).client;

    it('1:1: the reader’s report reaches the sender as "read"; the privacy switch is reciprocal', async (t) => {
      if (skip) return t.skip('no database');
      const a = await registerAndLogin(srv.url);
      const b = await registerAndLogin(srv.url);
      const [ca, cb] = await Promise.all([open(a), open(b)]);
      const sent = await ca.request({ type: 'send', clientMsgId: 'd1', to: b.userId, kind: 'text', body: { text: 'hi' } });
      const conv = sent.message.conv;
      await cb.waitFor((f) => f.type === 'msg' && f.message.conv === conv);
      await cb.request({ type: 'read', conv, seq: 1 });
      const r = await ca.waitFor((f) => f.type === 'read.receipt' && f.conv === conv);
      assert.deepEqual({ seq: r.seq, by: r.by }, { seq: 1, by: b.userId });
      assert.equal((await ca.request({ type: 'receipts.query', conv, seqs: [1] })).readSeq, 1);

      // B stops sending receipts: A learns nothing more, and B sees no one's either.
      const off = await api(srv.url, 'PUT', '/api/me/privacy', { readReceipts: false }, b.token);
      assert.equal(off.status, 200);
      assert.equal(off.body.readReceipts, false);
      await ca.request({ type: 'send', clientMsgId: 'd2', to: b.userId, kind: 'text', body: { text: 'again' } });
      await cb.request({ type: 'read', conv, seq: 2 });
      await cb.request({ type: 'send', clientMsgId: 'd3', to: a.userId, kind: 'text', body: { text: 'back' } });
      await ca.request({ type: 'read', conv, seq: 3 });
      await sleep(150);
      assert.equal(ca.frames.filter((f) => f.type === 'read.receipt').length, 1, 'no notice after B turned receipts off');
      assert.equal(cb.frames.filter((f) => f.type === 'read.receipt').length, 0, 'B sees no one’s');
      assert.equal((await ca.request({ type: 'receipts.query', conv, seqs: [2] })).readSeq, null);
      assert.equal((await cb.request({ type: 'receipts.query', conv, seqs: [3] })).readSeq, null);
      // Bad input changes nothing.
      const bad = await api(srv.url, 'PUT', '/api/me/privacy', { presence: 'aliens' }, b.token);
      assert.equal(bad.status, 400);
      assert.equal((await api(srv.url, 'GET', '/api/me/privacy', undefined, b.token)).body.presence, 'friends');
      assert.deepEqual(ca.schemaErrors, []);
      ca.close();
      cb.close();
    });

    it('groups: "N unread" per message, a reader with two devices counts once, read/unread lists, per-message opt-out', async (t) => {
      if (skip) return t.skip('no database');
      const a = await registerAndLogin(srv.url);
      const b = await registerAndLogin(srv.url, { deviceId: 'phone', platform: 'ios' });
      const bDesk = await login(srv.url, b.username, 'desk', 'desktop');
      const c = await registerAndLogin(srv.url);
      const d = await registerAndLogin(srv.url);
      const created = await api(srv.url, 'POST', '/api/groups', { name: 'Read', members: [b.userId, c.userId, d.userId] }, a.token);
      const conv: string = created.body.group.conv;
      const [ca, pb, db, cc] = await Promise.all([open(a), open(b), open(bDesk), open(c)]);
      const m2 = await ca.request({ type: 'send', clientMsgId: 'g1', conv, kind: 'text', body: { text: 'one' } });
      const m3 = await ca.request({ type: 'send', clientMsgId: 'g2', conv, kind: 'text', body: { text: 'two' } });
      const m4 = await ca.request({ type: 'send', clientMsgId: 'g3', conv, kind: 'text', body: { text: 'no receipts' }, receipt: false });
      assert.deepEqual([m2.message.seq, m3.message.seq, m4.message.seq], [2, 3, 4]);
      await sleep(100);
      let q = await ca.request({ type: 'receipts.query', conv, seqs: [2, 3, 4] });
      assert.deepEqual(q.counts, [
        [2, 3, 3],
        [3, 3, 3],
      ]);
      // B reads up to 3 on the phone, then on the desk again: one reader.
      await pb.request({ type: 'read', conv, seq: 3 });
      await db.request({ type: 'read', conv, seq: 4 });
      const notice = await ca.waitFor((f) => f.type === 'read.counts' && f.conv === conv);
      assert.deepEqual(notice.counts, [
        [2, 2, 3],
        [3, 2, 3],
      ]);
      await cc.request({ type: 'read', conv, seq: 2 });
      await ca.waitFor((f) => f.type === 'read.counts' && f.counts.some((x: number[]) => x[0] === 2 && x[1] === 1));
      q = await ca.request({ type: 'receipts.query', conv, seqs: [2, 3] });
      assert.deepEqual(q.counts, [
        [2, 1, 3],
        [3, 2, 3],
      ]);
      const lists = await ca.request({ type: 'receipts.members', conv, seq: 2 });
      assert.deepEqual(lists.read.sort(), [b.userId, c.userId].sort());
      assert.deepEqual(lists.unread, [d.userId]);
      // Only the sender sees who read; a message without receipts has none.
      assert.equal((await cc.requestError({ type: 'receipts.members', conv, seq: 2 })).code, 'forbidden');
      assert.equal((await ca.requestError({ type: 'receipts.members', conv, seq: 4 })).code, 'not_found');
      assert.equal((await ca.requestError({ type: 'receipts.query', conv, seqs: [] })).code, 'invalid');
      // Owner turns group receipts off: new messages are not tracked.
      assert.equal((await api(srv.url, 'PUT', `/api/groups/${encodeURIComponent(conv)}/receipts`, { enabled: false }, c.token)).status, 403);
      assert.equal((await api(srv.url, 'PUT', `/api/groups/${encodeURIComponent(conv)}/receipts`, { enabled: false }, a.token)).status, 200);
      await ca.request({ type: 'send', clientMsgId: 'g4', conv, kind: 'text', body: { text: 'quiet' } });
      await ca.request({ type: 'send', clientMsgId: 'g5', conv, kind: 'text', body: { text: 'asked' }, receipt: true });
      await sleep(100);
      assert.deepEqual((await ca.request({ type: 'receipts.query', conv, seqs: [5, 6] })).counts, [[6, 3, 3]]);
      for (const x of [ca, pb, db, cc]) assert.deepEqual(x.schemaErrors, []);
      for (const x of [ca, pb, db, cc]) x.close();
    });

    it('typing reaches every device of the peer, rate-limited, never to non-members', async (t) => {
      if (skip) return t.skip('no database');
      const a = await registerAndLogin(srv.url);
      const b = await registerAndLogin(srv.url, { deviceId: 'phone', platform: 'ios' });
      const bDesk = await login(srv.url, b.username, 'desk', 'desktop');
      const e = await registerAndLogin(srv.url);
      const [ca, pb, db, ce] = await Promise.all([open(a), open(b), open(bDesk), open(e)]);
      const sent = await ca.request({ type: 'send', clientMsgId: 't0', to: b.userId, kind: 'text', body: { text: 'hey' } });
      const conv = sent.message.conv;
      assert.deepEqual(await ca.request({ type: 'typing', conv }), { sent: true });
      for (const dev of [pb, db]) {
        const f = await dev.waitFor((x) => x.type === 'typing' && x.conv === conv);
        assert.equal(f.user, a.userId);
        assert.ok(f.expiresIn > 0);
      }
      assert.deepEqual(await ca.request({ type: 'typing', conv }), { sent: false }, 'a second indicator within the interval is dropped');
      assert.equal((await ce.requestError({ type: 'typing', conv })).code, 'forbidden');
      ca.send({ type: 'typing', conv });
      await sleep(100);
      assert.equal(pb.frames.filter((x) => x.type === 'typing').length, 1);
      for (const x of [ca, pb, db, ce]) x.close();
    });

    it('presence: online and last seen by privacy, debounced offline', async (t) => {
      if (skip) return t.skip('no database');
      const a = await registerAndLogin(srv.url);
      const b = await registerAndLogin(srv.url);
      const hidden = await registerAndLogin(srv.url);
      assert.equal((await api(srv.url, 'PUT', '/api/me/privacy', { presence: 'everyone' }, b.token)).status, 200);
      assert.equal((await api(srv.url, 'PUT', '/api/me/privacy', { presence: 'nobody' }, hidden.token)).status, 200);
      const cb = await open(b);
      const ch = await open(hidden);
      const ca = await open(a);
      const sub = await ca.request({ type: 'presence.sub', users: [b.userId, hidden.userId] });
      assert.deepEqual(sub.presence, [
        { user: b.userId, online: true, lastSeen: null },
        { user: hidden.userId, online: null, lastSeen: null },
      ]);
      cb.close();
      const off = await ca.waitFor((f) => f.type === 'presence' && f.user === b.userId && f.online === false, 5000);
      assert.ok(off.lastSeen > Date.now() - 10_000);
      const again = await open(b);
      await ca.waitFor((f) => f.type === 'presence' && f.user === b.userId && f.online === true, 5000);
      ch.close();
      await sleep(300);
      assert.equal(ca.frames.filter((f) => f.type === 'presence' && f.user === hidden.userId).length, 0);
      again.close();
      ca.close();
    });

    it('SDK: receipt state per message (sent → read; group unread), typing and presence events, settings', async (t) => {
      if (skip) return t.skip('no database');
      const a = await registerAndLogin(srv.url);
      const b = await registerAndLogin(srv.url);
      const c = await registerAndLogin(srv.url);
      const ca = sdkClient({ baseUrl: srv.url, token: a.token });
      const cb = sdkClient({ baseUrl: srv.url, token: b.token });
      try {
        await Promise.all([ca.connect(), cb.connect()]);
        const ra = new Receipts({ request: (f) => ca.request(f) }, { api: new RestApi({ baseUrl: srv.url }), token: () => a.token });
        const rb = new Receipts({ request: (f) => cb.request(f) }, { api: new RestApi({ baseUrl: srv.url }), token: () => b.token });
        ca.on('frame', (f) => void ra.handleFrame(f));
        cb.on('frame', (f) => void rb.handleFrame(f));
        const m = await ca.sendText({ to: b.userId }, 'hello');
        const sent = await ca.waitForSend(m.clientMsgId);
        const conv = sent!.conv!;
        assert.deepEqual(ra.stateOf(conv, sent!.seq!), { kind: 'direct', read: false });
        await cb.markRead(conv, sent!.seq!);
        await eventually(() => ra.stateOf(conv, sent!.seq!).kind === 'direct' && (ra.stateOf(conv, sent!.seq!) as { read: boolean }).read, 'A sees Read');
        rb.typing(conv);
        await eventually(() => ra.typingIn(conv).includes(b.userId), 'A sees B typing');
        assert.equal((await rb.setPrivacy({ presence: 'everyone' })).presence, 'everyone');
        const [p] = await ra.subscribePresence([b.userId]);
        assert.equal(p!.online, true);
        const g = await api(srv.url, 'POST', '/api/groups', { name: 'SDK', members: [b.userId, c.userId] }, a.token);
        const gconv: string = g.body.group.conv;
        const gm = await ca.sendText({ conv: gconv }, 'team');
        const gs = (await ca.waitForSend(gm.clientMsgId))!.seq!;
        await sleep(100);
        await ra.load(gconv, [gs]);
        assert.deepEqual(ra.stateOf(gconv, gs), { kind: 'group', unread: 2, total: 2 });
        await rb.setNotifyLevel(gconv, 'none');
        assert.equal(rb.notifyLevel(gconv), 'none');
        await cb.markRead(gconv, gs);
        await eventually(() => (ra.stateOf(gconv, gs) as { unread?: number }).unread === 1, 'unread falls to 1');
        assert.deepEqual(await ra.members(gconv, gs), { read: [b.userId], unread: [c.userId] });
      } finally {
        ca.close();
        cb.close();
      }
    });

    it('per-group notification level syncs to the user’s other devices; bad levels change nothing', async (t) => {
      if (skip) return t.skip('no database');
      const a = await registerAndLogin(srv.url, { deviceId: 'phone', platform: 'ios' });
      const aDesk = await login(srv.url, a.username, 'desk', 'desktop');
      const b = await registerAndLogin(srv.url);
      const created = await api(srv.url, 'POST', '/api/groups', { name: 'Quiet', members: [b.userId] }, a.token);
      const conv: string = created.body.group.conv;
      const desk = await open(aDesk);
      const path = `/api/groups/${encodeURIComponent(conv)}/notify`;
      const set = await api(srv.url, 'PUT', path, { level: 'mentions' }, a.token);
      assert.equal(set.status, 200);
      assert.equal(set.body.setting.level, 'mentions');
      const f = await desk.waitFor((x) => x.type === 'notify.setting');
      assert.deepEqual(f.setting, set.body.setting);
      assert.equal((await api(srv.url, 'PUT', path, { level: 'loud' }, a.token)).status, 400);
      const outsider = await registerAndLogin(srv.url);
      assert.equal((await api(srv.url, 'PUT', path, { level: 'none' }, outsider.token)).status, 403);
      const list = await api(srv.url, 'GET', '/api/me/notify', undefined, aDesk.token);
      assert.deepEqual(list.body.settings, [set.body.setting]);
      assert.deepEqual(list.body.defaults, { group: 'all', super: 'mentions' });
      desk.close();
    });
  });
}
