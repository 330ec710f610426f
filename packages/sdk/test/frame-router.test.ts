import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '@magpie/protocol';
import { FrameRouter, type FrameHandlers } from '../src/frame-router.ts';
import { DeliveredTracker } from '../src/delivered.ts';
import { MemoryStore } from '../src/local-store.ts';

function recorder(): { calls: [string, unknown][]; handlers: FrameHandlers } {
  const calls: [string, unknown][] = [];
  const on = (name: string) => (x: unknown, y?: unknown) => void calls.push([name, y === undefined ? x : [x, y]]);
  const handlers = {
    msg: on('msg'),
    advanced: on('advanced'),
    conv: on('conv'),
    delivered: on('delivered'),
    deliveredCounts: on('deliveredCounts'),
    pong: on('pong'),
    kicked: on('kicked'),
    instruction: on('instruction'),
    error: on('error'),
    other: on('other'),
  } as FrameHandlers;
  return { calls, handlers };
}

const msg = (seq: number): Message => ({ id: `m${seq}`, conv: 'd:a:b', seq, sender: 'a', clientMsgId: `c${seq}`, kind: 'text', body: { text: 'x' }, time: 1 }) as Message;

test('the router holds data frames until release and replays them in order; control frames pass at once', () => {
  const { calls, handlers } = recorder();
  const router = new FrameRouter(handlers);
  router.hold();
  router.route({ type: 'msg', inboxSeq: 1, message: msg(1) });
  router.route({ type: 'pong', inboxSeq: 5 });
  router.route({ type: 'delivered', conv: 'd:a:b', seq: 1, by: 'b' });
  assert.deepEqual(calls.map((c) => c[0]), ['pong']);
  router.release();
  assert.deepEqual(calls.map((c) => c[0]), ['pong', 'msg', 'delivered']);
  router.route({ type: 'advanced', seq: 2, message: msg(2) });
  assert.equal(calls.at(-1)![0], 'advanced');
});

test('the router drops malformed frames and passes unknown types on', () => {
  const { calls, handlers } = recorder();
  const router = new FrameRouter(handlers);
  router.release();
  router.route({ type: 'msg', inboxSeq: 'x', message: msg(1) });
  router.route({ type: 'msg', inboxSeq: 1, message: { conv: 'x' } });
  router.route({ type: 'delivered.counts', conv: 'g:1', counts: [[1, 2], ['bad'], [3]] });
  router.route({ type: 'relation', change: {} });
  assert.deepEqual(calls, [
    ['deliveredCounts', ['g:1', [[1, 2]]]],
    ['other', { type: 'relation', change: {} }],
  ]);
});

test('a new socket drops frames held for the old one', () => {
  const { calls, handlers } = recorder();
  const router = new FrameRouter(handlers);
  router.route({ type: 'conv', entry: { conv: 'd:a:b', version: 1 } });
  router.hold();
  router.release();
  assert.deepEqual(calls, []);
});

test('the delivered tracker stores the mark before it tells own messages again, and counts only in normal groups', async () => {
  const store = new MemoryStore();
  const events: string[] = [];
  const tracker = new DeliveredTracker(
    { store, userId: () => 'a', outgoing: () => [], toLocal: (m) => ({ seq: m.seq }) as never, fromRecord: () => ({}) as never },
    {
      delivered: (e) => events.push(`delivered ${e.seq}`),
      deliveredCounts: (e) => events.push(`counts ${e.counts.map((c) => `${c.seq}=${c.count}`).join(',')}`),
      message: (m) => events.push(`message ${m.seq}`),
    },
  );
  await store.putMessages('d:a:b', [msg(1), msg(2), { ...msg(3), sender: 'b' }], []);
  await tracker.onFrame({ conv: 'd:a:b', seq: 3, by: 'b' });
  assert.equal(await store.getDeliveredSeq('d:a:b'), 3);
  assert.equal(tracker.deliveredSeq('d:a:b'), 3);
  assert.deepEqual(events, ['delivered 3', 'message 1', 'message 2']);
  await tracker.onFrame({ conv: 'd:a:b', seq: 2, by: 'b' });
  assert.deepEqual(events.slice(3), ['delivered 2']);

  events.length = 0;
  tracker.setKind('g:s', 'super');
  assert.equal(tracker.counted('g:s'), false);
  assert.equal(tracker.counted('g:n'), true);
  await store.putMessages('g:n', [{ ...msg(1), conv: 'g:n' }], []);
  await tracker.applyCounts('g:n', [[1, 2]]);
  await tracker.applyCounts('g:n', [[1, 1]]);
  assert.equal(tracker.liveCount('g:n', 1), 2);
  assert.equal((await store.getMessages('g:n', 1, 1))[0]!.deliveredCount, 2);
  assert.deepEqual(events, ['counts 1=2', 'message 1']);
});
