import { test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, connectOnline } from './helpers/setup.ts';
import { flush } from './helpers/fake-clock.ts';

test('on connect the list is fetched since the stored version, paged while `more`', async () => {
  const h = harness({ convPageSize: 2 });
  for (const c of ['a', 'b', 'c', 'd', 'e']) h.server.conv(c);
  await connectOnline(h);
  const convs = h.server.last.framesOfType('convs').map((f) => f.since);
  assert.deepEqual(convs, [0, 2, 4]);
  assert.equal(h.client.conversationListVersion, 5);
  assert.equal((await h.store.loadMeta()).convVersion, 5);
  assert.deepEqual((await h.client.getConversations()).map((e) => e.conv).sort(), ['a', 'b', 'c', 'd', 'e']);
  // reconnect: only since 5
  h.server.updateEntry('c', { muted: true });
  h.server.last.drop();
  await flush();
  await h.clock.advanceUntil(() => h.client.state === 'online', 5_000, 10);
  assert.deepEqual(h.server.last.framesOfType('convs').map((f) => f.since), [5]);
  assert.equal((await h.client.getConversation('c'))?.muted, true);
});

test('a pushed entry with the next version is applied directly; a version jump fetches since V', async () => {
  const h = harness();
  h.server.conv('a');
  await connectOnline(h);
  const sock = h.server.last;
  assert.equal(sock.framesOfType('convs').length, 1);
  h.server.updateEntry('a', { pinned: true }, { push: true }); // version 2 = V + 1
  await h.clock.advance(10);
  assert.equal(sock.framesOfType('convs').length, 1, 'no fetch for the next version');
  assert.equal((await h.client.getConversation('a'))?.pinned, true);
  assert.equal(h.client.conversationListVersion, 2);
  h.server.conv('b'); // version 3, not pushed (lost)
  h.server.updateEntry('a', { draft: 'wip' }, { push: true }); // version 4: a jump
  await h.clock.advance(10);
  assert.deepEqual(sock.framesOfType('convs').map((f) => f.since), [0, 2]);
  assert.equal(h.client.conversationListVersion, 4);
  assert.ok(await h.client.getConversation('b'), 'the missed entry was fetched');
  assert.equal((await h.client.getConversation('a'))?.draft, 'wip');
  const evs = h.events.conversation.filter((e) => e.conv === 'a').map((e) => e.entry?.version);
  assert.deepEqual(evs, [1, 2, 4], 'each change announced once');
});

test('deletion markers remove the entry locally (and its history up to clearedSeq); an older copy cannot bring it back', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.incoming('g', 'bob', 'one');
  h.server.incoming('g', 'bob', 'two');
  await h.clock.advance(100);
  h.server.updateEntry('g', {}, { push: true });
  await h.clock.advance(10);
  const stale = { ...h.server.conv('g').entry };
  assert.equal((await h.client.getMessages('g')).messages.length, 2);
  h.server.updateEntry('g', { deleted: true, clearedSeq: 2 }, { push: true });
  await h.clock.advance(10);
  assert.deepEqual(await h.client.getConversations(), []);
  assert.equal(await h.client.getConversation('g'), undefined);
  const last = h.events.conversation[h.events.conversation.length - 1]!;
  assert.equal(last.conv, 'g');
  assert.equal(last.entry, null);
  assert.deepEqual((await h.client.getMessages('g')).messages, [], 'history up to clearedSeq is gone');
  h.server.last.deliver({ type: 'conv', entry: stale });
  await h.clock.advance(10);
  assert.equal(await h.client.getConversation('g'), undefined, 'stale copy ignored');
  // a new message brings it back (the server un-deletes)
  h.server.incoming('g', 'bob', 'three');
  h.server.updateEntry('g', { deleted: false }, { push: true });
  await h.clock.advance(10);
  assert.ok(await h.client.getConversation('g'));
  const w = await h.client.getMessages('g');
  assert.deepEqual(w.messages.map((m) => m.seq), [3]);
  assert.equal(w.hasGapBefore, false, 'nothing visible before the cleared seq');
});

test('an offline device learns pins, mutes, drafts, read state and deletions done elsewhere', async () => {
  const h = harness();
  for (const c of ['p', 'm', 'd', 'r', 'x']) h.server.conv(c, { unread: 3, oldestUnreadSeq: 1 });
  await connectOnline(h);
  h.client.close();
  await flush();
  h.server.updateEntry('p', { pinned: true });
  h.server.updateEntry('m', { muted: true });
  h.server.updateEntry('d', { draft: 'half a sentence' });
  h.server.updateEntry('r', { readSeq: 3, unread: 0, oldestUnreadSeq: null });
  h.server.updateEntry('x', { deleted: true });
  await connectOnline(h);
  assert.deepEqual(h.server.last.framesOfType('convs').map((f) => f.since), [5]);
  const list = await h.client.getConversations();
  assert.deepEqual(list.map((e) => e.conv), ['p', 'r', 'd', 'm'], 'pinned first, then by latest change; deleted gone');
  const by = new Map(list.map((e) => [e.conv, e]));
  assert.equal(by.get('p')!.pinned, true);
  assert.equal(by.get('m')!.muted, true);
  assert.equal(by.get('d')!.draft, 'half a sentence');
  assert.equal(by.get('r')!.unread, 0);
  assert.equal(by.has('x'), false);
});

