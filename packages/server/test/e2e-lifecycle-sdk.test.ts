import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore, type MagpieClient, type LocalMessage } from '@magpie/sdk';
import { startServer, registerAndLogin, login, type ServerProcess } from './harness.ts';
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
    srv = await startServer({ env: { MAGPIE_USER_RATE: '2000', MAGPIE_USER_BURST: '2000' } });
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
});
