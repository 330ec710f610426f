import { test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, connectOnline } from './helpers/setup.ts';

/** Group delivered counts in the SDK: `delivered.counts` frames, `deliveredCount`, state transitions. */

const G = 'g:trip';

test('a group message goes sending → sent (count 0) → delivered once its count is ≥ 1; the count keeps rising; typed events', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.conv(G);
  h.server.holdTypes.add('send');
  const m = await h.client.sendText({ conv: G }, 'who is in?');
  assert.equal(m.state, 'sending');
  assert.equal(m.deliveredCount, null, 'no count before the server accepted it');
  h.server.releaseHeld();
  await h.clock.advance(10);
  let view = await h.client.getMessages(G);
  assert.deepEqual(view.messages.map((x) => [x.seq, x.state, x.deliveredCount]), [[1, 'sent', 0]]);

  h.server.last.deliver({ type: 'delivered.counts', conv: G, counts: [[1, 1]] });
  await h.clock.advance(10);
  view = await h.client.getMessages(G);
  assert.deepEqual(view.messages.map((x) => [x.state, x.deliveredCount]), [['delivered', 1]]);
  h.server.last.deliver([
    { type: 'delivered.counts', conv: G, counts: [[1, 3]] },
    { type: 'delivered.counts', conv: G, counts: [[1, 2]] }, // an older count arriving late changes nothing
  ]);
  await h.clock.advance(10);
  view = await h.client.getMessages(G);
  assert.deepEqual(view.messages.map((x) => [x.state, x.deliveredCount]), [['delivered', 3]]);

  const mine = h.events.message.filter((e) => e.clientMsgId === m.clientMsgId);
  const transitions = mine.map((e) => `${e.state}:${e.deliveredCount}`).filter((x, i, a) => i === 0 || a[i - 1] !== x);
  assert.deepEqual(transitions, ['sending:null', 'sent:0', 'delivered:1', 'delivered:3']);
  assert.deepEqual(h.events.deliveredCounts, [
    { conv: G, counts: [{ seq: 1, count: 1 }] },
    { conv: G, counts: [{ seq: 1, count: 3 }] },
  ]);
  // The count is kept in the stored message (survives a restart of the app with a persistent store).
  assert.equal((await h.store.getMessages(G, 1, 1))[0]?.deliveredCount, 3);
});

test('counts that arrive before the stored copy are kept when it is merged; others’ messages and direct chats have no count', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.conv(G);
  h.server.conv('d:me:zoe', { kind: 'direct', peer: 'zoe' });
  h.server.incoming(G, 'bob', 'hello from bob');
  await h.clock.advance(600);
  h.server.holdTypes.add('send');
  const m = await h.client.sendText({ conv: G }, 'hi bob');
  const d = await h.client.sendText({ conv: 'd:me:zoe' }, 'hi zoe');
  // The server answers only after the counts frame for seq 2 came in (the reply and the frame race).
  h.server.last.deliver({ type: 'delivered.counts', conv: G, counts: [[2, 1]] });
  await h.clock.advance(10);
  h.server.releaseHeld();
  await h.clock.advance(50);
  const view = await h.client.getMessages(G);
  assert.deepEqual(view.messages.map((x) => [x.sender, x.seq, x.state, x.deliveredCount]), [
    ['bob', 1, 'received', null],
    ['me', 2, 'delivered', 1],
  ]);
  assert.equal((await h.store.getMessages(G, 2, 2))[0]?.deliveredCount, 1, 'the merged copy keeps the count');
  assert.equal(view.messages[1]!.clientMsgId, m.clientMsgId);
  const direct = await h.client.getMessages('d:me:zoe');
  assert.deepEqual(direct.messages.map((x) => [x.clientMsgId, x.state, x.deliveredCount]), [[d.clientMsgId, 'sent', null]]);
});

test('refreshDeliveredCounts: a device that was offline learns the counts of messages it already holds from history', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.conv(G);
  await h.client.sendText({ conv: G }, 'one');
  await h.client.sendText({ conv: G }, 'two');
  await h.clock.advance(50);
  let view = await h.client.getMessages(G);
  assert.deepEqual(view.messages.map((x) => [x.state, x.deliveredCount]), [['sent', 0], ['sent', 0]]);
  // Meanwhile (frames missed) members stored them; the server's history now carries the counts.
  const stored = h.server.convs.get(G)!.messages;
  stored[0] = { ...stored[0]!, deliveredCount: 4 };
  stored[1] = { ...stored[1]!, deliveredCount: 2 };
  const before = h.events.message.length;
  const p = h.client.refreshDeliveredCounts(G);
  await h.clock.advance(10);
  await p;
  view = await h.client.getMessages(G);
  assert.deepEqual(view.messages.map((x) => [x.state, x.deliveredCount]), [['delivered', 4], ['delivered', 2]]);
  assert.deepEqual(h.events.message.slice(before).map((x) => [x.seq, x.deliveredCount]), [[1, 4], [2, 2]]);
  assert.deepEqual(h.events.deliveredCounts.at(-1), { conv: G, counts: [{ seq: 1, count: 4 }, { seq: 2, count: 2 }] });
  // A second refresh with nothing new emits nothing.
  const n = h.events.message.length;
  const again = h.client.refreshDeliveredCounts(G);
  await h.clock.advance(10);
  await again;
  assert.equal(h.events.message.length, n);
  // Direct chats: nothing is requested.
  const histories = h.server.received('history').length;
  await h.client.refreshDeliveredCounts('d:me:zoe');
  assert.equal(h.server.received('history').length, histories);
});

test('super groups keep no count: own messages stay sent, frames are ignored', async () => {
  const h = harness();
  h.server.conv('g:big', { kind: 'super' });
  await connectOnline(h);
  await h.client.sendText({ conv: 'g:big' }, 'hello everyone');
  await h.clock.advance(50);
  h.server.last.deliver({ type: 'delivered.counts', conv: 'g:big', counts: [[1, 5]] });
  await h.clock.advance(10);
  const view = await h.client.getMessages('g:big');
  assert.deepEqual(view.messages.map((x) => [x.state, x.deliveredCount]), [['sent', null]]);
  assert.deepEqual(h.events.deliveredCounts, []);
});
