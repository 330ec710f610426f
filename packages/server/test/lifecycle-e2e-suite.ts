/**
 * End-to-end checks of the message lifecycle (issue 18), run against the real server as a
 * process on SQLite (e2e-lifecycle.test.ts) and on PostgreSQL (e2e-lifecycle-pg.test.ts).
 * The server runs with MAGPIE_RECALL_WINDOW_MS=RECALL_WINDOW_MS, MAGPIE_SUPER_GROUP_THRESHOLD=4
 * and the admin token below. The windows are roomy: CI runs many server processes at once on
 * two cores, and a test that edits or recalls within the window, or sends two reactions meant
 * to fall into one coalescing window, must not depend on the machine being idle.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, api, pullAll, registerAndLogin, login, sleep, type ServerProcess } from './harness.ts';
import { png, tusUpload } from './media-fixtures.ts';

/** The recall window of the suite's server; the expiry checks wait just past it. */
const RECALL_WINDOW_MS = 6000;

export const LIFECYCLE_ENV = {
  MAGPIE_USER_RATE: '2000',
  MAGPIE_USER_BURST: '2000',
  MAGPIE_RECALL_WINDOW_MS: String(RECALL_WINDOW_MS),
  MAGPIE_SUPER_GROUP_THRESHOLD: '4',
  MAGPIE_REACTION_COALESCE_MS: '1000',
  MAGPIE_ADMIN_TOKEN: 'lifecycle-admin-token-0123456789',
  // Red packets here test recall refusal, not the payment PIN (tested in payments-* and e2e-wallet-sdk).
  MAGPIE_PAYMENTS_PIN_REQUIRED: 'false',
};

const text = (t: string, extra: Record<string, unknown> = {}) => ({ kind: 'text', body: { text: t, ...extra } });

