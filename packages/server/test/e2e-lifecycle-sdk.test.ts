import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore, type MagpieClient, type LocalMessage } from '@magpie/sdk';
import { startServer, registerAndLogin, login, api, type ServerProcess } from './harness.ts';
import { sdkClient, eventually } from './sdk-client.ts';
import { RestApi } from '../../sdk/src/rest.ts';
import { MagpieClientError } from '../../sdk/src/errors.ts';
import { LifecycleApi, LifecycleSync, ReactionBook, LOCAL_HIDDEN_KIND, type LifecycleSource } from '../../sdk/src/lifecycle.ts';

async function stored(c: MagpieClient, conv: string): Promise<LocalMessage[]> {
  return (await c.getMessages(conv, { after: 0, limit: 1000 })).messages;
}

/** The SDK's LifecycleApi and LifecycleSync against the real server: a live device and one that was offline converge. */
describe('SDK message lifecycle against the real server', () => {
  let srv: ServerProcess;
  const clients: MagpieClient[] = [];
  before(async () => {
    srv = await startServer({ env: { MAGPIE_USER_RATE: '2000', MAGPIE_USER_BURST: '2000', MAGPIE_SUPER_GROUP_THRESHOLD: '3', MAGPIE_REACTION_COALESCE_MS: '100' } });
  });
  after(async () => {
    for (const c of clients) c.close();
    await srv.stop();
  });

  it('recalls, edits, reactions and delete-for-me reach the live device and the device that was offline', async () => {
    const rest = new RestApi({ baseUrl: srv.url });
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url, { deviceId: 'b1' });
    const b2 = await login(srv.url, b.username, 'b2');
    const A = new LifecycleApi(rest, a.token);
    const B = new LifecycleApi(rest, () => b.token);
    const ca = sdkClient({ baseUrl: srv.url, token: a.token });
    const cb = sdkClient({ baseUrl: srv.url, token: b.token });
    clients.push(ca, cb);
    const bSync = new LifecycleSync(B, cb.store);
    bSync.attach(cb as unknown as LifecycleSource);
    const book = new ReactionBook(b.userId);
    bSync.on('reactions', (e) => book.apply(e.changes));
    await Promise.all([ca.connect(), cb.connect()]);
    const first = await ca.sendText({ to: b.userId }, 'one');
    const conv = (await ca.waitForSend(first.clientMsgId))!.conv!;
    const second = await ca.sendText({ conv }, 'two');
    await ca.waitForSend(second.clientMsgId);
    await eventually(async () => (await stored(cb, conv)).length === 2, 'B has both messages');

    // B2's store was filled before it went offline.
    const b2Store = new MemoryStore();
    const cb2 = sdkClient({ baseUrl: srv.url, token: b2.token, store: b2Store });
    clients.push(cb2);
    await cb2.connect();
    await eventually(async () => (await stored(cb2, conv)).length === 2, 'B2 has both messages');
    cb2.close();

    await A.edit(conv, 2, 'two, edited');
    await A.react(conv, 1, '👍');
    await B.react(conv, 1, '👍');
    await A.recall(conv, 1);
    await assert.rejects(B.recall(conv, 2), (e: unknown) => e instanceof MagpieClientError && e.code === 'forbidden');
    await B.hide(conv, [2]);

    const final = async (c: MagpieClient) => {
      const ms = await stored(c, conv);
      return ms.find((m) => m.seq === 1)?.kind === 'recalled' && ms.find((m) => m.seq === 2)?.kind === LOCAL_HIDDEN_KIND;
    };
    await eventually(() => final(cb), 'B (live) shows the recall and hides the deleted message');
    assert.deepEqual(book.of(1), [{ emoji: '👍', count: 2, mine: true, users: [a.userId, b.userId] }]);

    // The offline device comes back: the store is rewritten by the events it pulls, in order.
    const cb3 = sdkClient({ baseUrl: srv.url, token: b2.token, store: b2Store });
    clients.push(cb3);
    const b2Sync = new LifecycleSync(new LifecycleApi(rest, b2.token), b2Store);
    const edited: string[] = [];
    b2Sync.on('changed', (e) => edited.push(`${e.message.seq}:${e.message.kind}`));
    b2Sync.attach(cb3 as unknown as LifecycleSource);
    await cb3.connect();
    await eventually(() => final(cb3), 'B2 caught up on the recall and the delete-for-me');
    await b2Sync.idle();
    assert.ok(edited.includes('1:recalled'));
    assert.ok(edited.includes('2:hidden.local'));
    assert.equal(b2Sync.hiddenVersion, 1);
    // What the server answers a new device: the current state, the hidden message left out.
    const fresh = await rest.messages(b2.token, conv, { after: 0 });
    assert.deepEqual(fresh.messages.filter((m) => m.seq <= 2).map((m) => m.kind), ['recalled']);
    const summary = await B.reactions(conv, [1, 2]);
    assert.deepEqual(summary.reactions, [], 'a recall drops the reactions with the content');
  });

  it('the conversation list (ConversationSync) ignores events for unread and follows a recall or edit of the last message, live and after being offline', async () => {
    const rest = new RestApi({ baseUrl: srv.url });
    const [a, b, c, d] = await Promise.all([0, 1, 2, 3].map(() => registerAndLogin(srv.url)));
    const b2 = await login(srv.url, b!.username, 'b2');
    const A = new LifecycleApi(rest, a!.token);
    const normal = (await api(srv.url, 'POST', '/api/groups', { name: 'Normal', members: [b!.userId] }, a!.token)).body.group;
    const sup = (await api(srv.url, 'POST', '/api/groups', { name: 'Super', members: [b!.userId, c!.userId, d!.userId] }, a!.token)).body.group;
    assert.equal(normal.kind, 'group');
    assert.equal(sup.kind, 'super');
    const ca = sdkClient({ baseUrl: srv.url, token: a!.token });
    const cb = sdkClient({ baseUrl: srv.url, token: b!.token });
    const b2Store = new MemoryStore();
    const cb2 = sdkClient({ baseUrl: srv.url, token: b2.token, store: b2Store });
    clients.push(ca, cb, cb2);
    await Promise.all([ca.connect(), cb.connect(), cb2.connect()]);
    const sent: Record<string, number[]> = {};
    for (const g of [normal.conv, sup.conv]) {
      sent[g] = [];
      for (const t of ['x', 'y']) {
        const s = await ca.sendText({ conv: g }, t);
        sent[g]!.push((await ca.waitForSend(s.clientMsgId))!.seq!);
      }
    }
    const entry = async (cl: MagpieClient, conv: string) => (await cl.getConversation(conv))!;
    for (const cl of [cb, cb2]) {
      for (const g of [normal.conv, sup.conv]) await eventually(async () => (await entry(cl, g))?.lastMessage?.seq === sent[g]![1], `${g}: last message`);
    }
    const before = { n: await entry(cb, normal.conv), s: await entry(cb, sup.conv) };
    cb2.close(); // B's second device is offline from here on

    for (const g of [normal.conv, sup.conv]) {
      const [x, y] = sent[g]!;
      await A.react(g, x!, '👍');
      await A.edit(g, y!, 'y, edited');
    }
    for (const [g, was] of [[normal.conv, before.n], [sup.conv, before.s]] as const) {
      await eventually(async () => ((await entry(cb, g)).lastMessage?.body as { text?: string }).text === 'y, edited', `${g}: the edit shows in the list`);
      const e = await entry(cb, g);
      assert.equal(e.lastMessage?.seq, sent[g]![1], 'the last message is the edited text, not an event');
      assert.equal(e.unread, was.unread, 'events add no unread');
      assert.equal(e.mentions, was.mentions);
    }
    for (const g of [normal.conv, sup.conv]) await A.recall(g, sent[g]![1]!);
    for (const [g, was] of [[normal.conv, before.n], [sup.conv, before.s]] as const) {
      await eventually(async () => (await entry(cb, g)).lastMessage?.kind === 'recalled', `${g}: the recall shows in the list`);
      assert.equal((await entry(cb, g)).unread, was.unread);
    }
    // A reacting marks nothing read for A: its entry shows no unread either way, and its last message is still the notice.
    await eventually(async () => (await entry(ca, normal.conv)).lastMessage?.kind === 'recalled', 'A: the recall in its own list');

    // The offline device: normal groups through the list's versions, super groups through the events it pulls.
    const cb3 = sdkClient({ baseUrl: srv.url, token: b2.token, store: b2Store });
    clients.push(cb3);
    await cb3.connect();
    for (const [g, was] of [[normal.conv, before.n], [sup.conv, before.s]] as const) {
      await eventually(async () => (await entry(cb3, g)).lastMessage?.kind === 'recalled', `${g} (${g === sup.conv ? 'super' : 'normal'} group): B2 shows the recall in the list`);
      const e = await entry(cb3, g);
      assert.equal(e.lastMessage?.seq, sent[g]![1]);
      assert.equal(e.unread, was.unread, 'B2: events add no unread');
    }
  });
});
