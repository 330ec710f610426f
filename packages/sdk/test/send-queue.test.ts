import { test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, connectOnline } from './helpers/setup.ts';
import { flush } from './helpers/fake-clock.ts';

test('send: sending → sent, the reply\'s inboxSeq goes through the ordered queue, then the stored copy replaces the record', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.conv('g');
  h.server.holdTypes.add('send');
  const m = await h.client.sendText({ conv: 'g' }, 'hello');
  assert.equal(m.state, 'sending');
  assert.equal(m.seq, null);
  assert.equal((await h.store.listOutgoing()).length, 1, 'stored locally as sending');
  const sendingView = await h.client.getMessages('g');
  assert.deepEqual(sendingView.messages.map((x) => [x.clientMsgId, x.state]), [[m.clientMsgId, 'sending']]);
  h.server.releaseHeld();
  await h.clock.advance(10);
  const states = h.events.message.filter((e) => e.clientMsgId === m.clientMsgId).map((e) => e.state);
  assert.deepEqual(states, ['sending', 'sent', 'sent']); // record accepted, then stored copy merged
  assert.equal(h.client.inboxSeq, 1);
  assert.deepEqual(await h.store.listOutgoing(), []);
  const view = await h.client.getMessages('g');
  assert.deepEqual(view.messages.map((x) => [x.seq, x.state, x.clientMsgId]), [[1, 'sent', m.clientMsgId]]);
  assert.equal(h.server.received('send').length, 1);
});

test('retry across a reconnect uses the same clientMsgId; the server deduplicates; shown once', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.conv('g');
  h.server.dropSendReplies = 1; // stored on the server, reply lost …
  const m = await h.client.sendText({ conv: 'g' }, 'once');
  await h.clock.advance(10);
  assert.equal(h.client.outgoing()[0]!.state, 'sending');
  h.server.last.drop(); // … and the connection goes
  await flush();
  await h.clock.advanceUntil(() => h.client.state === 'online', 5_000, 10);
  await h.clock.advance(100);
  const sends = h.server.received('send');
  assert.equal(sends.length, 2);
  assert.equal(sends[0]!.clientMsgId, m.clientMsgId);
  assert.equal(sends[1]!.clientMsgId, m.clientMsgId, 'same clientMsgId on the retry');
  assert.equal(h.server.conv('g').messages.length, 1, 'stored once on the server');
  const done = await h.client.waitForSend(m.clientMsgId);
  assert.equal(done?.state, 'sent');
  const view = await h.client.getMessages('g');
  assert.equal(view.messages.length, 1, 'shown once');
  assert.equal(h.client.inboxSeq, 1);
});

test('a message queued while offline is sent after the connection comes up', async () => {
  const h = harness();
  h.server.connectMode = 'refuse';
  h.server.conv('g');
  h.client.start();
  const m = await h.client.sendText({ conv: 'g' }, 'offline');
  await h.clock.advance(1_000);
  assert.equal(h.client.outgoing()[0]!.state, 'sending');
  h.server.connectMode = 'open';
  await h.clock.advanceUntil(() => h.client.state === 'online', 10_000, 10);
  await h.clock.advance(10);
  assert.equal((await h.client.waitForSend(m.clientMsgId))?.state, 'sent');
});

test('a non-retryable server error fails the message at once; retry() re-queues it with the same clientMsgId', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.conv('g');
  let refuse = true;
  h.server.onSend = () => (refuse ? { code: 'forbidden', message: 'not a member' } : undefined);
  const m = await h.client.sendText({ conv: 'g' }, 'x');
  await h.clock.advance(10);
  const failed = h.client.outgoing()[0]!;
  assert.equal(failed.state, 'failed');
  assert.deepEqual(failed.error, { code: 'forbidden', message: 'not a member' });
  assert.equal(h.server.received('send').length, 1, 'not retried on its own');
  await h.clock.advance(60_000);
  assert.equal(h.server.received('send').length, 1);
  refuse = false;
  const again = await h.client.retry(m.clientMsgId);
  assert.equal(again.state, 'sending');
  await h.clock.advance(10);
  assert.equal((await h.client.waitForSend(m.clientMsgId))?.state, 'sent');
  const sends = h.server.received('send');
  assert.equal(sends.length, 2);
  assert.equal(sends[1]!.clientMsgId, m.clientMsgId);
});

