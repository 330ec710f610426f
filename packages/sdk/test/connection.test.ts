import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Connection, type RawFrame } from '../src/transport/connection.ts';
import { MagpieClientError } from '../src/errors.ts';
import { FakeClock, flush } from './helpers/fake-clock.ts';
import { FakeServer, type FakeSocket } from './helpers/fake-server.ts';

function setup() {
  const clock = new FakeClock();
  const server = new FakeServer(clock);
  const frames: RawFrame[] = [];
  const closes: { code: number; reason: string }[] = [];
  let opened = 0;
  const conn = new Connection({
    url: 'ws://x/ws',
    webSocketFactory: server.factory,
    clock,
    requestTimeoutMs: 5_000,
    generation: 7,
    handlers: {
      onOpen: () => opened++,
      onFrame: (f) => frames.push(f),
      onClose: (c) => closes.push(c),
    },
  });
  return { clock, server, conn, frames, closes, opened: () => opened };
}

async function openAuthed(s: ReturnType<typeof setup>): Promise<FakeSocket> {
  s.conn.open();
  await flush();
  assert.equal(s.opened(), 1);
  const welcome = s.conn.request({ type: 'hello', versions: [1], token: s.server.token, inboxSeq: 0 });
  await flush();
  const w = await welcome;
  assert.equal(w.userId, 'me');
  return s.server.last;
}

test('requests get increasing ids and are matched to their replies', async () => {
  const s = setup();
  const sock = await openAuthed(s);
  s.server.conv('g1');
  const a = s.conn.request({ type: 'convs', since: 0 });
  const b = s.conn.request({ type: 'sync', since: 0 });
  await flush();
  const [ra, rb] = await Promise.all([a, b]);
  assert.equal(ra.entries.length, 1);
  assert.deepEqual(rb.items, []);
  const ids = sock.sent.map((f) => f.id);
  assert.deepEqual(ids, [1, 2, 3]);
  assert.equal(s.conn.generation, 7);
});

test('a JSON array of frames is processed in order; replies inside it resolve their requests', async () => {
  const s = setup();
  const sock = await openAuthed(s);
  s.server.autoPong = false;
  const p = s.conn.request({ type: 'ping' });
  await flush();
  const pingId = sock.sent[sock.sent.length - 1]!.id as number;
  sock.deliver([
    { type: 'delivered', conv: 'g', seq: 1, by: 'x' },
    { type: 'pong', id: pingId, inboxSeq: 4, time: 1 },
    { type: 'delivered', conv: 'g', seq: 2, by: 'x' },
  ]);
  await flush();
  const pong = await p;
  assert.equal(pong.inboxSeq, 4);
  // pongs are passed on as well (they carry the server's inboxSeq)
  assert.deepEqual(
    s.frames.map((f) => `${f.type}:${f.seq ?? f.inboxSeq}`),
    ['delivered:1', 'pong:4', 'delivered:2'],
  );
});

test('a request without a reply fails with a timeout error', async () => {
  const s = setup();
  const sock = await openAuthed(s);
  s.server.autoPong = false;
  const p = s.conn.request({ type: 'ping' }, { timeoutMs: 1_000 });
  const box: { err?: unknown } = {};
  const got = (): unknown => box.err;
  p.catch((e) => (box.err = e));
  await s.clock.advance(999);
  assert.equal(got(), undefined);
  await s.clock.advance(1);
  const err = got();
  assert.ok(err instanceof MagpieClientError);
  assert.equal(err.code, 'timeout');
  assert.equal(s.conn.pendingCount, 0);
  assert.equal(sock.readyState, 1, 'a timeout alone does not close the socket');
});

test('server errors reject the request with the server code, retryAfterMs and details', async () => {
  const s = setup();
  await openAuthed(s);
  s.server.onSend = () => ({ code: 'rate_limited', message: 'slow down', retryAfterMs: 1234 });
  const p = s.conn.request({ type: 'send', clientMsgId: 'c1', conv: 'g', kind: 'text', body: { text: 'x' } });
  const checked = assert.rejects(p, (e: unknown) => e instanceof MagpieClientError && e.code === 'rate_limited' && e.retryAfterMs === 1234 && e.retryable && e.fromServer);
  await flush();
  await checked;
  const q = assert.rejects(s.conn.request({ type: 'history', conv: 'nope' }), (e: unknown) => e instanceof MagpieClientError && e.code === 'not_found' && !e.retryable);
  await flush();
  await q;
});

