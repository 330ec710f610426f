import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, registerAndLogin, RawClient, api, type ServerProcess, type Account } from './harness.ts';

// Issue 23: creating or inviting into a big group pushed a notice listing up to 1 000 user
// ids (~23 KB) to everyone online. Notices now name the first 3 and a count; the whole list
// is fetched on demand.
describe('group change notices: a count and 3 names; the full list on demand', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: { MAGPIE_USER_RATE: '2000', MAGPIE_USER_BURST: '2000' } });
  });
  after(async () => {
    await srv.stop();
  });

  const get = (path: string, who: Account) => api(srv.url, 'GET', path, undefined, who.token);
  const users = (n: number) => Promise.all(Array.from({ length: n }, () => registerAndLogin(srv.url)));
  async function allUsers(conv: string, seq: number, who: Account, limit: number): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const r = await get(`/api/groups/${conv}/changes/${seq}/users?limit=${limit}${out.length ? `&after=${out.at(-1)}` : ''}`, who);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      out.push(...r.body.users);
      if (r.body.users.length < limit) return out;
    }
  }

  it('create and invite: the pushed notice is small; the list pages by user id; small changes still name everyone', async () => {
    const [owner, ...rest] = await users(17);
    const members = rest.slice(0, 8);
    const invited = rest.slice(8, 13);
    const [late1, late2, outsider] = rest.slice(13);
    const created = await api(srv.url, 'POST', '/api/groups', { name: 'Big', members: members.map((m) => m.userId) }, owner!.token);
    assert.equal(created.status, 201);
    const conv: string = created.body.group.conv;
    const { client: c1 } = await RawClient.connect(srv.wsUrl, members[0]!.token);

    const createNotice = (await c1.request({ type: 'history', conv, after: 0 })).messages[0];
    assert.equal(createNotice.body.event, 'group_created');
    assert.equal(createNotice.body.data.count, 8);
    assert.equal(createNotice.body.data.members.length, 3);
    assert.equal(createNotice.body.data.owner, owner!.userId);
    const all = await allUsers(conv, createNotice.seq, members[0]!, 3);
    assert.deepEqual(all, members.map((m) => m.userId).sort(), 'every member, ordered, over three pages');
    for (const u of createNotice.body.data.members) assert.ok(all.includes(u));

    assert.equal((await api(srv.url, 'POST', `/api/groups/${conv}/invite`, { users: invited.map((m) => m.userId) }, owner!.token)).status, 200);
    const live = await c1.waitFor((f) => f.type === 'msg' && f.message.body?.event === 'members_invited');
    assert.deepEqual(Object.keys(live.message.body.data).sort(), ['by', 'count', 'users']);
    assert.equal(live.message.body.data.count, 5);
    assert.equal(live.message.body.data.users.length, 3);
    assert.ok(JSON.stringify(live).length < 1000, `the pushed notice stays small: ${JSON.stringify(live).length} bytes`);
    const inv = await get(`/api/groups/${conv}/changes/${live.message.seq}/users`, members[0]!);
    assert.deepEqual(inv.body.users, invited.map((m) => m.userId).sort());

    // A small invite names everyone in the notice; the route answers from it.
    await api(srv.url, 'POST', `/api/groups/${conv}/invite`, { users: [late1!.userId, late2!.userId] }, owner!.token);
    const small = await c1.waitFor((f) => f.type === 'msg' && f.message.body?.event === 'members_invited' && f.message.body.data.count === 2);
    assert.deepEqual([...small.message.body.data.users].sort(), [late1!.userId, late2!.userId].sort());
    assert.deepEqual((await get(`/api/groups/${conv}/changes/${small.message.seq}/users`, owner!)).body.users, [late1!.userId, late2!.userId].sort());
    assert.deepEqual((await get(`/api/groups/${conv}/changes/${small.message.seq}/users?after=${[late1!.userId, late2!.userId].sort()[0]}`, owner!)).body.users, [[late1!.userId, late2!.userId].sort()[1]]);

    // Kick four: the removal notice works the same way.
    await api(srv.url, 'POST', `/api/groups/${conv}/kick`, { users: invited.slice(0, 4).map((m) => m.userId) }, owner!.token);
    const kicked = await c1.waitFor((f) => f.type === 'msg' && f.message.body?.event === 'members_removed');
    assert.equal(kicked.message.body.data.count, 4);
    assert.deepEqual((await get(`/api/groups/${conv}/changes/${kicked.message.seq}/users`, owner!)).body.users, invited.slice(0, 4).map((m) => m.userId).sort());

    // Refusals: a non-member; a message that is not a change; a seq past the end; a bad seq.
    assert.equal((await get(`/api/groups/${conv}/changes/${live.message.seq}/users`, outsider!)).status, 403);
    const text = await c1.request({ type: 'send', clientMsgId: 'n1', conv, kind: 'text', body: { text: 'hi' } });
    assert.equal((await get(`/api/groups/${conv}/changes/${text.message.seq}/users`, owner!)).body.error.code, 'not_found');
    assert.equal((await get(`/api/groups/${conv}/changes/9999/users`, owner!)).status, 404);
    assert.equal((await get(`/api/groups/${conv}/changes/0/users`, owner!)).status, 400);
    // Since-join visibility: a member invited later cannot read the creation notice's list.
    assert.equal((await get(`/api/groups/${conv}/changes/${createNotice.seq}/users`, late1!)).status, 404);
    c1.close();
  });

  it('one create/invite request takes at most 1 000 users (documented limit)', async () => {
    const [owner] = await users(1);
    const tooMany = Array.from({ length: 1001 }, (_, i) => `u-nobody-${i}`);
    const r = await api(srv.url, 'POST', '/api/groups', { name: 'Too big', members: tooMany }, owner!.token);
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'invalid');
  });
});
