import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { EventEmitter } from 'node:events';
import * as wsModule from 'ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { directReads, readDirect } from '../src/gateway/direct-read.ts';
import { Connection, type ConnectionTask } from '../src/gateway/connection.ts';

/** ws's frame parser; @types/ws does not declare it, the package's ESM entry exports it by name. */
type FrameReceiver = EventEmitter & { write(chunk: Buffer): void };
const Receiver = (wsModule as unknown as { Receiver: new (opts: { isServer: boolean }) => FrameReceiver }).Receiver;

/** A masked client→server frame (RFC 6455 §5.2); `len` overrides the announced payload length. */
function frame(opcode: number, payload: Buffer | string, fin = true): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const n = p.length;
  const head = n < 126 ? 2 : n < 65_536 ? 4 : 10;
  const b = Buffer.alloc(head + 4 + n);
  b[0] = (fin ? 0x80 : 0) | opcode;
  if (n < 126) b[1] = 0x80 | n;
  else if (n < 65_536) {
    b[1] = 0x80 | 126;
    b.writeUInt16BE(n, 2);
  } else {
    b[1] = 0x80 | 127;
    b.writeBigUInt64BE(BigInt(n), 2);
  }
  const mask = [0x12, 0x34, 0x56, 0x78];
  for (let i = 0; i < 4; i++) b[head + i] = mask[i]!;
  for (let i = 0; i < n; i++) b[head + 4 + i] = p[i]! ^ mask[i & 3]!;
  return b;
}
const text = (s: string): Buffer => frame(0x1, s);
const closeFrame = (code: number, reason: string): Buffer => {
  const p = Buffer.alloc(2 + Buffer.byteLength(reason));
  p.writeUInt16BE(code, 0);
  p.write(reason, 2);
  return frame(0x8, p);
};

const until = async (cond: () => boolean, ms = 5_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 2));
  }
};
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Side {
  ws: WebSocket | undefined;
  socket: Duplex | undefined;
  installed: boolean | undefined;
  messages: string[];
  errors: string[];
  closed: { code: number; reason: string } | undefined;
}

/**
 * A ws server (as the gateway makes it: no deflate, no client tracking) on a real loopback
 * socket, with readDirect installed as the gateway does (after the listeners), and a raw TCP
 * client that writes hand-made frames and parses the server's with ws's Receiver.
 */
async function open(opts: { direct: boolean; maxPayload?: number; head?: Buffer; extensions?: string; deflate?: boolean; before?: (s: Duplex) => void }) {
  directReads.enabled = opts.direct;
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload ?? 1 << 20, perMessageDeflate: opts.deflate ?? false, clientTracking: false });
  const http: HttpServer = createHttpServer();
  const server: Side = { ws: undefined, socket: undefined, installed: undefined, messages: [], errors: [], closed: undefined };
  http.on('upgrade', (req, sock: Duplex, head: Buffer) =>
    wss.handleUpgrade(req, sock, head, (ws) => {
      server.ws = ws;
      server.socket = sock;
      ws.on('message', (d: Buffer, binary: boolean) => server.messages.push(binary ? `bin:${d.toString('hex')}` : d.toString('utf8')));
      ws.on('error', (e: Error & { code?: string }) => server.errors.push(e.code ?? e.message));
      ws.on('close', (code: number, reason: Buffer) => (server.closed = { code, reason: reason.toString() }));
      opts.before?.(sock);
      server.installed = readDirect(ws, sock);
    }),
  );
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const client: Socket = connect((http.address() as { port: number }).port, '127.0.0.1');
  client.setNoDelay(true);
  await new Promise<void>((r) => client.once('connect', r));
  const got = { texts: [] as string[], pongs: [] as string[], close: undefined as { code: number; reason: string } | undefined, ended: false };
  const receiver = new Receiver({ isServer: false });
  receiver.on('message', (d: Buffer) => got.texts.push(d.toString()));
  receiver.on('pong', (d: Buffer) => got.pongs.push(d.toString()));
  receiver.on('conclude', (code: number, reason: Buffer) => (got.close = { code, reason: reason.toString() }));
  receiver.on('error', () => {});
  let handshake = Buffer.alloc(0);
  let upgraded = false;
  client.on('data', (chunk: Buffer) => {
    if (upgraded) return void receiver.write(chunk);
    handshake = Buffer.concat([handshake, chunk]);
    const at = handshake.indexOf('\r\n\r\n');
    if (at < 0) return;
    upgraded = true;
    assert.match(handshake.subarray(0, at).toString(), /^HTTP\/1\.1 101/);
    if (handshake.length > at + 4) receiver.write(handshake.subarray(at + 4));
  });
  client.on('end', () => (got.ended = true));
  client.on('error', () => {});
  client.write(
    'GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${opts.extensions ? `Sec-WebSocket-Extensions: ${opts.extensions}\r\n` : ''}\r\n`,
  );
  if (opts.head) client.write(opts.head);
  await until(() => server.installed !== undefined && upgraded);
  const done = (): void => {
    client.destroy();
    server.socket?.destroy();
    http.close();
    wss.close();
  };
  return { server, client, got, done };
}