test('markRead and updateConversation apply the returned entry', async () => {
  const h = harness();
  h.server.incoming('g', 'bob', 'a', { push: false });
  h.server.conv('g').entry.unread = 1;
  await connectOnline(h);
  const e = await h.client.markRead('g', 1);
  assert.equal(e.readSeq, 1);
  assert.equal((await h.client.getConversation('g'))?.unread, 0);
  await h.client.updateConversation('g', { pinned: true, draft: 'x' });
  const local = await h.client.getConversation('g');
  assert.equal(local?.pinned, true);
  assert.equal(local?.draft, 'x');
  await h.client.updateConversation('g', { deleted: true });
  assert.equal(await h.client.getConversation('g'), undefined);
});

test('full sync replaces the list: entries the server no longer has disappear', async () => {
  const h = harness();
  h.server.conv('keep');
  h.server.conv('gone');
  await connectOnline(h);
  h.client.close();
  await flush();
  h.server.convs.delete('gone');
  h.server.forceSync = 'full';
  await connectOnline(h);
  assert.deepEqual((await h.client.getConversations()).map((e) => e.conv), ['keep']);
  assert.ok(h.events.conversation.some((e) => e.conv === 'gone' && e.entry === null));
});

test('events (reaction, edit, recall) move lastSeq only: no unread, nothing marked read, no revival; a recall or edit of the last message rewrites the preview', async () => {
  const { MemoryStore } = await import('../src/local-store.ts');
  const { ConversationSync } = await import('../src/conv-sync.ts');
  type Entry = import('@magpie/protocol').ConvEntry;
  type Msg = import('@magpie/protocol').Message;
  const store = new MemoryStore();
  const changed: (Entry | null)[] = [];
  const sync = new ConversationSync(store, { generation: () => 1, ready: () => true, convs: async () => ({ version: 0, entries: [] }) as never }, { changed: (_c, e) => void changed.push(e), error: () => {} });
  const msg = (seq: number, sender: string, kind: string, body: unknown, conv = 'g1'): Msg => ({ id: `m${seq}`, conv, seq, sender, kind, body, time: 1000 + seq, clientMsgId: `c${seq}` });
  const last = msg(2, 'bob', 'text', { text: 'hello' });
  const base: Entry = { conv: 'g1', kind: 'group', peer: null, lastSeq: 2, lastMessage: last, readSeq: 0, unread: 2, mentions: 1, oldestUnreadSeq: 1, deliveredSeq: 0, pinned: false, muted: false, draft: '', deleted: false, clearedSeq: 0, version: 7 };
  await store.putEntries([base]);

  // My own reaction: nothing read, nothing counted, no server round trip needed.
  assert.equal(await sync.noteMessages([msg(3, 'me', 'reaction', { changes: [{ seq: 1, emoji: '👍', user: 'me', on: true, count: 1 }] })], 'me'), false);
  let e = (await store.getEntry('g1'))!;
  assert.deepEqual([e.lastSeq, e.lastMessage?.seq, e.unread, e.mentions, e.readSeq, e.oldestUnreadSeq], [3, 2, 2, 1, 0, 1]);

  // An edit of the last message: the preview shows the new text.
  await sync.noteMessages([msg(4, 'bob', 'edit', { seq: 2, text: 'hello, edited', editedAt: 1004 })], 'me');
  e = (await store.getEntry('g1'))!;
  assert.equal((e.lastMessage?.body as { text: string }).text, 'hello, edited');
  assert.deepEqual([e.lastSeq, e.lastMessage?.seq, e.unread], [4, 2, 2]);

  // A recall the entry already covers (the server's copy came first, the row not yet rewritten): the preview still follows.
  await store.putEntries([{ ...e, lastSeq: 5, version: 8 }]);
  await sync.noteMessages([msg(5, 'bob', 'recall', { seq: 2, by: 'bob' })], 'me');
  e = (await store.getEntry('g1'))!;
  assert.equal(e.lastMessage?.kind, 'recalled');
  assert.deepEqual(e.lastMessage?.body, { by: 'bob', at: 1005, kind: 'text' });
  assert.deepEqual([e.lastSeq, e.unread], [5, 2]);

  // A recall of an older message leaves the preview; a message after it counts as usual.
  await sync.noteMessages([msg(6, 'bob', 'recall', { seq: 1, by: 'bob' }), msg(7, 'bob', 'text', { text: 'new' })], 'me');
  e = (await store.getEntry('g1'))!;
  assert.deepEqual([e.lastSeq, e.lastMessage?.seq, e.unread], [7, 7, 3]);

  // A deleted entry stays deleted (and unannounced) for an event; a message brings it back.
  await store.putEntries([{ ...e, deleted: true, clearedSeq: 7, unread: 0, version: 9 }]);
  const announced = changed.length;
  await sync.noteMessages([msg(8, 'bob', 'reaction', { changes: [{ seq: 7, emoji: '🎉', user: 'bob', on: true, count: 1 }] })], 'me');
  assert.equal((await store.getEntry('g1'))!.deleted, true);
  assert.equal(changed.length, announced, 'nothing visible changed');
  await sync.noteMessages([msg(9, 'bob', 'text', { text: 'back' })], 'me');
  e = (await store.getEntry('g1'))!;
  assert.deepEqual([e.deleted, e.unread, e.lastMessage?.seq], [false, 1, 9]);
});