test('requests in flight fail with `disconnected` when the socket closes; onClose reports the code', async () => {
  const s = setup();
  const sock = await openAuthed(s);
  s.server.autoPong = false;
  const p = assert.rejects(s.conn.request({ type: 'ping' }), (e: unknown) => e instanceof MagpieClientError && e.code === 'disconnected');
  sock.serverClose(4502, 'restart');
  await flush();
  await p;
  assert.deepEqual(s.closes, [{ code: 4502, reason: 'restart' }]);
  await assert.rejects(s.conn.request({ type: 'ping' }), (e: unknown) => e instanceof MagpieClientError && e.code === 'disconnected');
});

test('abandon() fails pending requests, starts a close without waiting, and ignores later data', async () => {
  const s = setup();
  const sock = await openAuthed(s);
  sock.dead = true;
  const p = s.conn.request({ type: 'ping' });
  s.conn.abandon('probe_timeout');
  await assert.rejects(p, (e: unknown) => e instanceof MagpieClientError && e.code === 'disconnected');
  assert.ok(sock.closedByClient, 'close() was called on the socket');
  assert.equal(sock.readyState, 2, 'the close handshake never completed (dead link) and nobody waited for it');
  sock.deliver({ type: 'msg', inboxSeq: 1, message: {} }, { evenIfDead: true });
  sock.serverClose(1006);
  await flush();
  assert.deepEqual(s.frames, [], 'late data from the abandoned socket is dropped');
  assert.deepEqual(s.closes, [], 'no close callback after abandon');
  assert.equal(s.conn.isOpen, false);
});

test('unreadable text is reported and the connection stays up', async () => {
  const clock = new FakeClock();
  const server = new FakeServer(clock);
  const errors: MagpieClientError[] = [];
  const frames: RawFrame[] = [];
  const conn = new Connection({
    url: 'ws://x/ws',
    webSocketFactory: server.factory,
    clock,
    requestTimeoutMs: 5_000,
    generation: 1,
    handlers: { onOpen() {}, onFrame: (f) => frames.push(f), onClose() {}, onProtocolError: (e) => errors.push(e) },
  });
  conn.open();
  await flush();
  server.last.onmessage?.({ data: 'not json' });
  server.last.onmessage?.({ data: Buffer.from(JSON.stringify({ type: 'delivered', conv: 'g', seq: 3, by: 'b' })) });
  await flush();
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.code, 'bad_response');
  assert.equal(frames.length, 1, 'binary (Buffer) frames are decoded as UTF-8 JSON');
  assert.equal(conn.isOpen, true);
});

test('a request on a socket that is not open yet fails with not_connected', async () => {
  const s = setup();
  s.server.connectMode = 'hang';
  s.conn.open();
  await flush();
  await assert.rejects(s.conn.request({ type: 'ping' }), (e: unknown) => e instanceof MagpieClientError && e.code === 'not_connected');
});

test('after abandon(), data is dropped even if the socket keeps calling the old handlers', async () => {
  // Some socket wrappers (event-listener based) keep calling a handler after it was "removed".
  const clock = new FakeClock();
  const server = new FakeServer(clock);
  const frames: RawFrame[] = [];
  const closes: unknown[] = [];
  let sticky: { onmessage?: (e: { data: string }) => void; onclose?: (e: { code: number }) => void } = {};
  const conn = new Connection({
    url: 'ws://x/ws',
    webSocketFactory: (url) => {
      const s = server.factory(url);
      queueMicrotask(() => {
        sticky = { onmessage: s.onmessage ?? undefined, onclose: s.onclose ?? undefined };
      });
      return s;
    },
    clock,
    requestTimeoutMs: 5_000,
    generation: 1,
    handlers: { onOpen() {}, onFrame: (f) => frames.push(f), onClose: (c) => closes.push(c) },
  });
  conn.open();
  await flush();
  sticky.onmessage?.({ data: JSON.stringify({ type: 'delivered', conv: 'g', seq: 1, by: 'b' }) });
  assert.equal(frames.length, 1);
  conn.abandon();
  sticky.onmessage?.({ data: JSON.stringify({ type: 'delivered', conv: 'g', seq: 2, by: 'b' }) });
  sticky.onclose?.({ code: 1006 });
  assert.equal(frames.length, 1, 'nothing after abandon');
  assert.deepEqual(closes, []);
});
