/**
 * Issue 13, "Protocol documentation a third-party client needs": what docs/protocol.md now
 * promises, checked against the real server process (raw protocol).
 * - After a `full` answer, ACKing `welcome.inboxSeq` moves the device's cursor but marks
 *   nothing it never obtained as delivered (it used to tell senders "delivered").
 * - Only what the device was given (live or by `sync`) raises delivered state.
 * - History `before`/`after` are exclusive; `before` pages newest first, `after` oldest first.
 * - The conversation list pages by version: `since` = the last entry's version while `more`.
 * - Sending to oneself is refused with `invalid` (WebSocket and REST); nothing is stored.
 * - Groups: members read from their (latest) join notice unless the group shares all history.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, registerAndLogin, login, RawClient, api, sleep, type ServerProcess, type Account } from './harness.ts';

describe('protocol contract: full-sync ACKs, history and list paging, sending to oneself', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: { MAGPIE_SYNC_GAP_THRESHOLD: '5', MAGPIE_USER_RATE: '2000', MAGPIE_USER_BURST: '2000' } });
  });
  after(async () => {
    await srv.stop();
  });
  const open = async (acc: Account, inboxSeq = 0) => RawClient.connect(srv.wsUrl, acc.token, inboxSeq);
  const deliveredFrames = (c: RawClient, conv: string, from = 0) => c.frames.slice(from).filter((f) => (f.type === 'delivered' || f.type === 'delivered.counts') && f.conv === conv);

  it('ACKing welcome.inboxSeq after a full sync marks nothing delivered; what the device then obtains is', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const c = await registerAndLogin(srv.url);
    const created = await api(srv.url, 'POST', '/api/groups', { name: 'Gap', members: [b.userId, c.userId] }, a.token);
    const conv: string = created.body.group.conv;
    const { client: ca } = await open(a);
    // A direct chat and a group, both while B is offline: 12 messages, gap above the threshold 5.
    for (let i = 0; i < 6; i++) await ca.request({ type: 'send', clientMsgId: `g${i}`, conv, kind: 'text', body: { text: `group ${i}` } });
    for (let i = 0; i < 6; i++) await ca.request({ type: 'send', clientMsgId: `d${i}`, to: b.userId, kind: 'text', body: { text: `direct ${i}` } });
    const direct = (await ca.request({ type: 'convs', since: 0 })).entries.find((e: any) => e.kind === 'direct').conv as string;

    const { client: cb, welcome } = await open(b, 0);
    assert.equal(welcome.sync, 'full');
    const from = ca.frames.length;
    cb.send({ type: 'ack', inboxSeq: welcome.inboxSeq });
    await sleep(300);
    assert.deepEqual([...deliveredFrames(ca, conv, from), ...deliveredFrames(ca, direct, from)], [], 'no receipt for what B never obtained');
    const page = await ca.request({ type: 'history', conv, limit: 10 });
    assert.deepEqual(page.messages.filter((m: any) => m.sender === a.userId && m.kind === 'text').map((m: any) => m.deliveredCount ?? 0), [0, 0, 0, 0, 0, 0], 'no group count either');
    const entry = (await ca.request({ type: 'convs', since: 0 })).entries.find((e: any) => e.conv === direct);
    assert.equal(entry.deliveredSeq, 0);

    // B's device gets the next message live and ACKs it: that one is delivered.
    await ca.request({ type: 'send', clientMsgId: 'live', conv, kind: 'text', body: { text: 'after the gap' } });
    const live = await cb.waitFor((f) => f.type === 'msg' && f.message.conv === conv && f.message.clientMsgId === 'live');
    cb.send({ type: 'ack', inboxSeq: live.inboxSeq });
    const counted = await ca.waitFor((f) => f.type === 'delivered.counts' && f.conv === conv, 5000, from);
    assert.deepEqual(counted.counts, [[live.message.seq, 1]], 'only the message B obtained is counted');

    // An incremental client that ACKs beyond what it pulled: only the pulled part counts.
    const { client: cc, welcome: wc } = await open(c, 0);
    assert.equal(wc.sync, 'full');
    await ca.request({ type: 'send', clientMsgId: 'c1', conv, kind: 'text', body: { text: 'one' } });
    await ca.request({ type: 'send', clientMsgId: 'c2', conv, kind: 'text', body: { text: 'two' } });
    cc.ws.close();
    await sleep(100);
    const { client: cc2, welcome: wc2 } = await open(c, wc.inboxSeq);
    assert.equal(wc2.sync, 'incremental');
    const mark = ca.frames.length;
    cc2.send({ type: 'ack', inboxSeq: wc2.inboxSeq }); // not pulled yet
    await sleep(300);
    assert.deepEqual(deliveredFrames(ca, conv, mark), [], 'an ACK of what was not given raises nothing');
    const pulled = await cc2.request({ type: 'sync', since: wc.inboxSeq });
    assert.equal(pulled.items.length, 2);
    cc2.send({ type: 'ack', inboxSeq: pulled.items.at(-1).inboxSeq });
    const after = await ca.waitFor((f) => f.type === 'delivered.counts' && f.conv === conv, 5000, mark);
    assert.equal(after.counts.length, 2);
    for (const x of [ca, cb, cc2]) x.ws.close();
  });

  it('history: before/after are exclusive; before pages newest first, after oldest first; the list pages by version', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const { client } = await open(a);
    for (let i = 1; i <= 7; i++) await client.request({ type: 'send', clientMsgId: `h${i}`, to: b.userId, kind: 'text', body: { text: `m${i}` } });
    const conv = (await client.request({ type: 'convs', since: 0 })).entries[0].conv;
    const seqs = (r: any) => r.messages.map((m: any) => m.seq);
    const newest = await client.request({ type: 'history', conv, limit: 3 });
    assert.deepEqual(seqs(newest), [7, 6, 5]);
    assert.equal(newest.more, true);
    assert.equal(newest.lastSeq, 7);
    const older = await client.request({ type: 'history', conv, before: 5, limit: 3 });
    assert.deepEqual(seqs(older), [4, 3, 2], '`before` is exclusive');
    const oldest = await client.request({ type: 'history', conv, before: 2, limit: 3 });
    assert.deepEqual(seqs(oldest), [1]);
    assert.equal(oldest.more, false);
    const forward = await client.request({ type: 'history', conv, after: 2, limit: 3 });
    assert.deepEqual(seqs(forward), [3, 4, 5], '`after` is exclusive, oldest first');
    assert.equal(forward.more, true);
    const rest = await client.request({ type: 'history', conv, after: 5, limit: 3 });
    assert.deepEqual(seqs(rest), [6, 7]);
    assert.equal(rest.more, false);

    // Conversation list paging: 4 conversations, 2 per page, `since` = last entry's version.
    for (let i = 0; i < 3; i++) {
      const peer = await registerAndLogin(srv.url);
      await client.request({ type: 'send', clientMsgId: `p${i}`, to: peer.userId, kind: 'text', body: { text: 'hi' } });
    }
    const seen = new Set<string>();
    let since = 0;
    let pages = 0;
    for (;;) {
      const r = await client.request({ type: 'convs', since, limit: 2 });
      pages++;
      for (const e of r.entries) seen.add(e.conv);
      if (!r.more) {
        assert.ok(r.entries.length === 0 || r.entries.at(-1).version === r.version);
        break;
      }
      since = r.entries.at(-1).version;
    }
    assert.equal(seen.size, 4);
    assert.ok(pages >= 2);
    client.ws.close();
  });

  it('group history visibility: since_join by default (new and re-added members read from their join notice), all when the group says so', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const c = await registerAndLogin(srv.url);
    const created = await api(srv.url, 'POST', '/api/groups', { name: 'Vis', members: [b.userId] }, a.token);
    assert.equal(created.body.group.historyVisibility, 'since_join');
    const conv: string = created.body.group.conv;
    const { client: ca } = await open(a);
    const { client: cc } = await open(c);
    const say = (t: string) => ca.request({ type: 'send', clientMsgId: t, conv, kind: 'text', body: { text: t } });
    const texts = async (client: RawClient, q: Record<string, unknown> = {}) =>
      (await client.request({ type: 'history', conv, limit: 50, ...q })).messages.filter((m: any) => m.kind === 'text').map((m: any) => m.body.text).reverse();
    await say('before-1');
    await say('before-2');
    const inv = await api(srv.url, 'POST', `/api/groups/${conv}/invite`, { users: [c.userId] }, a.token);
    assert.equal(inv.status, 200);
    await say('after-join');
    assert.deepEqual(await texts(cc), ['after-join'], 'a new member reads from their join on');
    const rest = await api(srv.url, 'GET', `/api/conversations/${conv}/messages?after=0`, undefined, c.token);
    assert.deepEqual(rest.body.messages.filter((m: any) => m.kind === 'text').map((m: any) => m.body.text), ['after-join'], 'REST too');
    const joinSeq = (await api(srv.url, 'GET', `/api/groups/${conv}/members?limit=10`, undefined, a.token)).body.members.find((m: any) => m.userId === c.userId).joinedSeq;
    const first = await cc.request({ type: 'history', conv, after: 0, limit: 50 });
    assert.equal(first.messages[0].seq, joinSeq, 'the first readable message is their join notice');
    assert.equal(first.more, false);

    // Removed, then added again: what was posted meanwhile stays hidden.
    await api(srv.url, 'POST', `/api/groups/${conv}/kick`, { users: [c.userId] }, a.token);
    assert.deepEqual(await texts(cc), ['after-join'], 'a former member reads up to the removal');
    await say('while-away');
    await api(srv.url, 'POST', `/api/groups/${conv}/invite`, { users: [c.userId] }, a.token);
    await say('back');
    assert.deepEqual(await texts(cc), ['back']);
    assert.deepEqual(await texts(cc, { before: 1000 }), ['back']);

    // The group shares its whole history: everything is readable.
    const patched = await api(srv.url, 'PATCH', `/api/groups/${conv}`, { historyVisibility: 'all' }, a.token);
    assert.equal(patched.body.group.historyVisibility, 'all');
    assert.deepEqual(await texts(cc), ['before-1', 'before-2', 'after-join', 'while-away', 'back']);
    assert.equal((await api(srv.url, 'PATCH', `/api/groups/${conv}`, { historyVisibility: 'since_join' }, c.token)).status, 403, 'owner/admin only');
    ca.ws.close();
    cc.ws.close();
  });

  it('sending to oneself is refused with invalid and stores nothing; a group of one works', async () => {
    const a = await registerAndLogin(srv.url, { deviceId: 'phone', platform: 'ios' });
    const desk = await login(srv.url, a.username, 'desk', 'desktop');
    const { client } = await open(a);
    const { client: other } = await open(desk);
    const err = await client.requestError({ type: 'send', clientMsgId: 'self', to: a.userId, kind: 'text', body: { text: 'note' } });
    assert.equal(err.code, 'invalid');
    const rest = await api(srv.url, 'POST', '/api/messages', { clientMsgId: 'self2', to: a.userId, kind: 'text', body: { text: 'note' } }, a.token);
    assert.equal(rest.status, 400);
    assert.equal(rest.body.error.code, 'invalid');
    assert.equal((await client.request({ type: 'convs', since: 0 })).entries.length, 0, 'nothing stored');
    // Notes to self: a group with no other member. The user's other devices get the message.
    const g = await api(srv.url, 'POST', '/api/groups', { name: 'Notes' }, a.token);
    assert.equal(g.status, 201);
    const sent = await client.request({ type: 'send', clientMsgId: 'n1', conv: g.body.group.conv, kind: 'text', body: { text: 'buy milk' } });
    const got = await other.waitFor((f) => f.type === 'msg' && f.message.id === sent.message.id);
    assert.equal(got.inboxSeq, sent.inboxSeq);
    assert.equal(client.frames.filter((f) => f.type === 'msg' && f.message.id === sent.message.id).length, 0, 'not echoed to the sending device');
    client.ws.close();
    other.ws.close();
  });
});
