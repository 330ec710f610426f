import { test } from 'node:test';
import assert from 'node:assert/strict';
import { harness, connectOnline } from './helpers/setup.ts';
import { flush } from './helpers/fake-clock.ts';

test('network-online: a socket that survived the outage is kept when the pong comes in time', async () => {
  const h = harness();
  await connectOnline(h);
  const sock = h.server.last;
  await h.clock.advance(10_000);
  h.client.setNetworkOnline(false);
  sock.dead = true; // outage: nothing gets through …
  await h.clock.advance(5_000);
  sock.dead = false; // … but the TCP connection survived it
  const pingsBefore = sock.framesOfType('ping').length;
  const gen = h.client.connectionGeneration;
  h.client.setNetworkOnline(true);
  await h.clock.advance(10);
  assert.equal(sock.framesOfType('ping').length, pingsBefore + 1, 'probe ping on the existing socket');
  await h.clock.advance(10_000);
  assert.equal(h.server.sockets.length, 1, 'no reconnect');
  assert.equal(h.client.connectionGeneration, gen);
  assert.equal(sock.closedByClient, null);
  assert.equal(h.client.state, 'online');
  // and it still works
  h.server.incoming('g', 'bob', 'after the outage');
  await h.clock.advance(10);
  assert.equal(h.client.inboxSeq, 1);
});

test('network-online: a dead socket is dropped after the pong timeout; late data from it is ignored', async () => {
  const h = harness();
  await connectOnline(h);
  const old = h.server.last;
  h.server.incoming('g', 'bob', 'one');
  await h.clock.advance(10_000);
  assert.equal(h.client.inboxSeq, 1);
  old.dead = true; // the link died during the outage
  h.client.setNetworkOnline(false);
  await h.clock.advance(5_000);
  h.client.setNetworkOnline(true);
  await h.clock.advance(2_999);
  assert.equal(h.server.sockets.length, 1, 'waits for the pong up to the probe timeout');
  await h.clock.advance(1);
  assert.ok(old.closedByClient, 'abandoned after 3 s');
  assert.equal(old.readyState, 2, 'did not wait for the close handshake');
  await h.clock.advanceUntil(() => h.client.state === 'online', 1_000, 10);
  assert.equal(h.server.sockets.length, 2, 'reconnected right away');
  const fresh = h.server.last;

  // The old socket now delivers data: a message the server "sent" before the outage and a close.
  const messages = h.events.message.length;
  old.deliver({ type: 'msg', inboxSeq: 2, message: { id: 'zz', conv: 'g', seq: 99, sender: 'ghost', kind: 'text', body: { text: 'late' }, time: 1, clientMsgId: 'late' } }, { evenIfDead: true });
  old.deliver({ type: 'conv', entry: { ...h.server.conv('g').entry, pinned: true, version: 999 } }, { evenIfDead: true });
  old.onclose?.({ code: 4102, reason: 'kicked' }); // even a late close is ignored
  await h.clock.advance(1_000);
  assert.equal(h.events.message.length, messages, 'no message merged from the abandoned socket');
  assert.equal(h.client.inboxSeq, 1);
  assert.equal((await h.client.getMessages('g')).messages.some((m) => m.clientMsgId === 'late'), false);
  assert.equal((await h.client.getConversation('g'))?.pinned, false);
  assert.equal(h.client.state, 'online', 'a close from the old socket does not affect the new one');
  assert.equal(fresh.readyState, 1);
});

test('foreground: same rule — keep a live socket, replace a dead one, and pull', async () => {
  const h = harness({ appState: 'background' });
  await connectOnline(h);
  const sock = h.server.last;
  await h.clock.advance(10_000);
  h.client.setAppState('foreground');
  await h.clock.advance(4_000);
  assert.equal(h.server.sockets.length, 1);
  assert.equal(sock.framesOfType('sync').length, 1, 'coming to the foreground pulls');
  h.client.setAppState('background');
  await h.clock.advance(1_000);
  sock.dead = true;
  h.client.setAppState('foreground');
  await h.clock.advance(3_000);
  assert.ok(sock.closedByClient);
  await h.clock.advanceUntil(() => h.client.state === 'online', 1_000, 10);
  assert.equal(h.server.sockets.length, 2);
});

test('a request in flight when the socket is abandoned fails with `disconnected`', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.conv('g');
  await h.clock.advance(7_000);
  h.server.last.dead = true;
  const read = h.client.markRead('g', 1).then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  );
  h.client.setNetworkOnline(true);
  await h.clock.advance(3_000);
  assert.equal(await read, 'disconnected');
  await flush();
  // and a request without a connection fails at once with not_connected
  h.server.connectMode = 'hang';
  const r2 = await h.client.markRead('g', 1).then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  );
  assert.equal(r2, 'not_connected');
});

// Issue 14: a half-open link (no FIN, no RST, nothing arrives) was noticed only at the next
// regular ping (~36 s, worst ~50 s) while a send waited for its ACK.
test('regression: a half-open link under a waiting send is given up after ~3 s + 3 s and the send goes out again', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.conv('g');
  await h.clock.advance(7_000); // quick pings done; next regular ping at ~46 s
  const old = h.server.last;
  old.dead = true;
  const t0 = h.clock.now();
  const m = await h.client.sendText({ conv: 'g' }, 'into the void');
  await h.clock.advance(2_900);
  assert.equal(old.framesOfType('ping').length, 3, 'no probe before 3 s');
  await h.clock.advance(200);
  assert.equal(old.framesOfType('ping').length, 4, 'probe ping after 3 s without an answer');
  await h.clock.advance(2_800);
  assert.equal(old.closedByClient, null);
  await h.clock.advanceUntil(() => old.closedByClient !== null, 200, 10);
  assert.equal(old.readyState, 2, 'abandoned without waiting for the close handshake');
  await h.clock.advanceUntil(() => h.client.state === 'online', 1_000, 10);
  const done = await h.client.waitForSend(m.clientMsgId);
  assert.equal(done?.state, 'sent');
  assert.ok(h.clock.now() - t0 < 7_000, `recovered in ${h.clock.now() - t0} ms`);
  assert.equal(h.server.conv('g').messages.length, 1);
});

test('half-open under a waiting pull: probed and abandoned the same way', async () => {
  const h = harness();
  await connectOnline(h);
  await h.clock.advance(7_000);
  h.server.incoming('g', 'bob', 'x', { push: false });
  const old = h.server.last;
  old.dead = true;
  const t0 = h.clock.now();
  const refreshed = h.client.refresh().catch((e: Error) => e.message);
  await h.clock.advanceUntil(() => h.client.state === 'online' && h.server.last !== old, 10_000, 10);
  assert.ok(h.clock.now() - t0 < 6_500, `reconnected after ${h.clock.now() - t0} ms`);
  await h.clock.advance(50);
  assert.equal(h.client.inboxSeq, 1);
  assert.match(String(await refreshed), /connection lost/);
});

test('a slow answer on a live link is not mistaken for a dead one', async () => {
  const h = harness();
  await connectOnline(h);
  h.server.conv('g');
  await h.clock.advance(7_000);
  h.server.holdTypes.add('send');
  const m = await h.client.sendText({ conv: 'g' }, 'slow');
  await h.clock.advance(10_000); // probes answered by pongs
  assert.equal(h.server.sockets.length, 1, 'kept');
  h.server.releaseHeld();
  await h.clock.advance(10);
  assert.equal((await h.client.waitForSend(m.clientMsgId))?.state, 'sent');
});