export function lifecycleSuite(srv: () => ServerProcess): void {
  it('reply, edit, reactions and recall reach an online device live and an offline device in order', async () => {
    const { url, wsUrl } = srv();
    const a = await registerAndLogin(url);
    const b = await registerAndLogin(url);
    const { client: ca } = await RawClient.connect(wsUrl, a.token);
    const { client: cb } = await RawClient.connect(wsUrl, b.token);
    const m1 = (await ca.request({ type: 'send', clientMsgId: 'l1', to: b.userId, ...text('first') })).message;
    await ca.request({ type: 'send', clientMsgId: 'l2', to: b.userId, ...text('second') });
    await ca.request({ type: 'send', clientMsgId: 'l3', to: b.userId, ...text('third') });
    const conv = m1.conv;
    await cb.waitFor(() => cb.firstArrivals().length === 3);
    const bInbox = cb.firstArrivals().at(-1).inboxSeq;
    // B's second device is offline from here on.
    const b2 = await login(url, b.username, 'dev2');

    // Reply: a quote of seq 1; a quote of a message that does not exist is refused.
    const reply = await cb.request({ type: 'send', clientMsgId: 'r1', conv, ...text('answer', { replyTo: 1 }) });
    assert.equal(reply.message.body.replyTo, 1);
    const badReply = await cb.requestError({ type: 'send', clientMsgId: 'r2', conv, ...text('x', { replyTo: 99 }) });
    assert.equal(badReply.code, 'invalid');
    const forged = await cb.requestError({ type: 'send', clientMsgId: 'r3', conv, ...text('x', { edited: 1 }) });
    assert.equal(forged.code, 'invalid');

    // Edit by the sender; by anyone else refused.
    const edit = await api(url, 'POST', `/api/conversations/${conv}/messages/2/edit`, { text: 'second, corrected' }, a.token);
    assert.equal(edit.status, 200, JSON.stringify(edit.body));
    assert.equal(edit.body.event.kind, 'edit');
    assert.deepEqual((await api(url, 'POST', `/api/conversations/${conv}/messages/2/edit`, { text: 'mine now' }, b.token)).body.error.code, 'forbidden');
    await cb.waitFor((f) => f.type === 'msg' && f.message.kind === 'edit' && f.message.body.text === 'second, corrected');

    // Reactions: per-user toggle; a repeated add changes nothing; bad emoji refused.
    const r1 = await api(url, 'PUT', `/api/conversations/${conv}/messages/1/reactions/${encodeURIComponent('👍')}`, undefined, b.token);
    assert.equal(r1.status, 200, JSON.stringify(r1.body));
    assert.deepEqual(r1.body.event.body.changes, [{ seq: 1, emoji: '👍', user: b.userId, on: true, count: 1 }]);
    assert.equal((await api(url, 'PUT', `/api/conversations/${conv}/messages/1/reactions/${encodeURIComponent('👍')}`, undefined, b.token)).body.event, null);
    await api(url, 'PUT', `/api/conversations/${conv}/messages/1/reactions/${encodeURIComponent('👍')}`, undefined, a.token);
    await api(url, 'PUT', `/api/conversations/${conv}/messages/1/reactions/${encodeURIComponent('❤️')}`, undefined, a.token);
    await api(url, 'DELETE', `/api/conversations/${conv}/messages/1/reactions/${encodeURIComponent('❤️')}`, undefined, a.token);
    assert.equal((await api(url, 'PUT', `/api/conversations/${conv}/messages/1/reactions/${encodeURIComponent('a b')}`, undefined, a.token)).status, 400);
    const summary = await api(url, 'GET', `/api/conversations/${conv}/reactions?seqs=1,2`, undefined, b.token);
    assert.deepEqual(summary.body.reactions, [{ seq: 1, emoji: '👍', count: 2, users: [b.userId, a.userId], mine: true }]);

    // Recall: B may not recall A's message; A may, within the window (a fresh message: seq 3's window may be over on a loaded machine).
    const fresh = (await ca.request({ type: 'send', clientMsgId: 'l4', to: b.userId, ...text('fourth') })).message;
    assert.equal((await api(url, 'POST', `/api/conversations/${conv}/messages/${fresh.seq}/recall`, undefined, b.token)).body.error.code, 'forbidden');
    const t0 = Date.now();
    const recall = await api(url, 'POST', `/api/conversations/${conv}/messages/${fresh.seq}/recall`, undefined, a.token);
    assert.equal(recall.status, 200, JSON.stringify(recall.body));
    await cb.waitFor((f) => f.type === 'msg' && f.message.kind === 'recall' && f.message.body.seq === fresh.seq);
    assert.ok(Date.now() - t0 < 2000);
    // The body is gone on the server: history answers the tombstone and the current text of an edit.
    const hist = await api(url, 'GET', `/api/conversations/${conv}/messages?after=0`, undefined, b.token);
    const bySeq = new Map(hist.body.messages.map((m: any) => [m.seq, m]));
    assert.equal((bySeq.get(fresh.seq) as any).kind, 'recalled');
    assert.deepEqual(Object.keys((bySeq.get(fresh.seq) as any).body).sort(), ['at', 'by', 'kind']);
    assert.equal((bySeq.get(3) as any).body.text, 'third');
    assert.equal((bySeq.get(2) as any).body.text, 'second, corrected');
    assert.equal(typeof (bySeq.get(2) as any).body.edited, 'number');
    // Recalling again changes nothing; edit of a recalled message is refused.
    assert.equal((await api(url, 'POST', `/api/conversations/${conv}/messages/${fresh.seq}/recall`, undefined, a.token)).body.event, null);
    assert.equal((await api(url, 'POST', `/api/conversations/${conv}/messages/${fresh.seq}/edit`, { text: 'z' }, a.token)).body.error.code, 'invalid');
    // Previous versions of the edit are kept for participants.
    assert.deepEqual((await api(url, 'GET', `/api/conversations/${conv}/messages/2/edits`, undefined, b.token)).body.versions.map((v: any) => v.text), ['second']);
    // The conversation list's last message follows the recall: the recalled message (a notice), never the event.
    const list = await cb.request({ type: 'convs', since: 0 });
    const entry = list.entries.find((e: any) => e.conv === conv);
    assert.equal(entry.lastMessage.kind, 'recalled');
    assert.equal(entry.lastMessage.seq, fresh.seq);
    assert.equal(entry.unread, 1, "A's fourth (B answered after the third); the edit, reaction and recall events count nothing");

    // Past the window the sender's recall is refused and nothing changes.
    await sleep(Math.max(0, m1.time + RECALL_WINDOW_MS + 100 - Date.now()));
    const late = await api(url, 'POST', `/api/conversations/${conv}/messages/1/recall`, undefined, a.token);
    assert.equal(late.body.error.code, 'forbidden');
    assert.equal((await api(url, 'GET', `/api/conversations/${conv}/messages?after=0&limit=1`, undefined, a.token)).body.messages[0].kind, 'text');

    // The offline device catches up: every event in the conversation's order (the recalled message arrives as its tombstone).
    const { client: cb2 } = await RawClient.connect(wsUrl, b2.token, bInbox);
    const pulled = await pullAll(cb2, bInbox);
    assert.deepEqual(
      pulled.items.map((x: any) => x.message.kind + (x.message.kind === 'reaction' ? (x.message.body.changes[0].on ? '+' : '-') : '')),
      ['text', 'edit', 'reaction+', 'reaction+', 'reaction+', 'reaction-', 'recalled', 'recall'],
    );
    const seqs = pulled.items.map((x: any) => x.message.seq);
    assert.deepEqual(seqs, [...seqs].sort((x: number, y: number) => x - y));
    assert.deepEqual([...ca.schemaErrors, ...cb.schemaErrors, ...cb2.schemaErrors], []);
    ca.close();
    cb.close();
    cb2.close();
  });

  it('delete for me hides messages on all of the user’s devices only', async () => {
    const { url, wsUrl } = srv();
    const a = await registerAndLogin(url);
    const b = await registerAndLogin(url);
    const { client: ca } = await RawClient.connect(wsUrl, a.token);
    const { client: ca2 } = await RawClient.connect(wsUrl, (await login(url, a.username, 'dev2')).token);
    const m = (await ca.request({ type: 'send', clientMsgId: 'h1', to: b.userId, ...text('one') })).message;
    await ca.request({ type: 'send', clientMsgId: 'h2', to: b.userId, ...text('two') });
    const hide = await api(url, 'POST', `/api/conversations/${m.conv}/hide`, { seqs: [1] }, a.token);
    assert.equal(hide.status, 200, JSON.stringify(hide.body));
    assert.deepEqual(hide.body.change, { version: 1, conv: m.conv, seqs: [1] });
    const frame = await ca2.waitFor((f) => f.type === 'hidden');
    assert.deepEqual(frame.change, hide.body.change);
    assert.equal((await api(url, 'POST', `/api/conversations/${m.conv}/hide`, { seqs: [1] }, a.token)).body.change, null);
    assert.deepEqual((await api(url, 'GET', `/api/conversations/${m.conv}/messages?after=0`, undefined, a.token)).body.messages.map((x: any) => x.seq), [2]);
    assert.deepEqual((await api(url, 'GET', `/api/conversations/${m.conv}/messages?after=0`, undefined, b.token)).body.messages.map((x: any) => x.seq), [1, 2]);
    const changes = await api(url, 'GET', '/api/hidden?since=0', undefined, a.token);
    assert.deepEqual(changes.body, { version: 1, changes: [hide.body.change], more: false });
    // Not a member: refused, nothing stored.
    const c = await registerAndLogin(url);
    assert.equal((await api(url, 'POST', `/api/conversations/${m.conv}/hide`, { seqs: [2] }, c.token)).body.error.code, 'forbidden');
    assert.equal((await api(url, 'GET', '/api/hidden?since=0', undefined, c.token)).body.version, 0);
    ca.close();
    ca2.close();
  });

  it('forward one by one and merged; owners recall any time; red packets cannot be recalled', async () => {
    const { url, wsUrl } = srv();
    const owner = await registerAndLogin(url);
    const b = await registerAndLogin(url);
    const { client: co } = await RawClient.connect(wsUrl, owner.token);
    const direct = (await co.request({ type: 'send', clientMsgId: 'f1', to: b.userId, ...text('forward me') })).message.conv;
    await co.request({ type: 'send', clientMsgId: 'f2', to: b.userId, ...text('and me') });
    const g = (await api(url, 'POST', '/api/groups', { name: 'Lifecycle', members: [b.userId] }, owner.token)).body.group;
    const single = await api(url, 'POST', '/api/forward', { from: direct, seqs: [2, 1], conv: g.conv, clientMsgId: 'fw1' }, b.token);
    assert.equal(single.status, 200, JSON.stringify(single.body));
    assert.deepEqual(single.body.messages.map((m: any) => m.body.text), ['forward me', 'and me']);
    const merged = await api(url, 'POST', '/api/forward', { from: direct, seqs: [1, 2], conv: g.conv, merged: true, title: 'Our chat', clientMsgId: 'fw2' }, b.token);
    assert.equal(merged.status, 200, JSON.stringify(merged.body));
    const bundle = merged.body.messages[0];
    assert.equal(bundle.kind, 'bundle');
    assert.deepEqual(bundle.body.items.map((i: any) => i.body.text), ['forward me', 'and me']);
    // A stranger to the source cannot forward from it.
    const c = await registerAndLogin(url);
    assert.equal((await api(url, 'POST', '/api/forward', { from: direct, seqs: [1], to: owner.userId, clientMsgId: 'fw3' }, c.token)).status, 403);
    // The member's message, recalled by the owner after the sender's window.
    const bMsgSeq = single.body.messages[0].seq;
    await sleep(Math.max(0, single.body.messages[0].time + RECALL_WINDOW_MS + 100 - Date.now()));
    assert.equal((await api(url, 'POST', `/api/conversations/${g.conv}/messages/${bMsgSeq}/recall`, undefined, b.token)).body.error.code, 'forbidden');
    const byOwner = await api(url, 'POST', `/api/conversations/${g.conv}/messages/${bMsgSeq}/recall`, undefined, owner.token);
    assert.equal(byOwner.status, 200, JSON.stringify(byOwner.body));
    assert.equal(byOwner.body.event.body.by, owner.userId);
    // A recalled message cannot be forwarded.
    assert.equal((await api(url, 'POST', '/api/forward', { from: g.conv, seqs: [bMsgSeq], to: owner.userId, clientMsgId: 'fw4' }, b.token)).body.error.code, 'invalid');
    // Red packet: the recall is refused.
    const top = await api(url, 'POST', '/api/admin/wallet/topup', { userId: owner.userId, amount: 1000, reference: `rp-${owner.userId}` }, LIFECYCLE_ENV.MAGPIE_ADMIN_TOKEN);
    assert.equal(top.status, 200, JSON.stringify(top.body));
    const rp = await api(url, 'POST', '/api/redpackets', { clientMsgId: 'rp1', conv: g.conv, split: 'random', total: 100, count: 2 }, owner.token);
    assert.ok(rp.status === 200 || rp.status === 201, JSON.stringify(rp.body));
    const refused = await api(url, 'POST', `/api/conversations/${g.conv}/messages/${rp.body.message.seq}/recall`, undefined, owner.token);
    assert.equal(refused.status, 403);
    assert.match(refused.body.error.message, /red packet/);
    co.close();
  });

  it('super groups coalesce reactions into one event for every online member', async () => {
    const { url, wsUrl } = srv();
    const users = await Promise.all([0, 1, 2, 3, 4].map(() => registerAndLogin(url)));
    const [owner, ...rest] = users;
    const g = (await api(url, 'POST', '/api/groups', { name: 'Super', members: rest.map((u) => u.userId) }, owner!.token)).body.group;
    assert.equal(g.kind, 'super');
    const { client: co } = await RawClient.connect(wsUrl, owner!.token);
    const { client: c4 } = await RawClient.connect(wsUrl, rest[3]!.token);
    const m = (await co.request({ type: 'send', clientMsgId: 's1', conv: g.conv, ...text('react to me') })).message;
    const from = c4.frames.length;
    const answers = await Promise.all(rest.map((u) => api(url, 'PUT', `/api/conversations/${g.conv}/messages/${m.seq}/reactions/${encodeURIComponent('🎉')}`, undefined, u.token)));
    for (const r of answers) assert.deepEqual(r.body, { event: null });
    const ev = await c4.waitFor((f) => f.type === 'advanced' && f.message.kind === 'reaction', 5000, from);
    assert.equal(ev.message.body.changes.length, 4);
    assert.ok(ev.message.body.changes.every((c: any) => c.count === 4 && c.on));
    await sleep(400);
    assert.equal(c4.frames.slice(from).filter((f) => f.type === 'advanced' && f.message.kind === 'reaction').length, 1);
    const summary = await api(url, 'GET', `/api/conversations/${g.conv}/reactions?seqs=${m.seq}`, undefined, owner!.token);
    assert.equal(summary.body.reactions[0].count, 4);
    assert.equal(summary.body.reactions[0].mine, false);
    co.close();
    c4.close();
  });

  it('events never count as unread or mentions; the list follows a recall and an edit of the last message; an offline device catches up in order', async () => {
    const { url, wsUrl } = srv();
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => registerAndLogin(url)));
    const g = (await api(url, 'POST', '/api/groups', { name: 'Events', members: [b!.userId, c!.userId] }, a!.token)).body.group;
    assert.equal(g.kind, 'group');
    const { client: ca } = await RawClient.connect(wsUrl, a!.token);
    const { client: cb } = await RawClient.connect(wsUrl, b!.token);
    const { client: cc } = await RawClient.connect(wsUrl, c!.token);
    const entryOf = async (client: RawClient) => (await client.request({ type: 'convs', since: 0 })).entries.find((e: any) => e.conv === g.conv);
    const hello = (await ca.request({ type: 'send', clientMsgId: 'e1', conv: g.conv, mentions: [b!.userId], ...text('hello B') })).message;
    const last = (await ca.request({ type: 'send', clientMsgId: 'e2', conv: g.conv, ...text('the last word') })).message;
    await cb.waitFor((f) => f.type === 'msg' && f.message.seq === last.seq);
    const before = await entryOf(cb);
    assert.equal(before.lastMessage.seq, last.seq);
    assert.equal(before.mentions, 1);
    // B's second device goes offline here.
    const bInbox = cb.firstArrivals().at(-1).inboxSeq;
    const b2 = await login(url, b!.username, 'dev2');

    // Reactions by C and A (coalesced into one event), an edit of the last message by A.
    const from = cc.frames.length;
    const reacts = await Promise.all([
      api(url, 'PUT', `/api/conversations/${g.conv}/messages/${hello.seq}/reactions/${encodeURIComponent('👍')}`, undefined, c!.token),
      api(url, 'PUT', `/api/conversations/${g.conv}/messages/${hello.seq}/reactions/${encodeURIComponent('👍')}`, undefined, a!.token),
    ]);
    for (const r of reacts) assert.deepEqual(r.body, { event: null }, 'a normal group coalesces reactions');
    // The coalesced event has no originating session: the reactor's own connection receives it too.
    // Both changes arrive in one event when both requests land in one window (the usual case);
    // on a loaded machine the second may open the next window: wait until both were seen.
    const reactionEvents = () => cc.frames.slice(from).filter((f) => f.type === 'msg' && f.message.kind === 'reaction');
    const reactors = () => new Set(reactionEvents().flatMap((f) => f.message.body.changes.map((c: any) => c.user)));
    await cc.waitFor(() => reactors().size === 2, 5000, from);
    assert.deepEqual([...reactors()].sort(), [a!.userId, c!.userId].sort());
    assert.ok(reactionEvents().length <= 2);
    const ev = reactionEvents().at(-1);
    await cb.waitFor((f) => f.type === 'msg' && f.message.seq === ev.message.seq);
    const edited = await api(url, 'POST', `/api/conversations/${g.conv}/messages/${last.seq}/edit`, { text: 'the last word, edited' }, a!.token);
    assert.equal(edited.status, 200, JSON.stringify(edited.body));
    await cb.waitFor((f) => f.type === 'msg' && f.message.kind === 'edit');
    const afterEdit = await entryOf(cb);
    assert.equal(afterEdit.unread, before.unread, 'events add no unread');
    assert.equal(afterEdit.mentions, before.mentions, 'events add no mentions');
    assert.equal(afterEdit.oldestUnreadSeq, before.oldestUnreadSeq);
    assert.equal(afterEdit.lastSeq, edited.body.event.seq, 'lastSeq covers the events');
    assert.equal(afterEdit.lastMessage.seq, last.seq, 'the last message is the edited text, not the event');
    assert.equal(afterEdit.lastMessage.body.text, 'the last word, edited');
    assert.ok(afterEdit.version > before.version);
    // A reacting marked nothing read for A, and counted nothing for A either.
    const aEntry = await entryOf(ca);
    assert.equal(aEntry.unread, 0);
    assert.equal(aEntry.lastMessage.seq, last.seq);

    // Recall of the last message: the preview becomes the notice and B's devices get the entry pushed.
    const fromB = cb.frames.length;
    const recall = await api(url, 'POST', `/api/conversations/${g.conv}/messages/${last.seq}/recall`, undefined, a!.token);
    assert.equal(recall.status, 200, JSON.stringify(recall.body));
    const pushed = await cb.waitFor((f) => f.type === 'conv' && f.entry.conv === g.conv && f.entry.lastMessage?.kind === 'recalled', 5000, fromB);
    assert.equal(pushed.entry.lastMessage.seq, last.seq);
    const afterRecall = await entryOf(cb);
    assert.equal(afterRecall.lastMessage.kind, 'recalled');
    assert.equal(afterRecall.unread, before.unread);
    assert.equal(afterRecall.mentions, before.mentions);
    assert.ok(afterRecall.version > afterEdit.version, 'the entry changed after the rewrite');

    // Read up to the end, then more events: still nothing unread; reading an event's seq is fine.
    const read = await cb.request({ type: 'read', conv: g.conv, seq: afterRecall.lastSeq });
    assert.equal(read.entry.unread, 0);
    assert.equal(read.entry.mentions, 0);
    await api(url, 'PUT', `/api/conversations/${g.conv}/messages/${hello.seq}/reactions/${encodeURIComponent('🎉')}`, undefined, c!.token);
    await cb.waitFor((f) => f.type === 'msg' && f.message.kind === 'reaction' && f.message.body.changes[0].emoji === '🎉');
    const quiet = await entryOf(cb);
    assert.equal(quiet.unread, 0);
    assert.equal(quiet.oldestUnreadSeq, null);
    assert.equal(quiet.lastMessage.seq, last.seq);
    // A conversation deleted for B does not come back for an event, only for a message.
    await cb.request({ type: 'conv.update', conv: g.conv, deleted: true });
    await api(url, 'DELETE', `/api/conversations/${g.conv}/messages/${hello.seq}/reactions/${encodeURIComponent('🎉')}`, undefined, c!.token);
    await cb.waitFor((f) => f.type === 'msg' && f.message.kind === 'reaction' && f.message.body.changes[0].on === false);
    assert.equal((await entryOf(cb)).deleted, true);
    await cc.request({ type: 'send', clientMsgId: 'e3', conv: g.conv, ...text('back again') });
    await cb.waitFor((f) => f.type === 'msg' && f.message.body?.text === 'back again');
    const back = await entryOf(cb);
    assert.equal(back.deleted, false);
    assert.equal(back.unread, 1);

    // B's offline device: every event in the conversation's order, and a list with the right preview and counts.
    const { client: cb2 } = await RawClient.connect(wsUrl, b2.token, bInbox);
    const pulled = await pullAll(cb2, bInbox);
    assert.deepEqual(
      pulled.items.map((x: any) => x.message.kind),
      ['reaction', 'edit', 'recall', 'reaction', 'reaction', 'text'],
    );
    const seqs = pulled.items.map((x: any) => x.message.seq);
    assert.deepEqual(seqs, [...seqs].sort((x: number, y: number) => x - y));
    const list2 = (await cb2.request({ type: 'convs', since: 0 })).entries.find((e: any) => e.conv === g.conv);
    assert.equal(list2.lastMessage.body.text, 'back again');
    assert.equal(list2.unread, 1);
    assert.deepEqual([...ca.schemaErrors, ...cb.schemaErrors, ...cc.schemaErrors, ...cb2.schemaErrors], []);
    for (const x of [ca, cb, cc, cb2]) x.close();
  });

  it('media inside a merged forward, and inside a bundle forwarded in another bundle, is re-authorized for the recipients', async () => {
    const { url } = srv();
    const [a, b, c, d, e] = await Promise.all([0, 1, 2, 3, 4].map(() => registerAndLogin(url)));
    const { id, res } = await tusUpload(url, a!.token, await png(40, 30), { kind: 'image' });
    assert.equal(res.status, 204, await res.clone().text());
    const media = async (token: string) => (await fetch(new URL(`/api/media/${id}`, url), { headers: { authorization: `Bearer ${token}` } })).status;
    const img = await api(url, 'POST', '/api/messages', { clientMsgId: 'bm1', to: b!.userId, kind: 'image', body: { fallback: '[Image]', upload: id, width: 1, height: 1 } }, a!.token);
    assert.equal(img.status, 200, JSON.stringify(img.body));
    const direct = img.body.message.conv;
    const g = (await api(url, 'POST', '/api/groups', { name: 'Bundles', members: [c!.userId] }, b!.token)).body.group;
    assert.equal(await media(c!.token), 404, 'C cannot read it before the forward');
    const first = await api(url, 'POST', '/api/forward', { from: direct, seqs: [img.body.message.seq], conv: g.conv, merged: true, title: 'Photo', clientMsgId: 'bf1' }, b!.token);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(await media(c!.token), 200, 'a bundle re-authorizes its media for the target conversation');
    // C forwards the bundle (as an item of a new bundle) to D: the image is two levels down.
    const nested = await api(url, 'POST', '/api/forward', { from: g.conv, seqs: [first.body.messages[0].seq], to: d!.userId, merged: true, title: 'Forwarded history', clientMsgId: 'bf2' }, c!.token);
    assert.equal(nested.status, 200, JSON.stringify(nested.body));
    const inner = nested.body.messages[0].body.items[0];
    assert.equal(inner.kind, 'bundle');
    assert.equal(inner.body.items[0].body.upload, id);
    assert.equal(await media(d!.token), 200, 'nested bundle media is re-authorized too');
    const signed = await api(url, 'GET', `/api/media/${id}/url?variant=small`, undefined, d!.token);
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    assert.equal(await media(e!.token), 404, 'a stranger still cannot read it');
    // One-by-one forward of the bundle message itself: the same re-authorization.
    const single = await api(url, 'POST', '/api/forward', { from: g.conv, seqs: [first.body.messages[0].seq], to: e!.userId, clientMsgId: 'bf3' }, c!.token);
    assert.equal(single.status, 200, JSON.stringify(single.body));
    assert.equal(await media(e!.token), 200);
  });
}