describe('direct reads: socket chunks straight to ws Receiver', () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanup.splice(0)) c();
    directReads.enabled = true;
  });

  it('is installed on a plain TCP socket, and not when disabled, on TLS, or with permessage-deflate', async () => {
    const a = await open({ direct: true });
    cleanup.push(a.done);
    assert.equal(a.server.installed, true, 'the stream_wrap binding and ws internals are as expected on this Node/ws');
    const b = await open({ direct: false });
    cleanup.push(b.done);
    assert.equal(b.server.installed, false);
    const c = await open({ direct: true, before: (s) => ((s as unknown as { encrypted: boolean }).encrypted = true) });
    cleanup.push(c.done);
    assert.equal(c.server.installed, false, 'TLS sockets keep the stream path');
    const d = await open({ direct: true, deflate: true, extensions: 'permessage-deflate' });
    cleanup.push(d.done);
    assert.equal(d.server.installed, false, 'a compressed connection keeps the stream path');
  });

  for (const direct of [true, false]) {
    const path = direct ? 'direct' : 'stream';

    it(`many frames in one chunk, then a frame split over chunks, in order (${path} path)`, async () => {
      const t = await open({ direct });
      cleanup.push(t.done);
      const before = directReads.chunks;
      t.client.write(Buffer.concat(Array.from({ length: 50 }, (_, i) => text(`{"n":${i}}`))));
      await until(() => t.server.messages.length === 50);
      const big = text(`{"n":50,"pad":"${'p'.repeat(70_000)}"}`);
      for (let at = 0; at < big.length; ) {
        const step = at < 12 ? 1 : 16_384; // the header byte by byte, then the payload in pieces
        t.client.write(big.subarray(at, at + step));
        at += step;
        await pause(2);
      }
      t.client.write(text('{"n":51}'));
      await until(() => t.server.messages.length === 52);
      assert.deepEqual(
        t.server.messages.map((m) => (JSON.parse(m) as { n: number }).n),
        Array.from({ length: 52 }, (_, i) => i),
      );
      assert.equal((JSON.parse(t.server.messages[50]!) as { pad: string }).pad.length, 70_000);
      if (direct) assert.ok(directReads.chunks - before >= 10, `reads taken directly: ${directReads.chunks - before}`);
      else assert.equal(directReads.chunks, before, 'no direct read on the stream path');
      assert.deepEqual(t.server.errors, []);
    });

    it(`a fragmented message with a ping between its fragments: pong first, message whole, order kept (${path} path)`, async () => {
      const t = await open({ direct });
      cleanup.push(t.done);
      t.client.write(text('first'));
      t.client.write(frame(0x1, 'he', false));
      await pause(5);
      t.client.write(frame(0x9, 'p1'));
      await pause(5);
      t.client.write(Buffer.concat([frame(0x0, 'll', false), frame(0xa, 'unsolicited'), frame(0x0, 'o', true), text('last')]));
      await until(() => t.server.messages.length === 3 && t.got.pongs.length === 1);
      assert.deepEqual(t.server.messages, ['first', 'hello', 'last']);
      assert.deepEqual(t.got.pongs, ['p1']);
      assert.deepEqual(t.server.errors, []);
    });

    it(`a frame over maxPayload: close 1009 and the same error as before, nothing after it delivered (${path} path)`, async () => {
      const t = await open({ direct, maxPayload: 1000 });
      cleanup.push(t.done);
      t.client.write(Buffer.concat([text('ok'), text('x'.repeat(1001)), text('after')]));
      await until(() => t.got.close !== undefined && t.server.closed !== undefined);
      assert.deepEqual(t.server.messages, ['ok']);
      assert.deepEqual(t.got.close, { code: 1009, reason: '' });
      assert.deepEqual(t.server.errors, ['WS_ERR_UNSUPPORTED_MESSAGE_LENGTH']);
      assert.equal(t.server.closed!.code, 1006, 'the client never answered the close');
    });

    it(`invalid UTF-8 in a text frame: close 1007 (${path} path)`, async () => {
      const t = await open({ direct });
      cleanup.push(t.done);
      t.client.write(text('ok'));
      await until(() => t.server.messages.length === 1);
      t.client.write(Buffer.concat([frame(0x1, Buffer.from([0x7b, 0xc3, 0x28, 0x7d])), text('after')]));
      await until(() => t.got.close !== undefined);
      assert.deepEqual(t.server.messages, ['ok']);
      assert.equal(t.got.close!.code, 1007);
      assert.deepEqual(t.server.errors, ['WS_ERR_INVALID_UTF8']);
    });

    it(`the client's close frame: the server closes with its code, frames after it ignored (${path} path)`, async () => {
      const t = await open({ direct });
      cleanup.push(t.done);
      t.client.write(Buffer.concat([text('one'), closeFrame(4000, 'bye'), text('ignored')]));
      await until(() => t.got.close !== undefined && t.server.closed !== undefined);
      assert.deepEqual(t.server.messages, ['one']);
      assert.deepEqual(t.server.closed, { code: 4000, reason: 'bye' });
      assert.deepEqual(t.got.close, { code: 4000, reason: 'bye' });
      assert.deepEqual(t.server.errors, []);
    });

    it(`ws.pause() holds frames, resume() delivers them in order, then reads go on (${path} path)`, async () => {
      const t = await open({ direct });
      cleanup.push(t.done);
      t.client.write(text('a'));
      await until(() => t.server.messages.length === 1);
      t.server.ws!.pause();
      for (const m of ['b', 'c', 'd']) {
        t.client.write(text(m));
        await pause(5);
      }
      await pause(30);
      assert.deepEqual(t.server.messages, ['a'], 'nothing delivered while paused');
      t.server.ws!.resume();
      await until(() => t.server.messages.length === 4);
      const before = directReads.chunks;
      t.client.write(text('e'));
      await until(() => t.server.messages.length === 5);
      assert.deepEqual(t.server.messages, ['a', 'b', 'c', 'd', 'e']);
      if (direct) assert.equal(directReads.chunks, before + 1, 'direct again once the stream is empty');
    });

    it(`a paused socket that fills its Readable (the handle stopped by Node) gives everything back in order (${path} path)`, async () => {
      const t = await open({ direct });
      cleanup.push(t.done);
      t.server.ws!.pause();
      const N = 400;
      for (let i = 0; i < N; i++) t.client.write(text(`{"n":${i},"pad":"${'q'.repeat(1000)}"}`));
      await pause(50);
      assert.equal(t.server.messages.length, 0);
      t.server.ws!.resume();
      await until(() => t.server.messages.length === N);
      assert.deepEqual(
        t.server.messages.map((m) => (JSON.parse(m) as { n: number }).n),
        Array.from({ length: N }, (_, i) => i),
      );
    });

    it(`reads stopped at the handle (Connection's stopReading) wait in the kernel, then come in order (${path} path)`, async () => {
      const t = await open({ direct });
      cleanup.push(t.done);
      t.client.write(text('a'));
      await until(() => t.server.messages.length === 1);
      const h = (t.server.socket as unknown as { _handle: { reading: boolean; readStop(): number; readStart(): number } })._handle;
      h.reading = false;
      h.readStop();
      for (const m of ['b', 'c']) {
        t.client.write(text(m));
        await pause(5);
      }
      await pause(30);
      assert.deepEqual(t.server.messages, ['a']);
      h.reading = true;
      h.readStart();
      await until(() => t.server.messages.length === 3);
      assert.deepEqual(t.server.messages, ['a', 'b', 'c']);
    });

    it(`a connection held unread (its one request slot busy) stops reading the socket: later frames wait in the kernel, then all come in order (${path} path)`, async () => {
      const t = await open({ direct });
      cleanup.push(t.done);
      const conn = new Connection(t.server.ws!, '127.0.0.1', { maxBuffered: 1 << 20, maxInflight: 1, stallMs: 60_000 }, 30_000, () => {}, t.server.socket as never);
      const started: string[] = [];
      let finish: (() => void) | undefined;
      t.server.ws!.on('message', (d: Buffer) => {
        const name = d.toString().split(':')[0]!;
        const task: ConnectionTask = { run: (done) => (started.push(name), (finish = done)) };
        conn.submit(task);
      });
      const N = 20;
      const PER = 50;
      for (let b = 0; b < N; b++) {
        t.client.write(Buffer.concat(Array.from({ length: PER }, (_, i) => text(`f${b * PER + i}:${'p'.repeat(200)}`))));
        await pause(5);
      }
      await pause(50);
      const read = t.server.messages.length;
      assert.deepEqual(started, ['f0'], 'one request runs, the rest wait');
      // Reads stop once the next frame arrives: what was read with it (one burst, and what the
      // stream layer holds on the fallback path: up to 16 KB) is all that waits in the backlog.
      assert.ok(read <= 2 * PER + 100, `frames read while held: ${read} of ${N * PER}`);
      // Let the requests go one by one: all of them, in order.
      while (started.length < N * PER) {
        const f = finish!;
        finish = undefined;
        f();
        await until(() => finish !== undefined || started.length === N * PER);
      }
      assert.deepEqual(
        started,
        Array.from({ length: N * PER }, (_, i) => `f${i}`),
      );
      finish?.();
    });

    it(`frames sent with the upgrade request (ws's head) come before later ones (${path} path)`, async () => {
      const t = await open({ direct, head: Buffer.concat([text('h1'), text('h2')]) });
      cleanup.push(t.done);
      t.client.write(text('later'));
      await until(() => t.server.messages.length === 3);
      assert.deepEqual(t.server.messages, ['h1', 'h2', 'later']);
    });

    it(`a peer reset in the middle of a frame: closed (1006), nothing thrown, the partial frame dropped (${path} path)`, async () => {
      const t = await open({ direct });
      cleanup.push(t.done);
      const f = text(`{"pad":"${'r'.repeat(5000)}"}`);
      t.client.write(Buffer.concat([text('whole'), f.subarray(0, 2000)]));
      await until(() => t.server.messages.length === 1);
      t.client.resetAndDestroy();
      await until(() => t.server.closed !== undefined);
      assert.deepEqual(t.server.messages, ['whole']);
      assert.equal(t.server.closed!.code, 1006);
    });

    it(`the peer ends its side (EOF) after its frames: all delivered, then closed (${path} path)`, async () => {
      const t = await open({ direct });
      cleanup.push(t.done);
      t.client.end(Buffer.concat([text('x'), text('y')]));
      await until(() => t.server.closed !== undefined);
      assert.deepEqual(t.server.messages, ['x', 'y']);
      assert.equal(t.server.closed!.code, 1006);
    });
  }
});
