import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket, type Server } from 'node:net';
import * as wsModule from 'ws';
import type { EventEmitter } from 'node:events';
import { Connection, directWrites, textFrame } from '../src/gateway/connection.ts';
import { fakeWs } from './connection-fakes.ts';

/** ws's frame parser; @types/ws does not declare it, the package's ESM entry exports it by name. */
type FrameReceiver = EventEmitter & { write(chunk: Buffer): void };
const Receiver = (wsModule as unknown as { Receiver: new (opts: { isServer: boolean }) => FrameReceiver }).Receiver;

/** A connected TCP pair: `server` is what a Connection writes to, `client` reads frames with ws's parser. */
async function pair(): Promise<{ server: Socket; client: Socket; texts: string[]; listener: Server }> {
  const listener = createServer();
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => listener.once('connection', r));
  const client = connect((listener.address() as { port: number }).port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', r));
  const server = await accepted;
  const texts: string[] = [];
  const receiver = new Receiver({ isServer: false });
  receiver.on('message', (data: Buffer) => texts.push(data.toString('utf8')));
  client.on('data', (chunk: Buffer) => receiver.write(chunk));
  return { server, client, texts, listener };
}

const until = async (cond: () => boolean, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

/** Count the writes that reach the socket's handle through its stream, and the handle's own writes. */
function countWrites(server: Socket): { stream: number; handle: number } {
  const n = { stream: 0, handle: 0 };
  const write = server.write.bind(server);
  server.write = ((...a: Parameters<Socket['write']>) => {
    n.stream++;
    return write(...a);
  }) as Socket['write'];
  const h = (server as unknown as { _handle: { writeBuffer: (...a: unknown[]) => number } })._handle;
  const wb = h.writeBuffer.bind(h);
  h.writeBuffer = (...a: unknown[]) => {
    n.handle++;
    return wb(...a);
  };
  return n;
}

describe('Connection: writes straight to the socket handle', () => {
  const open: (() => void)[] = [];
  afterEach(() => {
    for (const c of open.splice(0)) c();
    directWrites.enabled = true;
  });

  it('goes to the handle without the stream when the socket is idle, frames in order', async () => {
    assert.equal(directWrites.enabled, true, 'the stream_wrap binding is available on this Node');
    const { server, client, texts, listener } = await pair();
    open.push(() => (client.destroy(), server.destroy(), listener.close()));
    const n = countWrites(server);
    const conn = new Connection(fakeWs(), '127.0.0.1', { maxBuffered: 1 << 20, maxInflight: 8, stallMs: 10_000 }, 30_000, () => {}, server);
    for (let i = 0; i < 50; i++) {
      conn.send(`{"n":${i}}`);
      await new Promise((r) => setImmediate(r));
    }
    await until(() => texts.length === 50);
    assert.deepEqual(texts, Array.from({ length: 50 }, (_, i) => `{"n":${i}}`));
    assert.equal(n.stream, 0, 'no write through the stream');
    assert.equal(n.handle, 50, 'one handle write per frame');
    assert.equal(conn.outputBytes(), 0);
  });

  for (const direct of [true, false]) {
    it(`a reader that stops: output counted, bounded, then all of it in order, with a stream write in between (${direct ? 'direct' : 'stream'} path)`, async () => {
      directWrites.enabled = direct;
      const { server, client, texts, listener } = await pair();
      open.push(() => (client.destroy(), server.destroy(), listener.close()));
      client.pause(); // stop reading: the kernel's buffers fill, then the rest waits on our side
      const closes: string[] = [];
      const maxBuffered = 64 << 20;
      const conn = new Connection(fakeWs(), '127.0.0.1', { maxBuffered, maxInflight: 8, stallMs: 60_000 }, 30_000, (_c, r) => closes.push(String(r)), server);
      const big = 'x'.repeat(100_000);
      const N = 300; // 30 MB: more than the loopback buffers take, less than maxBuffered
      for (let i = 0; i < N; i++) conn.send(`{"n":${i},"pad":"${big}"}`);
      const queued = (): number => (conn as unknown as { queue: unknown[] }).queue.length;
      await until(() => queued() < N); // the first flush ran
      await new Promise((r) => setTimeout(r, 50));
      const handedOut = N - queued();
      assert.ok(handedOut < N, 'not everything was handed to the socket: the output bound held the rest back');
      assert.ok(conn.outputBytes() >= (maxBuffered / 4), `unsent output counted: ${conn.outputBytes()}`);
      // Something else writes to the same socket meanwhile (ws's pong or close frame goes through the stream).
      server.write(textFrame('{"between":true}'));
      client.resume();
      await until(() => texts.length === N + 1, 20_000);
      const order = texts.map((t) => (t.startsWith('{"between"') ? -1 : (JSON.parse(t) as { n: number }).n));
      const at = order.indexOf(-1);
      assert.equal(at, handedOut, 'the stream write lands right after what was handed out before it');
      assert.deepEqual(
        order.filter((x) => x >= 0),
        Array.from({ length: N }, (_, i) => i),
      );
      for (const t of texts) if (!t.startsWith('{"between"')) assert.equal((JSON.parse(t) as { pad: string }).pad, big, 'every frame whole');
      await until(() => conn.outputBytes() === 0);
      assert.deepEqual(closes, []);
    });
  }

  for (const direct of [true, false]) {
    it(`a request held back by unsent output starts once the client reads, with nothing left queued (${direct ? 'direct' : 'stream'} path)`, async () => {
      directWrites.enabled = direct;
      const { server, client, listener } = await pair();
      open.push(() => (client.destroy(), server.destroy(), listener.close()));
      client.pause();
      const maxBuffered = 4 << 20; // requests wait while unsent output is at or above a quarter: 1 MiB
      const conn = new Connection(fakeWs(), '127.0.0.1', { maxBuffered, maxInflight: 8, stallMs: 60_000 }, 30_000, () => {}, server);
      const queued = (): number => (conn as unknown as { queue: unknown[] }).queue.length;
      const pad = 'z'.repeat(64 * 1024);
      // Hand frames to the socket one flush at a time until the unsent bytes reach the quarter:
      // the last one was written (there was room before it), so the connection's queue is empty.
      for (let i = 0; conn.outputBytes() < maxBuffered / 4; i++) {
        assert.ok(i < 2_000, 'the kernel buffers never filled');
        conn.send(`{"n":${i},"pad":"${pad}"}`);
        await until(() => queued() === 0);
      }
      let ran = false;
      conn.submit({ run: (done) => ((ran = true), done()) });
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(ran, false, 'the request waits while the output is over the quarter');
      client.resume();
      await until(() => ran, 5_000);
      await until(() => conn.outputBytes() === 0);
    });
  }

  it('a peer gone mid-write: the socket is destroyed, nothing thrown', async () => {
    const { server, client, listener } = await pair();
    open.push(() => (server.destroy(), listener.close()));
    const errors: string[] = [];
    server.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message)); // as ws does on its sockets
    const conn = new Connection(fakeWs(), '127.0.0.1', { maxBuffered: 64 << 20, maxInflight: 8, stallMs: 60_000 }, 30_000, () => {}, server);
    client.pause();
    const big = 'y'.repeat(100_000);
    for (let i = 0; i < 100; i++) conn.send(`{"n":${i},"pad":"${big}"}`);
    await new Promise((r) => setTimeout(r, 50));
    client.resetAndDestroy();
    await until(() => server.destroyed, 5_000);
    await until(() => conn.outputBytes() === (conn as unknown as { queuedBytes: number }).queuedBytes, 5_000);
    assert.ok(errors.length > 0, 'the reset reported as the socket error');
  });
});
