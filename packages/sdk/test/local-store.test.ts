import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '@magpie/protocol';
import { addRange, covers, missing, removeUpTo, maxCovered, coveredUpTo } from '../src/seq-ranges.ts';
import { MemoryStore } from '../src/local-store.ts';
import { coverageOf } from '../src/history.ts';
import { harness, connectOnline } from './helpers/setup.ts';

function msg(conv: string, seq: number): Message {
  return { id: `${conv}-${seq}`, conv, seq, sender: 'bob', kind: 'text', body: { text: `#${seq}` }, time: seq, clientMsgId: `${conv}-c${seq}` };
}

test('seq ranges: merging overlapping and adjacent ranges, holes, trimming', () => {
  let r = addRange([], { from: 10, to: 12 });
  r = addRange(r, { from: 1, to: 3 });
  r = addRange(r, { from: 20, to: 20 });
  assert.deepEqual(r, [{ from: 1, to: 3 }, { from: 10, to: 12 }, { from: 20, to: 20 }]);
  r = addRange(r, { from: 4, to: 4 }); // adjacent
  assert.deepEqual(r, [{ from: 1, to: 4 }, { from: 10, to: 12 }, { from: 20, to: 20 }]);
  r = addRange(r, { from: 11, to: 19 }); // overlaps one, adjacent to the next
  assert.deepEqual(r, [{ from: 1, to: 4 }, { from: 10, to: 20 }]);
  assert.deepEqual(missing(r, 1, 25), [{ from: 5, to: 9 }, { from: 21, to: 25 }]);
  assert.equal(covers(r, 10, 20), true);
  assert.equal(covers(r, 4, 10), false);
  assert.deepEqual(removeUpTo(r, 11), [{ from: 12, to: 20 }]);
  assert.equal(maxCovered(r), 20);
  assert.deepEqual(addRange([{ from: 5, to: 9 }], { from: 1, to: 20 }), [{ from: 1, to: 20 }]);
});

test('memory store keeps messages with their coverage; clearing drops both and blocks older arrivals', async () => {
  const s = new MemoryStore();
  await s.putMessages('g', [msg('g', 5), msg('g', 6)], [{ from: 5, to: 6 }]);
  await s.putMessages('g', [msg('g', 9)], [{ from: 9, to: 9 }]);
  await s.putMessages('g', [msg('g', 6)], [{ from: 6, to: 6 }]); // idempotent
  assert.deepEqual((await s.getMessages('g', 1, 100)).map((m) => m.seq), [5, 6, 9]);
  assert.deepEqual(await s.getRanges('g'), [{ from: 5, to: 6 }, { from: 9, to: 9 }]);
  await s.clearHistoryUpTo('g', 6);
  assert.deepEqual((await s.getMessages('g', 1, 100)).map((m) => m.seq), [9]);
  assert.deepEqual(await s.getRanges('g'), [{ from: 9, to: 9 }]);
  await s.putMessages('g', [msg('g', 4)], [{ from: 4, to: 4 }]);
  assert.deepEqual((await s.getMessages('g', 1, 100)).map((m) => m.seq), [9], 'below the cleared seq: ignored');
  // returned objects are copies
  const [m9] = await s.getMessages('g', 9, 9);
  m9!.body = 'mutated';
  assert.deepEqual((await s.getMessages('g', 9, 9))[0]!.body, { text: '#9' });
});

test('coverage proven by history pages', () => {
  const page = (seqs: number[], lastSeq: number, more: boolean) => ({ messages: seqs.map((s) => msg('g', s)), lastSeq, more });
  assert.deepEqual(coverageOf(page([50, 49, 48], 50, true), {}), { from: 48, to: 50 });
  assert.deepEqual(coverageOf(page([3, 2, 1], 50, false), { before: 4 }), { from: 1, to: 3 });
  assert.deepEqual(coverageOf(page([], 50, false), { before: 4 }), { from: 1, to: 3 });
  assert.deepEqual(coverageOf(page([11, 12], 50, true), { after: 10 }), { from: 11, to: 12 });
  assert.deepEqual(coverageOf(page([49, 50], 50, false), { after: 48 }), { from: 49, to: 50 });
  assert.deepEqual(coverageOf(page([10], 10, false), { before: 1000 }), { from: 1, to: 10 }, 'never covers seqs that do not exist yet');
});