test('retryable errors are retried after the delay (retryAfterMs wins) up to maxAttempts, then failed', async () => {
  const h = harness({ sendQueue: { maxAttempts: 3, retryDelayMs: 1_000 } });
  await connectOnline(h);
  h.server.conv('g');
  h.server.onSend = () => ({ code: 'rate_limited', message: 'slow', retryAfterMs: 5_000 });
  const m = await h.client.sendText({ conv: 'g' }, 'x');
  await h.clock.advance(10);
  assert.equal(h.server.received('send').length, 1);
  await h.clock.advance(4_980);
  assert.equal(h.server.received('send').length, 1, 'waits retryAfterMs');
  await h.clock.advance(20);
  assert.equal(h.server.received('send').length, 2);
  await h.clock.advance(5_000);
  assert.equal(h.server.received('send').length, 3);
  assert.equal(h.client.outgoing()[0]!.state, 'failed');
  await h.clock.advance(60_000);
  assert.equal(h.server.received('send').length, 3);
  assert.equal((await h.client.waitForSend(m.clientMsgId))?.state, 'failed');
});

test('timeouts count as attempts and are resent with the same clientMsgId', async () => {
  const h = harness({ sendQueue: { maxAttempts: 2, requestTimeoutMs: 2_000, retryDelayMs: 500 } });
  await connectOnline(h);
  h.server.conv('g');
  h.server.onSend = () => 'drop';
  const m = await h.client.sendText({ conv: 'g' }, 'x');
  await h.clock.advance(2_000);
  await h.clock.advance(500);
  assert.equal(h.server.received('send').length, 2);
  await h.clock.advance(2_000);
  const r = h.client.outgoing()[0]!;
  assert.equal(r.state, 'failed');
  assert.equal(r.error?.code, 'timeout');
  assert.ok(h.server.received('send').every((f) => f.clientMsgId === m.clientMsgId));
});

test('a message that cannot be sent within maxAgeMs fails (offline all along)', async () => {
  const h = harness({ sendQueue: { maxAgeMs: 60_000 } });
  h.server.connectMode = 'refuse';
  h.client.start();
  const m = await h.client.sendText({ conv: 'g' }, 'x');
  await h.clock.advance(59_999);
  assert.equal(h.client.outgoing()[0]!.state, 'sending');
  await h.clock.advance(1);
  assert.equal(h.client.outgoing()[0]!.state, 'failed');
  assert.equal(h.events.message[h.events.message.length - 1]!.state, 'failed');
  // retry() restarts the clock
  h.server.connectMode = 'open';
  await h.client.retry(m.clientMsgId);
  h.client.setNetworkOnline(true);
  await h.clock.advanceUntil(() => h.client.state === 'online', 10_000, 10);
  await h.clock.advance(10);
  assert.equal((await h.client.waitForSend(m.clientMsgId))?.state, 'sent');
});

test('delivered: `delivered` events and ConvEntry.deliveredSeq move own messages to delivered', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.conv('g');
  const a = await h.client.sendText({ conv: 'g' }, 'a');
  const b = await h.client.sendText({ conv: 'g' }, 'b');
  const c = await h.client.sendText({ conv: 'g' }, 'c');
  await h.clock.advance(200);
  h.server.last.deliver({ type: 'delivered', conv: 'g', seq: 2, by: 'bob' });
  await h.clock.advance(10);
  assert.deepEqual(h.events.delivered, [{ conv: 'g', seq: 2, by: 'bob' }]);
  let view = await h.client.getMessages('g');
  assert.deepEqual(view.messages.map((m) => [m.clientMsgId, m.state]), [
    [a.clientMsgId, 'delivered'],
    [b.clientMsgId, 'delivered'],
    [c.clientMsgId, 'sent'],
  ]);
  const deliveredEvents = h.events.message.filter((m) => m.state === 'delivered').map((m) => m.seq);
  assert.deepEqual(deliveredEvents, [1, 2]);
  // the entry (e.g. learned after being offline) carries deliveredSeq 3
  h.server.updateEntry('g', { deliveredSeq: 3 }, { push: true });
  await h.clock.advance(10);
  view = await h.client.getMessages('g');
  assert.equal(view.messages[2]!.state, 'delivered');
  // a stale delivered event does not move anything back
  h.server.last.deliver({ type: 'delivered', conv: 'g', seq: 1, by: 'bob' });
  await h.clock.advance(10);
  view = await h.client.getMessages('g');
  assert.ok(view.messages.every((m) => m.state === 'delivered'));
});

test('a direct message to a user (no conversation id yet) is queued with `to` and lands in the direct conversation', async () => {
  const h = harness();
  await connectOnline(h);
  const m = await h.client.sendText({ to: 'zoe' }, 'hi zoe');
  assert.equal(m.conv, null);
  assert.equal(m.to, 'zoe');
  await h.clock.advance(10);
  const sent = h.server.received('send')[0]!;
  assert.equal(sent.to, 'zoe');
  assert.equal(sent.conv, undefined);
  const done = await h.client.waitForSend(m.clientMsgId);
  assert.equal(done?.conv, 'd:me:zoe');
  const view = await h.client.getMessages('d:me:zoe');
  assert.deepEqual(view.messages.map((x) => x.clientMsgId), [m.clientMsgId]);
});

