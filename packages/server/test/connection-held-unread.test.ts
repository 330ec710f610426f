import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { EventEmitter } from 'node:events';
import * as wsModule from 'ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { Connection, type ConnectionLimits, type ConnectionTask } from '../src/gateway/connection.ts';
import { SendBudget } from '../src/gateway/send-budget.ts';

/** ws's frame parser; @types/ws does not declare it, the package's ESM entry exports it by name. */
type FrameReceiver = EventEmitter & { write(chunk: Buffer): void };
const Receiver = (wsModule as unknown as { Receiver: new (opts: { isServer: boolean }) => FrameReceiver }).Receiver;

/** A masked client→server frame (RFC 6455 §5.2). */
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
 * socket, and a raw TCP client that writes hand-made frames and parses the server's with ws's
 * Receiver.
 */
async function open(opts: { maxPayload?: number; head?: Buffer; extensions?: string; deflate?: boolean } = {}) {
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
      server.installed = true;
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

describe('a connection held unread stops reading its socket (real loopback sockets)', () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanup.splice(0)) c();
  });

  /**
   * The client sends N bursts of PER frames while the connection's requests wait; returns how
   * many frames the server read meanwhile, then lets the requests go one by one and checks all
   * of them start, in order.
   */
  async function heldRun(limits: ConnectionLimits, budgeted: boolean, first?: () => void): Promise<number> {
    const t = await open();
    cleanup.push(t.done);
    const conn = new Connection(t.server.ws!, '127.0.0.1', limits, 30_000, () => {}, t.server.socket as never);
    const started: string[] = [];
    const pending: (() => void)[] = [];
    t.server.ws!.on('message', (d: Buffer) => {
      const name = d.toString().split(':')[0]!;
      conn.submit({ budgeted, run: (done) => (started.push(name), pending.push(done)) } satisfies ConnectionTask);
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
    first?.();
    // Let the requests go one by one: all of them start, in arrival order.
    while (started.length < N * PER || pending.length > 0) {
      const done = pending.shift();
      if (done) done();
      await until(() => pending.length > 0 || started.length === N * PER);
    }
    assert.deepEqual(
      started,
      Array.from({ length: N * PER }, (_, i) => `f${i}`),
    );
    assert.equal(t.server.messages.length, N * PER);
    assert.deepEqual(t.server.errors, []);
    return read;
  }

  // Reads stop once the next frame arrives while requests wait (stopOnNextFrame): what was read
  // with it — its burst of 50 frames — is all that may wait in the backlog. Before, Node's
  // Readable started the stopped handle again one tick later and all 1 000 frames were read.
  it('its one request slot busy: the handle stops, later frames wait in the kernel, then all come in order', async () => {
    const read = await heldRun({ maxBuffered: 1 << 20, maxInflight: 1, stallMs: 60_000 }, false);
    assert.ok(read <= 2 * 50, `frames read while held: ${read} of 1000`);
  });

  it('sends held for the node\'s send budget: the same', async () => {
    const sends = new SendBudget(1);
    const read = await heldRun({ maxBuffered: 1 << 20, maxInflight: 8, maxSendsInflight: 32, stallMs: 60_000, sends }, true);
    assert.ok(read <= 2 * 50, `frames read while held: ${read} of 1000`);
  });
});