test('live messages of a conversation never loaded show a hole before them; loadHistory fills it', async () => {
  const h = harness();
  for (let i = 0; i < 40; i++) h.server.appendHistory('g', 'bob', `old ${i}`);
  await connectOnline(h);
  h.server.incoming('g', 'bob', 'new 41');
  h.server.incoming('g', 'bob', 'new 42');
  await h.clock.advance(100);
  let w = await h.client.getMessages('g');
  assert.deepEqual(w.messages.map((m) => m.seq), [41, 42]);
  assert.equal(w.hasGapBefore, true, 'seqs 1..40 are not held');
  assert.equal(w.hasGapAfter, false);
  const page = await h.client.loadHistory('g', { before: 41, limit: 15 });
  assert.equal(page.fromServer, true);
  assert.deepEqual(page.messages.map((m) => m.seq), [26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40]);
  assert.equal(page.hasGapBefore, true);
  assert.deepEqual(await h.store.getRanges('g'), [{ from: 26, to: 42 }]);
  w = await h.client.getMessages('g', { limit: 100 });
  assert.deepEqual(w.messages.map((m) => m.seq), Array.from({ length: 17 }, (_, i) => 26 + i), 'one contiguous run now');
  const rest = await h.client.loadHistory('g', { before: 26, limit: 30 });
  assert.deepEqual(rest.messages.map((m) => m.seq), Array.from({ length: 25 }, (_, i) => i + 1));
  assert.equal(rest.hasGapBefore, false);
  assert.equal(rest.moreBefore, false, 'the beginning of the conversation');
  // fully held: served locally, no request
  const historyReqs = h.server.last.framesOfType('history').length;
  const again = await h.client.loadHistory('g', { before: 20, limit: 5 });
  assert.equal(again.fromServer, false);
  assert.deepEqual(again.messages.map((m) => m.seq), [15, 16, 17, 18, 19]);
  assert.equal(h.server.last.framesOfType('history').length, historyReqs);
});

test('a window never spans a hole: two runs are returned separately', async () => {
  const h = harness();
  for (let i = 0; i < 30; i++) h.server.appendHistory('g', 'bob', `m${i}`);
  await connectOnline(h);
  await h.store.putMessages('g', [1, 2, 3, 4, 5].map((s) => h.server.conv('g').messages[s - 1]!), [{ from: 1, to: 5 }]);
  await h.store.putMessages('g', [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30].map((s) => h.server.conv('g').messages[s - 1]!), [{ from: 20, to: 30 }]);
  const newest = await h.client.getMessages('g', { limit: 50 });
  assert.deepEqual(newest.messages.map((m) => m.seq), [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]);
  assert.equal(newest.hasGapBefore, true);
  const inHole = await h.client.getMessages('g', { before: 20 });
  assert.deepEqual(inHole.messages, [], 'seq 19 is not held: nothing presented as complete');
  assert.equal(inHole.hasGapBefore, true);
  const older = await h.client.getMessages('g', { before: 6 });
  assert.deepEqual(older.messages.map((m) => m.seq), [1, 2, 3, 4, 5]);
  assert.equal(older.hasGapBefore, false);
  assert.equal(older.hasGapAfter, true, 'seqs 6..19 missing after this run');
  // jump to the oldest unread with `after`
  const fwd = await h.client.getMessages('g', { after: 2, limit: 10 });
  assert.deepEqual(fwd.messages.map((m) => m.seq), [3, 4, 5]);
  assert.equal(fwd.hasGapAfter, true);
  const filled = await h.client.loadHistory('g', { after: 5, limit: 20 });
  assert.equal(filled.fromServer, true);
  assert.deepEqual(filled.messages.map((m) => m.seq), Array.from({ length: 20 }, (_, i) => i + 6));
  assert.deepEqual(await h.store.getRanges('g'), [{ from: 1, to: 30 }]);
});