test('outgoing records survive a restart of the client (same store) and are resent', async () => {
  const h = harness();
  h.server.connectMode = 'refuse';
  h.client.start();
  const m = await h.client.sendText({ conv: 'g' }, 'persisted');
  h.client.close();
  await flush();
  h.server.connectMode = 'open';
  h.server.conv('g');
  const h2 = harness({ store: h.store }, h.server, h.clock);
  await connectOnline(h2);
  await h2.clock.advance(10);
  assert.equal((await h2.client.waitForSend(m.clientMsgId))?.state, 'sent');
  assert.equal(h.server.received('send')[0]!.clientMsgId, m.clientMsgId);
});

// Issue 14: with 8 sends in flight, one that got a retryable answer waited while later ones
// committed, so the conversation was stored out of the order the user typed it.
async function burst(h: ReturnType<typeof harness>, n: number, conv = 'g'): Promise<string[]> {
  const typed: string[] = [];
  for (let i = 0; i < n; i++) typed.push((await h.client.sendText({ conv }, `m${i}`)).clientMsgId);
  return typed;
}

test('regression: a rate-limited send in a pipelined burst holds back everything behind it; stored order = typed order', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.conv('g');
  h.server.conv('other');
  h.server.holdTypes.add('send'); // let the window fill before the server answers
  let n = 0;
  h.server.onSend = (f) => (f.conv === 'g' && ++n === 3 ? { code: 'rate_limited', message: 'slow down', retryAfterMs: 1_000 } : undefined);
  const typed = await burst(h, 30);
  const other = await burst(h, 3, 'other');
  assert.equal(h.client.outgoing().length, 33);
  assert.equal(h.server.conv('g').messages.length, 0);
  await flush();
  h.server.holdTypes.delete('send');
  h.server.releaseHeld();
  await h.clock.advance(10_000);
  for (const id of [...typed, ...other]) assert.equal((await h.client.waitForSend(id))?.state, 'sent');
  assert.deepEqual(h.server.conv('g').messages.map((m) => m.clientMsgId), typed, 'stored in typing order');
  assert.deepEqual(h.server.conv('other').messages.map((m) => m.clientMsgId), other, 'another conversation is not held back');
  assert.ok(h.server.refusedByHold > 0, 'the sends pipelined behind the refused one were refused too');
  const sends = h.server.received('send').filter((f) => f.conv === 'g').map((f) => f.clientMsgId as string);
  const third = typed[2]!;
  const resendAt = sends.lastIndexOf(third);
  assert.ok(sends.slice(resendAt + 1).every((id) => typed.indexOf(id) > 2), 'nothing before the refused one is sent after its resend');
});

test('regression: lost replies and timeouts in a burst keep the typing order (idempotent resends)', async () => {
  const h = harness({ sendQueue: { requestTimeoutMs: 3_000, retryDelayMs: 500 } });
  await connectOnline(h);
  h.server.conv('g');
  let n = 0;
  h.server.onSend = (f) => {
    n++;
    if (n === 4 || n === 17) h.server.dropSendReplies = 1; // stored, but the reply is lost: a timeout
    if (n === 9) return { code: 'internal', message: 'try again' };
    return undefined;
  };
  const typed = await burst(h, 40);
  await h.clock.advance(30_000);
  for (const id of typed) assert.equal((await h.client.waitForSend(id))?.state, 'sent');
  assert.deepEqual(h.server.conv('g').messages.map((m) => m.clientMsgId), typed);
});

test('the happy path still pipelines: window-many sends in flight before the first answer', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.conv('g');
  h.server.holdTypes.add('send');
  await burst(h, 20);
  await flush();
  assert.equal(h.client.outgoing().length, 20);
  assert.equal(h.server.last.framesOfType('send').length, 8, 'window of 8 in flight in one conversation');
});

test('regression: a refused send waiting for its retry holds its conversation across a reconnect', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.conv('g');
  let first = true;
  h.server.onSend = (f) => {
    if (f.clientMsgId === 'cm-2' && first) {
      first = false;
      return { code: 'rate_limited', message: 'slow down', retryAfterMs: 5_000 };
    }
    return undefined;
  };
  h.server.holdTypes.add('send');
  const typed = await burst(h, 12);
  await flush();
  h.server.releaseHeld(2); // cm-1 stored, cm-2 refused; cm-3 … cm-8 still on the wire …
  await h.clock.advance(10);
  h.server.discardHeld(); // … and lost with the connection
  h.server.holdTypes.delete('send');
  // cm-2 waits 5 s for its retry; the connection drops meanwhile (the new one has no hold)
  h.server.last.drop();
  await h.clock.advance(20_000);
  for (const id of typed) assert.equal((await h.client.waitForSend(id))?.state, 'sent');
  assert.deepEqual(h.server.conv('g').messages.map((m) => m.clientMsgId), typed);
});
