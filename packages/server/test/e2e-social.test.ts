import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, registerAndLogin, login, RawClient, api, sleep, uniqueName, type Account, type ServerProcess } from './harness.ts';

/**
 * The social graph end to end: the real server process over REST and the raw protocol —
 * profiles, search, friend requests, friends, blocks, the stranger policy, live `relation`
 * frames on every device of both users, and the relation change log a reconnecting device
 * pulls from its version.
 */

const FAST = { MAGPIE_IP_RATE: '100000', MAGPIE_IP_BURST: '100000', MAGPIE_USER_RATE: '10000', MAGPIE_USER_BURST: '10000' };

const relations = (c: RawClient): any[] => c.frames.filter((f) => f.type === 'relation');
const waitRelations = (c: RawClient, n: number) => c.waitFor(() => relations(c).length >= n).then(() => relations(c));
const summary = (frames: any[]) => frames.map((f) => [f.version, f.change.kind, f.change.state, f.change.peer]);

function expectError(res: { status: number; body: any }, status: number, code: string): void {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body?.error?.code, code, JSON.stringify(res.body));
}

async function sendText(c: RawClient, to: string, text: string): Promise<any> {
  return c.request({ type: 'send', clientMsgId: uniqueName('c'), to, kind: 'text', body: { text } });
}