test('after a full sync the newest messages are a hole: the latest window is empty until loaded', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.incoming('g', 'bob', 'held');
  await h.clock.advance(100);
  h.client.close();
  for (let i = 0; i < 5; i++) h.server.incoming('g', 'bob', `missed ${i}`, { push: false });
  h.server.forceSync = 'full';
  await connectOnline(h);
  const w = await h.client.getMessages('g');
  assert.deepEqual(w.messages, []);
  assert.equal(w.hasGapBefore, true);
  const old = await h.client.getMessages('g', { before: 2 });
  assert.deepEqual(old.messages.map((m) => m.seq), [1]);
  assert.equal(old.hasGapAfter, true, 'the held message is followed by a hole');
  const latest = await h.client.loadHistory('g', { limit: 3 });
  assert.deepEqual(latest.messages.map((m) => m.seq), [4, 5, 6]);
  assert.equal(latest.hasGapBefore, true);
});

test('own outgoing messages are listed after the newest stored message only', async () => {
  const h = harness();
  h.server.incoming('g', 'bob', 'x', { push: false });
  await connectOnline(h);
  h.server.holdTypes.add('send');
  const m = await h.client.sendText({ conv: 'g' }, 'pending');
  const latest = await h.client.getMessages('g');
  assert.deepEqual(latest.messages.map((x) => [x.seq, x.state]), [[1, 'received'], [null, 'sending']]);
  const older = await h.client.getMessages('g', { before: 2 });
  assert.ok(!older.messages.some((x) => x.clientMsgId === m.clientMsgId), 'not in an explicit older page');
});

test('super-group `advanced` messages are stored by conversation seq; a skipped seq stays a hole', async () => {
  const h = harness();
  for (let i = 0; i < 6; i++) h.server.appendHistory('s', 'bob', `m${i}`);
  h.server.conv('s').entry.kind = 'super';
  await connectOnline(h);
  const m7 = h.server.appendHistory('s', 'bob', 'seven');
  h.server.last.deliver({ type: 'advanced', conv: 's', seq: 7, message: m7 });
  await h.clock.advance(10);
  let w = await h.client.getMessages('s');
  assert.deepEqual(w.messages.map((m) => m.seq), [7]);
  assert.equal(w.hasGapBefore, true);
  h.server.appendHistory('s', 'bob', 'eight (lost)');
  const m9 = h.server.appendHistory('s', 'bob', 'nine');
  h.server.last.deliver({ type: 'advanced', conv: 's', seq: 9, message: m9 });
  await h.clock.advance(10);
  w = await h.client.getMessages('s');
  assert.deepEqual(w.messages.map((m) => m.seq), [9], 'never across the hole at 8');
  assert.equal(w.hasGapBefore, true);
  assert.equal(h.client.inboxSeq, 0, 'no inbox position involved');
  const filled = await h.client.loadHistory('s', { after: 7, limit: 10 });
  assert.deepEqual(filled.messages.map((m) => m.seq), [8, 9]);
});

test('coveredUpTo: what is held up to a catch-up position, ignoring messages that arrived live above it', () => {
  // Held 1–3 before going offline; 4–6 (an edit and a recall) happened offline; 7 (a coalesced
  // reaction) arrived live after the welcome said lastSeq 6. The catch-up must pull after 3.
  const held = addRange(addRange([], { from: 1, to: 3 }), { from: 7, to: 7 });
  assert.equal(maxCovered(held), 7, 'the highest seq held hides the gap');
  assert.equal(coveredUpTo(held, 6), 3);
  assert.equal(coveredUpTo(held, 2), 2, 'a covered position is held');
  assert.equal(coveredUpTo(held, 8), 7);
  assert.equal(coveredUpTo([], 5), 0);
  assert.equal(coveredUpTo(addRange([], { from: 4, to: 9 }), 3), 0, 'nothing held at or below the position');
});

