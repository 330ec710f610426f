import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, registerAndLogin, RawClient, api, sleep, type ServerProcess, type Account } from './harness.ts';

describe('groups end to end', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: { MAGPIE_USER_RATE: '2000', MAGPIE_USER_BURST: '2000', MAGPIE_GROUP_MAX_MEMBERS: '6', MAGPIE_SUPER_GROUP_THRESHOLD: '4' } });
  });
  after(async () => {
    await srv.stop();
  });

  const post = (path: string, body: unknown, who: Account) => api(srv.url, 'POST', path, body, who.token);
  async function users(n: number): Promise<Account[]> {
    return Promise.all(Array.from({ length: n }, () => registerAndLogin(srv.url)));
  }
  const systemEvents = (c: RawClient, conv: string) => c.firstArrivals().filter((f) => f.message.conv === conv && f.message.kind === 'system').map((f) => f.message.body.event);

  it('create, notices in seq order, info, search, members; admin actions and their refusals', async () => {
    const [owner, bob, carol, dave] = await users(4);
    const created = await post('/api/groups', { name: 'Hiking Club', members: [bob!.userId, carol!.userId] }, owner!);
    assert.equal(created.status, 201);
    const g = created.body.group;
    assert.equal(g.memberCount, 3);
    assert.equal(g.owner, owner!.userId);
    const conv = g.conv;
    const { client: cb } = await RawClient.connect(srv.wsUrl, bob!.token);
    const { client: cc } = await RawClient.connect(srv.wsUrl, carol!.token);
    const { client: co } = await RawClient.connect(srv.wsUrl, owner!.token);
    // The creation notice was delivered into each member's inbox (seq 1).
    const page = await cb.request({ type: 'sync', since: 0 });
    assert.equal(page.items[0].message.body.event, 'group_created');
    assert.equal(page.items[0].message.seq, 1);
    const found = await api(srv.url, 'GET', '/api/groups?query=hiking', undefined, dave!.token);
    assert.ok(found.body.groups.some((x: any) => x.conv === conv), 'search by name prefix, case-insensitive');
    const members = await api(srv.url, 'GET', `/api/groups/${conv}/members`, undefined, bob!.token);
    assert.deepEqual(members.body.members.map((m: any) => m.role).sort(), ['member', 'member', 'owner']);

    // Messages and notices share one seq order.
    const m1 = await cb.request({ type: 'send', clientMsgId: 'g1', conv, kind: 'text', body: { text: 'hi all' } });
    assert.equal(m1.message.seq, 2);
    assert.equal((await post(`/api/groups/${conv}/role`, { user: bob!.userId, role: 'admin' }, owner!)).status, 200);
    await cc.waitFor((f) => f.type === 'msg' && f.message.body?.event === 'role_changed');
    const m3 = await cc.request({ type: 'send', clientMsgId: 'g3', conv, kind: 'text', body: { text: 'congrats' } });
    assert.equal(m3.message.seq, 4);

    // Refusals: a plain member cannot kick; an admin cannot kick the owner; the owner cannot leave.
    const notAdmin = await post(`/api/groups/${conv}/kick`, { users: [bob!.userId] }, carol!);
    assert.equal(notAdmin.status, 403);
    assert.equal(notAdmin.body.error.code, 'forbidden');
    assert.equal((await post(`/api/groups/${conv}/kick`, { users: [owner!.userId] }, bob!)).body.error.code, 'forbidden');
    assert.equal((await post(`/api/groups/${conv}/leave`, {}, owner!)).body.error.code, 'forbidden');
    // Non-members can neither read nor send.
    const { client: cd } = await RawClient.connect(srv.wsUrl, dave!.token);
    assert.equal((await cd.requestError({ type: 'send', clientMsgId: 'x', conv, kind: 'text', body: { text: 'let me in' } })).code, 'forbidden');
    assert.equal((await cd.requestError({ type: 'history', conv })).code, 'forbidden');
    assert.equal((await api(srv.url, 'GET', `/api/groups/${conv}/members`, undefined, dave!.token)).status, 403);

    // Mute a member: their send is refused with `muted`; mute-all spares admins.
    assert.equal((await post(`/api/groups/${conv}/mute`, { user: carol!.userId, durationMs: 60_000 }, bob!)).status, 200);
    assert.equal((await cc.requestError({ type: 'send', clientMsgId: 'muted1', conv, kind: 'text', body: { text: 'shh' } })).code, 'muted');
    assert.equal((await post(`/api/groups/${conv}/mute`, { user: carol!.userId, durationMs: 0 }, bob!)).status, 200);
    await cc.request({ type: 'send', clientMsgId: 'unmuted', conv, kind: 'text', body: { text: 'back' } });
    const muteAll = await api(srv.url, 'PATCH', `/api/groups/${conv}`, { muteAll: true, announcement: 'Trip on Saturday' }, bob!.token);
    assert.equal(muteAll.body.group.announcement, 'Trip on Saturday');
    assert.equal((await cc.requestError({ type: 'send', clientMsgId: 'all-muted', conv, kind: 'text', body: { text: 'x' } })).code, 'muted');
    await cb.request({ type: 'send', clientMsgId: 'admin-talks', conv, kind: 'text', body: { text: 'admins may speak' } });
    assert.equal((await api(srv.url, 'PATCH', `/api/groups/${conv}`, { muteAll: false }, carol!.token)).body.error.code, 'forbidden');
    await api(srv.url, 'PATCH', `/api/groups/${conv}`, { muteAll: false }, bob!.token);

    // Every change showed up as a notice, in order, for a member.
    await cc.waitFor(() => systemEvents(cc, conv).includes('group_updated') && systemEvents(cc, conv).filter((e) => e === 'group_updated').length === 2);
    const hist = await cc.request({ type: 'history', conv, after: 0, limit: 100 });
    assert.deepEqual(hist.messages.map((m: any) => m.seq), Array.from({ length: hist.messages.length }, (_, i) => i + 1), 'one gap-free seq for messages and notices');
    assert.deepEqual(
      hist.messages.filter((m: any) => m.kind === 'system').map((m: any) => m.body.event),
      ['group_created', 'role_changed', 'member_muted', 'member_unmuted', 'group_updated', 'group_updated'],
    );

    // Transfer ownership, then the new owner dismisses; sends are refused afterwards.
    assert.equal((await post(`/api/groups/${conv}/transfer`, { to: bob!.userId }, owner!)).status, 200);
    const info = await api(srv.url, 'GET', `/api/groups/${conv}`, undefined, bob!.token);
    assert.equal(info.body.group.owner, bob!.userId);
    assert.equal((await post(`/api/groups/${conv}/dismiss`, {}, owner!)).body.error.code, 'forbidden', 'the old owner is now an admin');
    assert.equal((await post(`/api/groups/${conv}/dismiss`, {}, bob!)).status, 200);
    assert.equal((await co.requestError({ type: 'send', clientMsgId: 'after-dismiss', conv, kind: 'text', body: { text: 'anyone?' } })).code, 'forbidden');
    for (const c of [cb, cc, co, cd]) c.close();
  });

  it('join requests are live: the owner and admins get join_request frames when one is filed and handled; plain members do not', async () => {
    const [owner, admin, member, applicant, invitee] = await users(5);
    const g = (await post('/api/groups', { name: 'Live Desk', members: [admin!.userId, member!.userId], inviteNeedsApproval: true }, owner!)).body.group;
    await post(`/api/groups/${g.conv}/role`, { user: admin!.userId, role: 'admin' }, owner!);
    const { client: co } = await RawClient.connect(srv.wsUrl, owner!.token);
    const { client: cad } = await RawClient.connect(srv.wsUrl, admin!.token);
    const { client: cm } = await RawClient.connect(srv.wsUrl, member!.token);
    const isReq = (event: string, userId: string) => (f: any) => f.type === 'join_request' && f.conv === g.conv && f.event === event && f.userId === userId;
    await post(`/api/groups/${g.conv}/join`, { message: 'hi' }, applicant!);
    for (const c of [co, cad]) assert.deepEqual(await c.waitFor(isReq('filed', applicant!.userId)), { type: 'join_request', conv: g.conv, userId: applicant!.userId, event: 'filed', inviter: null, by: null });
    await post(`/api/groups/${g.conv}/invite`, { users: [invitee!.userId] }, member!);
    for (const c of [co, cad]) assert.equal((await c.waitFor(isReq('filed', invitee!.userId))).inviter, member!.userId);
    await post(`/api/groups/${g.conv}/requests/${applicant!.userId}/approve`, {}, admin!);
    for (const c of [co, cad]) assert.equal((await c.waitFor(isReq('approved', applicant!.userId))).by, admin!.userId);
    await post(`/api/groups/${g.conv}/requests/${invitee!.userId}/reject`, {}, owner!);
    for (const c of [co, cad]) assert.equal((await c.waitFor(isReq('rejected', invitee!.userId))).by, owner!.userId);
    await sleep(100);
    assert.equal(cm.frames.filter((f: any) => f.type === 'join_request').length, 0, 'a plain member decides nothing and hears nothing');
    for (const c of [co, cad, cm]) c.close();
  });

  it('join by request with approval, open join, invitations that need approval, member limit', async () => {
    const [owner, admin, member, applicant, walkIn, invitee, extra1, extra2] = await users(8);
    const g = (await post('/api/groups', { name: 'Book Club', members: [admin!.userId, member!.userId], inviteNeedsApproval: true }, owner!)).body.group;
    await post(`/api/groups/${g.conv}/role`, { user: admin!.userId, role: 'admin' }, owner!);
    // Application: pending until an admin approves.
    assert.deepEqual((await post(`/api/groups/${g.conv}/join`, { message: 'I read a lot' }, applicant!)).body, { joined: false });
    assert.equal((await api(srv.url, 'GET', `/api/groups/${g.conv}/requests`, undefined, member!.token)).status, 403);
    const reqs = await api(srv.url, 'GET', `/api/groups/${g.conv}/requests`, undefined, admin!.token);
    assert.deepEqual(reqs.body.requests.map((r: any) => [r.userId, r.message]), [[applicant!.userId, 'I read a lot']]);
    const { client: ca } = await RawClient.connect(srv.wsUrl, applicant!.token);
    assert.equal((await ca.requestError({ type: 'history', conv: g.conv })).code, 'forbidden', 'not a member before approval');
    assert.equal((await post(`/api/groups/${g.conv}/requests/${applicant!.userId}/approve`, {}, admin!)).status, 200);
    await ca.waitFor((f) => f.type === 'msg' && f.message.body?.event === 'member_approved');
    // A plain member's invitation waits for approval; an admin's goes through at once.
    assert.deepEqual((await post(`/api/groups/${g.conv}/invite`, { users: [invitee!.userId] }, member!)).body, { added: [], pending: [invitee!.userId] });
    assert.equal((await post(`/api/groups/${g.conv}/requests/${invitee!.userId}/reject`, {}, owner!)).status, 200);
    assert.deepEqual((await post(`/api/groups/${g.conv}/invite`, { users: [invitee!.userId] }, admin!)).body, { added: [invitee!.userId], pending: [] });
    // The limit is 6 members: owner, admin, member, applicant, invitee = 5; two more do not fit.
    const full = await post(`/api/groups/${g.conv}/invite`, { users: [extra1!.userId, extra2!.userId] }, owner!);
    assert.equal(full.status, 409);
    assert.equal(full.body.error.code, 'group_full');
    // Open groups: join at once.
    const open = (await post('/api/groups', { name: 'Open Mic', joinPolicy: 'open' }, owner!)).body.group;
    assert.deepEqual((await post(`/api/groups/${open.conv}/join`, {}, walkIn!)).body, { joined: true });
    assert.equal((await post(`/api/groups/${open.conv}/join`, {}, walkIn!)).body.error.code, 'conflict');
    ca.close();
  });

  it('a removed member stops receiving at once and cannot read what is sent after the removal', async () => {
    const [owner, stays, goes] = await users(3);
    const g = (await post('/api/groups', { name: 'Team', members: [stays!.userId, goes!.userId] }, owner!)).body.group;
    const { client: cs } = await RawClient.connect(srv.wsUrl, stays!.token);
    const { client: cg } = await RawClient.connect(srv.wsUrl, goes!.token);
    const { client: co } = await RawClient.connect(srv.wsUrl, owner!.token);
    await co.request({ type: 'send', clientMsgId: 'before', conv: g.conv, kind: 'text', body: { text: 'before' } });
    await post(`/api/groups/${g.conv}/kick`, { users: [goes!.userId] }, owner!);
    const notice = await cg.waitFor((f) => f.type === 'msg' && f.message.body?.event === 'members_removed');
    await co.request({ type: 'send', clientMsgId: 'after', conv: g.conv, kind: 'text', body: { text: 'secret plans' } });
    await cs.waitFor((f) => f.type === 'msg' && f.message.clientMsgId === 'after');
    await sleep(200);
    assert.ok(!cg.messages().some((f) => f.message.clientMsgId === 'after'), 'no live delivery after removal');
    const page = await cg.request({ type: 'sync', since: notice.inboxSeq });
    assert.deepEqual(page.items, [], 'nothing new in the removed member’s inbox');
    const hist = await cg.request({ type: 'history', conv: g.conv, after: 0 });
    assert.deepEqual(hist.messages.map((m: any) => m.body.text ?? m.body.event), ['group_created', 'before', 'members_removed']);
    assert.equal((await cg.requestError({ type: 'send', clientMsgId: 'x', conv: g.conv, kind: 'text', body: { text: 'hey' } })).code, 'forbidden');
    for (const c of [cs, cg, co]) c.close();
  });

  it('mentions are counted apart from unread and cleared by reading', async () => {
    const [owner, ann, ben] = await users(3);
    const g = (await post('/api/groups', { name: 'Mentions', members: [ann!.userId, ben!.userId] }, owner!)).body.group;
    const { client: co } = await RawClient.connect(srv.wsUrl, owner!.token);
    await co.request({ type: 'send', clientMsgId: 'm1', conv: g.conv, kind: 'text', body: { text: '@ann look' }, mentions: [ann!.userId] });
    await co.request({ type: 'send', clientMsgId: 'm2', conv: g.conv, kind: 'text', body: { text: 'plain' } });
    await co.request({ type: 'send', clientMsgId: 'm3', conv: g.conv, kind: 'text', body: { text: '@all meeting' }, mentions: 'all' });
    const { client: c1 } = await RawClient.connect(srv.wsUrl, ann!.token);
    const { client: c2 } = await RawClient.connect(srv.wsUrl, ben!.token);
    const annEntry = (await c1.request({ type: 'convs', since: 0 })).entries.find((e: any) => e.conv === g.conv);
    const benEntry = (await c2.request({ type: 'convs', since: 0 })).entries.find((e: any) => e.conv === g.conv);
    assert.equal(annEntry.unread, 4, 'notice + 3 messages');
    assert.equal(annEntry.mentions, 2);
    assert.equal(benEntry.mentions, 1);
    const read = await c1.request({ type: 'read', conv: g.conv, seq: annEntry.lastSeq });
    assert.equal(read.entry.mentions, 0);
    assert.equal(read.entry.unread, 0);
    assert.equal((await c1.requestError({ type: 'send', clientMsgId: 'dm-mention', to: ben!.userId, kind: 'text', body: { text: 'x' }, mentions: [ben!.userId] })).code, 'invalid');
    for (const c of [co, c1, c2]) c.close();
  });

  it('a group growing past the threshold becomes a super group without losing or duplicating a message', async () => {
    const [owner, a, b, c, d] = await users(5);
    const g = (await post('/api/groups', { name: 'Growing', members: [a!.userId], joinPolicy: 'open' }, owner!)).body.group;
    const { client: ca } = await RawClient.connect(srv.wsUrl, a!.token);
    const { client: co } = await RawClient.connect(srv.wsUrl, owner!.token);
    await co.request({ type: 'send', clientMsgId: 's1', conv: g.conv, kind: 'text', body: { text: 'small' } });
    for (const u of [b, c, d]) await post(`/api/groups/${g.conv}/join`, {}, u!);
    const info = await api(srv.url, 'GET', `/api/groups/${g.conv}`, undefined, a!.token);
    assert.equal(info.body.group.kind, 'super', 'above 4 members it is a super group');
    await co.request({ type: 'send', clientMsgId: 's2', conv: g.conv, kind: 'text', body: { text: 'big now' } });
    // Online members get the advanced signal with the message, not an inbox item.
    const adv = await ca.waitFor((f) => f.type === 'advanced' && f.conv === g.conv && f.message.clientMsgId === 's2');
    assert.equal(adv.seq, info.body.group.lastSeq + 1);
    const hist = await ca.request({ type: 'history', conv: g.conv, after: 0, limit: 100 });
    assert.deepEqual(hist.messages.map((m: any) => m.seq), Array.from({ length: adv.seq }, (_, i) => i + 1));
    assert.equal(new Set(hist.messages.map((m: any) => m.id)).size, hist.messages.length);
    // A reconnecting member learns its super groups in the welcome.
    const { client: cd, welcome } = await RawClient.connect(srv.wsUrl, d!.token);
    assert.deepEqual(welcome.supers, [{ conv: g.conv, lastSeq: adv.seq }]);
    assert.deepEqual([...ca.schemaErrors, ...co.schemaErrors, ...cd.schemaErrors], []);
    for (const x of [ca, co, cd]) x.close();
  });
});