describe('social graph end to end (real server process, policy allow)', () => {
  let srv: ServerProcess;
  const GET = (path: string, who?: Account) => api(srv.url, 'GET', path, undefined, who?.token);
  const POST = (path: string, body: unknown, who?: Account) => api(srv.url, 'POST', path, body, who?.token);
  const PATCH = (path: string, body: unknown, who?: Account) => api(srv.url, 'PATCH', path, body, who?.token);
  const PUT = (path: string, who?: Account) => api(srv.url, 'PUT', path, undefined, who?.token);
  const DELETE = (path: string, who?: Account) => api(srv.url, 'DELETE', path, undefined, who?.token);
  const version = async (who: Account): Promise<number> => (await GET('/api/relations/changes?since=0&limit=1', who)).body.version;

  before(async () => {
    srv = await startServer({ env: FAST });
  });
  after(async () => {
    await srv.stop();
  });

  it('every social route refuses a missing or unknown token with 401 unauthorized', async () => {
    const routes: [string, string, unknown?][] = [
      ['GET', '/api/profile'],
      ['PATCH', '/api/profile', { nickname: 'x' }],
      ['GET', '/api/users/search?q=a'],
      ['GET', '/api/users/u1/profile'],
      ['POST', '/api/friends/requests', { to: 'u1' }],
      ['GET', '/api/friends/requests'],
      ['POST', '/api/friends/requests/u1/accept'],
      ['POST', '/api/friends/requests/u1/reject'],
      ['DELETE', '/api/friends/requests/u1'],
      ['GET', '/api/friends'],
      ['DELETE', '/api/friends/u1'],
      ['GET', '/api/blocks'],
      ['PUT', '/api/blocks/u1'],
      ['DELETE', '/api/blocks/u1'],
      ['GET', '/api/relations/changes?since=0'],
    ];
    for (const [method, path, body] of routes) {
      expectError(await api(srv.url, method, path, body), 401, 'unauthorized');
      expectError(await api(srv.url, method, path, body, 'not-a-token'), 401, 'unauthorized');
    }
  });

  it('profiles: read own, update partially, read someone else’s with the relation; bad input changes nothing', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const own = await GET('/api/profile', a);
    assert.deepEqual(own.body, { profile: { id: a.userId, username: a.username, nickname: a.username, avatar: null, extra: {} } });

    const upd = await PATCH('/api/profile', { nickname: '  Alice Liddell ', avatar: 'https://cdn.example.com/alice.png', extra: { city: 'Oxford', langs: ['en'] } }, a);
    assert.equal(upd.status, 200, JSON.stringify(upd.body));
    const expected = { id: a.userId, username: a.username, nickname: 'Alice Liddell', avatar: 'https://cdn.example.com/alice.png', extra: { city: 'Oxford', langs: ['en'] } };
    assert.deepEqual(upd.body.profile, expected);
    assert.deepEqual((await PATCH('/api/profile', { extra: { city: 'London' } }, a)).body.profile.avatar, expected.avatar, 'avatar kept');
    expected.extra = { city: 'London' } as any;

    const bad: unknown[] = [
      {},
      { avatar: 'ftp://cdn.example.com/a.png' },
      { avatar: 'not a url' },
      { avatar: `https://x.example/${'a'.repeat(2100)}` },
      { extra: [1, 2] },
      { extra: 'text' },
      { extra: { blob: 'x'.repeat(5000) } },
      { nickname: '' },
      { nickname: '   ' },
      { nickname: 'n'.repeat(65) },
      { nickname: 'tab\there' },
      { nickname: 'ok', color: 'red' },
    ];
    for (const body of bad) expectError(await PATCH('/api/profile', body, a), 400, 'invalid');
    assert.deepEqual((await GET('/api/profile', a)).body.profile, expected, 'nothing changed on bad input');
    // The account API sees the new nickname (it lives in users).
    assert.equal((await GET('/api/me', a)).body.user.nickname, 'Alice Liddell');

    const seen = await GET(`/api/users/${a.userId}/profile`, b);
    assert.deepEqual(seen.body, { profile: expected, relation: 'none' });
    expectError(await GET('/api/users/nobody-here/profile', b), 404, 'not_found');
  });

  it('search: exact id or username, nickname prefix case-insensitively, paged; bad queries are invalid', async () => {
    const me = await registerAndLogin(srv.url);
    const tag = uniqueName('t').replace(/[0-9]/g, 'k');
    const made: Account[] = [];
    for (const nick of [`${tag}Zed`, `${tag}zeb`, `${tag}ZEBRA`, `${tag}zz`, `${tag}Zed`]) {
      const u = await registerAndLogin(srv.url);
      await PATCH('/api/profile', { nickname: nick }, u);
      made.push(u);
    }
    const byId = await GET(`/api/users/search?q=${made[0]!.userId}`, me);
    assert.deepEqual(byId.body.exact.map((p: any) => p.id), [made[0]!.userId]);
    const byName = await GET(`/api/users/search?q=${made[1]!.username}`, me);
    assert.deepEqual(byName.body.exact.map((p: any) => p.id), [made[1]!.userId]);
    assert.deepEqual(Object.keys(byName.body.exact[0]).sort(), ['avatar', 'id', 'nickname', 'username']);

    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { status: number; body: any } = await GET(`/api/users/search?q=${tag.toUpperCase()}ZE&limit=2${cursor ? `&cursor=${cursor}` : ''}`, me);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      ids.push(...res.body.results.map((p: any) => p.id));
      cursor = res.body.next;
      pages++;
    } while (cursor);
    assert.equal(pages, 2);
    assert.deepEqual(ids.sort(), [made[0], made[1], made[2], made[4]].map((u) => u!.userId).sort());

    expectError(await GET('/api/users/search', me), 400, 'invalid');
    expectError(await GET('/api/users/search?q=', me), 400, 'invalid');
    expectError(await GET(`/api/users/search?q=${'x'.repeat(65)}`, me), 400, 'invalid');
    expectError(await GET('/api/users/search?q=a&limit=0', me), 400, 'invalid');
    expectError(await GET('/api/users/search?q=a&cursor=garbage', me), 400, 'invalid');
  });

  it('request → accept reaches every device of both users live; lists follow; messages flow; remove', async () => {
    const a = await registerAndLogin(srv.url, { deviceId: 'a-web' });
    const a2 = await login(srv.url, a.username, 'a-phone', 'ios');
    const b = await registerAndLogin(srv.url, { deviceId: 'b-web' });
    const b2 = await login(srv.url, b.username, 'b-desk', 'desktop');
    const devices = await Promise.all([a, a2, b, b2].map(async (x) => (await RawClient.connect(srv.wsUrl, x.token)).client));
    const [ca, ca2, cb, cb2] = devices as [RawClient, RawClient, RawClient, RawClient];

    const req = await POST('/api/friends/requests', { to: b.userId, greeting: 'Hi, it is Alice' }, a);
    assert.deepEqual(req.body, { peer: b.userId, state: 'outgoing', version: 1, duplicate: false });
    for (const c of [ca, ca2]) assert.deepEqual(summary(await waitRelations(c, 1)), [[1, 'request_sent', 'outgoing', b.userId]]);
    for (const c of [cb, cb2]) {
      const [f] = await waitRelations(c, 1);
      assert.deepEqual(f.change, { version: 1, peer: a.userId, kind: 'request_received', state: 'incoming', greeting: 'Hi, it is Alice', time: f.change.time });
    }
    const incoming = await GET('/api/friends/requests?direction=incoming', b);
    assert.deepEqual(incoming.body.items.map((r: any) => [r.user.id, r.greeting]), [[a.userId, 'Hi, it is Alice']]);
    assert.equal(incoming.body.version, 1);
    assert.deepEqual((await GET('/api/friends/requests?direction=outgoing', a)).body.items.map((r: any) => r.user.id), [b.userId]);
    assert.equal((await GET(`/api/users/${b.userId}/profile`, a)).body.relation, 'outgoing');

    const acc = await POST(`/api/friends/requests/${a.userId}/accept`, undefined, b);
    assert.deepEqual(acc.body, { peer: a.userId, state: 'friend', version: 2, duplicate: false });
    for (const c of [ca, ca2]) assert.deepEqual(summary(await waitRelations(c, 2)).at(-1), [2, 'request_accepted', 'friend', b.userId]);
    for (const c of [cb, cb2]) assert.deepEqual(summary(await waitRelations(c, 2)).at(-1), [2, 'friend_added', 'friend', a.userId]);
    assert.deepEqual((await GET('/api/friends', a)).body.items.map((f: any) => f.user.id), [b.userId]);
    assert.deepEqual((await GET('/api/friends', b)).body.items.map((f: any) => f.user.id), [a.userId]);
    assert.equal((await GET('/api/friends/requests', b)).body.items.length, 0);

    const sent = await sendText(ca, b.userId, 'friends now');
    assert.equal(sent.message.seq, 1);
    await cb.waitFor((f) => f.type === 'msg' && f.message.id === sent.message.id);

    const rm = await DELETE(`/api/friends/${b.userId}`, a);
    assert.deepEqual(rm.body, { peer: b.userId, state: 'none', version: 3, duplicate: false });
    for (const c of devices) assert.deepEqual(summary(await waitRelations(c, 3)).at(-1)?.slice(1, 3), ['friend_removed', 'none']);
    assert.equal((await GET('/api/friends', b)).body.items.length, 0);
    expectError(await DELETE(`/api/friends/${b.userId}`, a), 404, 'not_found');
    await sleep(100);
    for (const c of devices) {
      assert.equal(relations(c).length, 3, 'nothing extra was published');
      assert.deepEqual(c.schemaErrors, []);
      c.close();
    }
  });

  it('reject and cancel reach the other side; a duplicate request is idempotent; a mutual request accepts; a friend request to a friend is a conflict', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const { client: ca } = await RawClient.connect(srv.wsUrl, a.token);
    const { client: cb } = await RawClient.connect(srv.wsUrl, b.token);

    await POST('/api/friends/requests', { to: b.userId }, a);
    const dup = await POST('/api/friends/requests', { to: b.userId, greeting: 'again?' }, a);
    assert.deepEqual(dup.body, { peer: b.userId, state: 'outgoing', version: 1, duplicate: true });
    assert.equal((await GET('/api/friends/requests', b)).body.items[0].greeting, '', 'the first greeting stays');

    const rej = await POST(`/api/friends/requests/${a.userId}/reject`, undefined, b);
    assert.deepEqual(rej.body, { peer: a.userId, state: 'none', version: 2, duplicate: false });
    assert.deepEqual(summary(await waitRelations(ca, 2)), [
      [1, 'request_sent', 'outgoing', b.userId],
      [2, 'request_rejected', 'none', b.userId],
    ]);
    expectError(await POST(`/api/friends/requests/${a.userId}/reject`, undefined, b), 404, 'not_found');
    expectError(await POST(`/api/friends/requests/${a.userId}/accept`, undefined, b), 404, 'not_found');

    await POST('/api/friends/requests', { to: b.userId, greeting: 'second try' }, a);
    const cancel = await DELETE(`/api/friends/requests/${b.userId}`, a);
    assert.deepEqual(cancel.body, { peer: b.userId, state: 'none', version: 4, duplicate: false });
    assert.deepEqual(summary(await waitRelations(cb, 4)).slice(2), [
      [3, 'request_received', 'incoming', a.userId],
      [4, 'request_cancelled', 'none', a.userId],
    ]);
    assert.equal((await GET('/api/friends/requests', b)).body.items.length, 0);

    // Mutual: b asks a while a's request is pending → they are friends.
    await POST('/api/friends/requests', { to: b.userId, greeting: 'third' }, a);
    const mutual = await POST('/api/friends/requests', { to: a.userId, greeting: 'oh hi' }, b);
    assert.deepEqual(mutual.body, { peer: a.userId, state: 'friend', version: 6, duplicate: false });
    assert.deepEqual(summary(await waitRelations(ca, 6)).at(-1), [6, 'request_accepted', 'friend', b.userId]);
    expectError(await POST('/api/friends/requests', { to: b.userId }, a), 409, 'conflict');
    ca.close();
    cb.close();
  });

  it('bad relation input is refused with a typed error and changes nothing', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const bodies: [unknown, number, string][] = [
      [{}, 400, 'invalid'],
      [{ to: '' }, 400, 'invalid'],
      [{ to: b.userId, greeting: 'g'.repeat(201) }, 400, 'invalid'],
      [{ to: b.userId, greeting: 7 }, 400, 'invalid'],
      [{ to: b.userId, extra: true }, 400, 'invalid'],
      [{ to: a.userId }, 400, 'invalid'],
      [{ to: 'nobody-at-all' }, 404, 'not_found'],
    ];
    for (const [body, status, code] of bodies) expectError(await POST('/api/friends/requests', body, a), status, code);
    const malformed = await fetch(`${srv.url}/api/friends/requests`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${a.token}` }, body: '{"to":' });
    expectError({ status: malformed.status, body: await malformed.json() }, 400, 'invalid');
    expectError(await PUT(`/api/blocks/${a.userId}`, a), 400, 'invalid');
    expectError(await PUT('/api/blocks/nobody-at-all', a), 404, 'not_found');
    expectError(await PUT(`/api/blocks/${'x'.repeat(65)}`, a), 400, 'invalid');
    expectError(await GET('/api/relations/changes', a), 400, 'invalid');
    expectError(await GET('/api/relations/changes?since=-1', a), 400, 'invalid');
    expectError(await GET('/api/relations/changes?since=abc', a), 400, 'invalid');
    expectError(await GET('/api/friends?limit=501', a), 400, 'invalid');
    expectError(await GET('/api/friends/requests?direction=sideways', a), 400, 'invalid');
    assert.equal(await version(a), 0);
    assert.equal(await version(b), 0);
    assert.equal((await GET('/api/friends/requests', b)).body.items.length, 0);
  });

  it('block: ends the friendship, the blocked user can neither message nor request; unblock restores messaging', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const { client: ca } = await RawClient.connect(srv.wsUrl, a.token);
    const { client: cb } = await RawClient.connect(srv.wsUrl, b.token);
    await POST('/api/friends/requests', { to: b.userId }, a);
    await POST(`/api/friends/requests/${a.userId}/accept`, undefined, b);
    await sendText(cb, a.userId, 'before the block');

    const blk = await PUT(`/api/blocks/${b.userId}`, a);
    assert.deepEqual(blk.body, { peer: b.userId, state: 'blocked', version: 3, duplicate: false });
    assert.deepEqual(summary(await waitRelations(ca, 3)).at(-1), [3, 'blocked', 'blocked', b.userId]);
    assert.deepEqual(summary(await waitRelations(cb, 3)).at(-1), [3, 'friend_removed', 'none', a.userId], 'b sees a removal, not the block');
    assert.equal((await PUT(`/api/blocks/${b.userId}`, a)).body.duplicate, true);
    assert.deepEqual((await GET('/api/blocks', a)).body.items.map((x: any) => x.user.id), [b.userId]);
    assert.equal((await GET('/api/friends', a)).body.items.length, 0);
    assert.equal((await GET(`/api/users/${a.userId}/profile`, b)).body.relation, 'none');

    // The blocked user can message neither over the socket nor over REST, nor send a request.
    const wsErr = await cb.requestError({ type: 'send', clientMsgId: 'blocked-1', to: a.userId, kind: 'text', body: { text: 'hello?' } });
    assert.equal(wsErr.code, 'forbidden');
    expectError(await POST('/api/messages', { clientMsgId: 'blocked-2', to: a.userId, kind: 'text', body: { text: 'hello?' } }, b), 403, 'forbidden');
    expectError(await POST('/api/friends/requests', { to: a.userId, greeting: 'please' }, b), 403, 'forbidden');
    // The blocker cannot message or request either until unblocking.
    assert.equal((await ca.requestError({ type: 'send', clientMsgId: 'a-1', to: b.userId, kind: 'text', body: { text: 'x' } })).code, 'forbidden');
    expectError(await POST('/api/friends/requests', { to: b.userId }, a), 403, 'forbidden');
    await sleep(100);
    assert.equal(ca.firstArrivals().length, 1, 'nothing from the blocked user arrived');
    const conv = (await GET('/api/conversations?since=0', a)).body.entries[0];
    assert.equal(conv.lastSeq, 1, 'nothing was stored');
    assert.equal(await version(b), 3, 'refused requests log nothing');

    const unb = await DELETE(`/api/blocks/${b.userId}`, a);
    assert.deepEqual(unb.body, { peer: b.userId, state: 'none', version: 4, duplicate: false });
    assert.deepEqual(summary(await waitRelations(ca, 4)).at(-1), [4, 'unblocked', 'none', b.userId]);
    assert.equal((await DELETE(`/api/blocks/${b.userId}`, a)).body.duplicate, true);
    const after = await sendText(cb, a.userId, 'after the unblock');
    assert.equal(after.message.seq, 2, 'strangers may message under the allow policy');
    await sleep(50);
    assert.equal(relations(cb).length, 3, 'b never hears about block or unblock');
    ca.close();
    cb.close();
  });

  it('a reconnecting device gets exactly the changes since its version', async () => {
    const me = await registerAndLogin(srv.url, { deviceId: 'stay' });
    const gone = await login(srv.url, me.username, 'away', 'desktop');
    const peers = await Promise.all(Array.from({ length: 4 }, () => registerAndLogin(srv.url)));
    const { client: stay } = await RawClient.connect(srv.wsUrl, me.token);
    let { client: away } = await RawClient.connect(srv.wsUrl, gone.token);

    await POST('/api/friends/requests', { to: me.userId, greeting: 'p0' }, peers[0]!);
    const [first] = await waitRelations(away, 1);
    const localVersion = first.version;
    away.close();
    await away.waitClose();

    // While `away` is offline: requests, an accept, a reject, a block, a removal.
    await POST('/api/friends/requests', { to: me.userId, greeting: 'p1' }, peers[1]!);
    await POST('/api/friends/requests', { to: peers[2]!.userId, greeting: 'from me' }, me);
    await POST(`/api/friends/requests/${peers[0]!.userId}/accept`, undefined, me);
    await POST(`/api/friends/requests/${peers[1]!.userId}/reject`, undefined, me);
    await POST(`/api/friends/requests/${me.userId}/accept`, undefined, peers[2]!);
    await PUT(`/api/blocks/${peers[3]!.userId}`, me);
    assert.equal((await DELETE(`/api/friends/${me.userId}`, peers[0]!)).status, 200);
    const live = await waitRelations(stay, 8);
    assert.deepEqual(live.map((f) => f.version), [1, 2, 3, 4, 5, 6, 7, 8]);

    ({ client: away } = await RawClient.connect(srv.wsUrl, gone.token));
    const got = await api(srv.url, 'GET', `/api/relations/changes?since=${localVersion}`, undefined, gone.token);
    assert.equal(got.status, 200);
    assert.equal(got.body.full, false);
    assert.equal(got.body.more, false);
    assert.equal(got.body.version, 8);
    assert.deepEqual(got.body.changes, live.slice(1).map((f) => f.change), 'exactly what the online device saw after v1');
    assert.deepEqual(summary(live.slice(1)).map((x) => x.slice(1, 3)), [
      ['request_received', 'incoming'],
      ['request_sent', 'outgoing'],
      ['friend_added', 'friend'],
      ['request_rejected', 'none'],
      ['request_accepted', 'friend'],
      ['blocked', 'blocked'],
      ['friend_removed', 'none'],
    ]);
    // Paged: three at a time.
    const paged: any[] = [];
    let since = localVersion;
    for (;;) {
      const page = await api(srv.url, 'GET', `/api/relations/changes?since=${since}&limit=3`, undefined, gone.token);
      paged.push(...page.body.changes);
      since = page.body.changes.at(-1)?.version ?? since;
      if (!page.body.more) break;
    }
    assert.deepEqual(paged, got.body.changes);
    // Up to date: nothing.
    assert.deepEqual((await api(srv.url, 'GET', '/api/relations/changes?since=8', undefined, gone.token)).body, { version: 8, changes: [], more: false, full: false });
    // Ahead of the server (e.g. a reset server): reload.
    assert.equal((await api(srv.url, 'GET', '/api/relations/changes?since=99', undefined, gone.token)).body.full, true);
    // Applying the changes to the state the device had reproduces the server's lists.
    const state = new Map<string, string>([[first.change.peer, first.change.state]]);
    for (const c of got.body.changes) state.set(c.peer, c.state);
    const friends = (await GET('/api/friends', me)).body.items.map((x: any) => x.user.id);
    assert.deepEqual([...state].filter(([, s]) => s === 'friend').map(([p]) => p), friends);
    assert.deepEqual([...state].filter(([, s]) => s === 'blocked').map(([p]) => p), [peers[3]!.userId]);
    assert.deepEqual([...state].filter(([, s]) => s === 'outgoing' || s === 'incoming'), []);
    stay.close();
    away.close();
  });
});

describe('social graph end to end (policy friends_only, small change log)', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: { ...FAST, MAGPIE_STRANGER_MESSAGES: 'friends_only', MAGPIE_RELATION_LOG_CAPACITY: '8' } });
  });
  after(async () => {
    await srv.stop();
  });

  it('strangers cannot message; friends can; after removal they are strangers again', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const { client: ca } = await RawClient.connect(srv.wsUrl, a.token);
    const { client: cb } = await RawClient.connect(srv.wsUrl, b.token);
    const err = await ca.requestError({ type: 'send', clientMsgId: 's1', to: b.userId, kind: 'text', body: { text: 'hi stranger' } });
    assert.equal(err.code, 'forbidden');
    expectError(await api(srv.url, 'POST', '/api/messages', { clientMsgId: 's2', to: b.userId, kind: 'text', body: { text: 'hi' } }, a.token), 403, 'forbidden');
    // A pending request does not open the channel either.
    await api(srv.url, 'POST', '/api/friends/requests', { to: b.userId, greeting: 'may I?' }, a.token);
    assert.equal((await ca.requestError({ type: 'send', clientMsgId: 's3', to: b.userId, kind: 'text', body: { text: 'hi' } })).code, 'forbidden');
    await api(srv.url, 'POST', `/api/friends/requests/${a.userId}/accept`, undefined, b.token);
    const ok = await sendText(ca, b.userId, 'hello friend');
    assert.equal(ok.message.seq, 1);
    const back = await sendText(cb, a.userId, 'hello back');
    assert.equal(back.message.seq, 2);
    await api(srv.url, 'DELETE', `/api/friends/${a.userId}`, undefined, b.token);
    assert.equal((await ca.requestError({ type: 'send', clientMsgId: 's4', to: b.userId, kind: 'text', body: { text: 'hi' } })).code, 'forbidden');
    assert.equal((await cb.requestError({ type: 'send', clientMsgId: 's5', to: a.userId, kind: 'text', body: { text: 'hi' } })).code, 'forbidden');
    await sleep(50);
    assert.equal(cb.firstArrivals().length, 1, 'only the message between friends arrived');
    ca.close();
    cb.close();
  });

  it('a device too far behind the change log is told to reload; the lists plus the changes since their version are the state', async () => {
    const me = await registerAndLogin(srv.url);
    const peers = await Promise.all(Array.from({ length: 6 }, () => registerAndLogin(srv.url)));
    // 12 changes for `me` with a log capacity of 8 (trimmed down to 8 once past 9).
    for (const p of peers) {
      await api(srv.url, 'POST', '/api/friends/requests', { to: me.userId }, p.token);
      await api(srv.url, 'POST', `/api/friends/requests/${p.userId}/accept`, undefined, me.token);
    }
    const stale = await api(srv.url, 'GET', '/api/relations/changes?since=1', undefined, me.token);
    assert.deepEqual(stale.body, { version: 12, changes: [], more: false, full: true });
    const recent = await api(srv.url, 'GET', '/api/relations/changes?since=4', undefined, me.token);
    assert.equal(recent.body.full, false);
    assert.deepEqual(recent.body.changes.map((c: any) => c.version), [5, 6, 7, 8, 9, 10, 11, 12]);
    // Full reload: page through the friends, then continue from the version of the first page.
    const ids: string[] = [];
    let after = '';
    let v0: number | undefined;
    for (;;) {
      const page = await api(srv.url, 'GET', `/api/friends?limit=4${after ? `&after=${after}` : ''}`, undefined, me.token);
      v0 ??= page.body.version;
      ids.push(...page.body.items.map((x: any) => x.user.id));
      if (!page.body.next) break;
      after = page.body.next;
    }
    assert.equal(v0, 12);
    assert.deepEqual(ids, peers.map((p) => p.userId).sort());
    assert.deepEqual((await api(srv.url, 'GET', `/api/relations/changes?since=${v0}`, undefined, me.token)).body.changes, []);
  });

  it('blocks apply under friends_only as well', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    await api(srv.url, 'POST', '/api/friends/requests', { to: b.userId }, a.token);
    await api(srv.url, 'POST', `/api/friends/requests/${a.userId}/accept`, undefined, b.token);
    const { client: cb } = await RawClient.connect(srv.wsUrl, b.token);
    await sendText(cb, a.userId, 'friends');
    await api(srv.url, 'PUT', `/api/blocks/${b.userId}`, undefined, a.token);
    assert.equal((await cb.requestError({ type: 'send', clientMsgId: 'x', to: a.userId, kind: 'text', body: { text: 'hi' } })).code, 'forbidden');
    expectError(await api(srv.url, 'POST', '/api/friends/requests', { to: a.userId }, b.token), 403, 'forbidden');
    cb.close();
  });
});
