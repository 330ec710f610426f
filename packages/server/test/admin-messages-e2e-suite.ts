/**
 * The operator's message actions end to end, shared by SQLite and PostgreSQL: look a message
 * up by id, list a conversation, recall (every member's device gets the recall event, by
 * "operator") and delete (the stored copy becomes a tombstone, no event) with a reason, each
 * in the audit log; console roles; the operator-token equivalents.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { api, registerAndLogin, RawClient, type Account, type ServerProcess } from './harness.ts';

export const MSG_ADMIN = 'messages-admin-token-0123456789';
export const MSG_ENV = { MAGPIE_ADMIN_TOKEN: MSG_ADMIN };

export function adminMessagesSuite(srv: () => ServerProcess): void {
  let alice: Account;
  let bob: Account;
  let owner: string;
  let viewer: string;
  let group: string;
  const ids: string[] = [];

  it('console and operator token look messages up by id and list a conversation', async () => {
    const { url } = srv();
    alice = await registerAndLogin(url);
    bob = await registerAndLogin(url);
    await api(url, 'POST', '/api/admin/console/admins', { username: 'mod', password: 'a long moderator password', role: 'operator' }, MSG_ADMIN);
    await api(url, 'POST', '/api/admin/console/admins', { username: 'peek', password: 'a long viewer password', role: 'viewer' }, MSG_ADMIN);
    owner = (await api(url, 'POST', '/api/console/login', { username: 'mod', password: 'a long moderator password' })).body.token;
    viewer = (await api(url, 'POST', '/api/console/login', { username: 'peek', password: 'a long viewer password' })).body.token;
    group = (await api(url, 'POST', '/api/groups', { name: 'Moderated', members: [bob.userId] }, alice.token)).body.group.conv;
    for (const text of ['fine', 'abusive one', 'abusive two', 'fine again']) {
      const r = await api(url, 'POST', '/api/messages', { clientMsgId: `m-${text}`, conv: group, kind: 'text', body: { text } }, bob.token);
      ids.push(r.body.message.id);
    }
    const one = await api(url, 'GET', `/api/console/messages/${ids[1]}`, undefined, viewer);
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assert.deepEqual([one.body.message.body.text, one.body.message.sender, one.body.conversation.id, one.body.conversation.kind], ['abusive one', bob.userId, group, 'group']);
    const byToken = await api(url, 'GET', `/api/admin/messages/${ids[1]}`, undefined, MSG_ADMIN);
    assert.deepEqual(byToken.body, one.body);
    const list = await api(url, 'GET', `/api/console/conversations/${encodeURIComponent(group)}/messages?limit=3`, undefined, viewer);
    assert.deepEqual(list.body.messages.map((m: any) => m.body.text), ['fine again', 'abusive two', 'abusive one']);
    assert.equal(list.body.more, true);
    const rest = await api(url, 'GET', `/api/admin/conversations/${encodeURIComponent(group)}/messages?before=${list.body.messages[2].seq}`, undefined, MSG_ADMIN);
    assert.deepEqual(rest.body.messages.map((m: any) => m.body.text ?? m.body.event), ['fine', 'group_created']);
    assert.equal((await api(url, 'GET', '/api/console/messages/m-nope', undefined, viewer)).status, 404);
    assert.equal((await api(url, 'GET', `/api/console/messages/${ids[1]}`, undefined, alice.token)).status, 401, 'an app token is not a console token');
    assert.equal((await api(url, 'GET', `/api/admin/messages/${ids[1]}`)).status, 401);
  });

  it('recall: every device is told (by operator), the stored message is a tombstone, the audit log has the reason', async () => {
    const { url, wsUrl } = srv();
    const { client } = await RawClient.connect(wsUrl, alice.token);
    assert.equal((await api(url, 'POST', `/api/console/messages/${ids[1]}/recall`, { reason: 'harassment' }, viewer)).status, 403, 'a viewer cannot act');
    assert.equal((await api(url, 'POST', `/api/console/messages/${ids[1]}/recall`, {}, owner)).status, 400, 'a reason is required');
    const r = await api(url, 'POST', `/api/console/messages/${ids[1]}/recall`, { reason: 'harassment' }, owner);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.message.kind, 'recalled');
    assert.equal(r.body.message.body.by, 'operator');
    const seq = r.body.message.seq;
    const live = await client.waitFor((f) => f.type === 'msg' && f.message.kind === 'recall' && f.message.body.seq === seq);
    assert.equal(live.message.body.by, 'operator');
    assert.equal(r.body.event.seq, live.message.seq);
    const h = await api(url, 'GET', `/api/conversations/${encodeURIComponent(group)}/messages?after=${seq - 1}&limit=1`, undefined, alice.token);
    assert.deepEqual([h.body.messages[0].kind, JSON.stringify(h.body.messages[0].body).includes('abusive one')], ['recalled', false]);
    // Again: nothing more happens.
    const again = await api(url, 'POST', `/api/console/messages/${ids[1]}/recall`, { reason: 'twice' }, owner);
    assert.equal(again.body.event, null);
    client.close();
    const audit = (await api(url, 'GET', '/api/console/audit?limit=20', undefined, owner)).body.entries.find((e: any) => e.action === 'message.recall' && e.detail.reason === 'harassment');
    assert.deepEqual([audit.admin, audit.target, audit.detail.conv, audit.detail.sender], ['mod', ids[1], group, bob.userId]);
  });

  it('delete with the operator token: a tombstone without an event, audited as token', async () => {
    const { url, wsUrl } = srv();
    const { client, welcome } = await RawClient.connect(wsUrl, alice.token);
    const before = (await api(url, 'GET', `/api/admin/messages/${ids[2]}`, undefined, MSG_ADMIN)).body.conversation.lastSeq;
    const d = await api(url, 'POST', `/api/admin/messages/${ids[2]}/delete`, { reason: 'illegal content' }, MSG_ADMIN);
    assert.equal(d.status, 200, JSON.stringify(d.body));
    assert.deepEqual([d.body.message.kind, d.body.event], ['recalled', null]);
    const after = (await api(url, 'GET', `/api/admin/messages/${ids[2]}`, undefined, MSG_ADMIN)).body;
    assert.equal(after.conversation.lastSeq, before, 'no event was posted');
    assert.equal(after.message.kind, 'recalled');
    assert.ok(!JSON.stringify(after.message.body).includes('abusive two'));
    assert.ok(welcome);
    client.close();
    const audit = (await api(url, 'GET', '/api/console/audit?limit=20', undefined, owner)).body.entries.find((e: any) => e.action === 'message.delete');
    assert.deepEqual([audit.admin, audit.target, audit.detail.reason], ['token', ids[2], 'illegal content']);
    // A notice cannot be removed this way.
    const notice = (await api(url, 'GET', `/api/admin/conversations/${encodeURIComponent(group)}/messages?after=0&limit=1`, undefined, MSG_ADMIN)).body.messages[0];
    assert.equal((await api(url, 'POST', `/api/admin/messages/${notice.id}/delete`, { reason: 'x' }, MSG_ADMIN)).status, 400);
  });
}
