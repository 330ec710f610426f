import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocketServer, WebSocket } from 'ws';
import type { AddressInfo } from 'node:net';
import { MagpieClient } from '../src/index.ts';

/**
 * The client over a real socket from the `ws` package (Node has no global WebSocket in
 * v20): a minimal scripted server speaks just enough protocol. Real time, short test.
 */
test('runs over the `ws` package in Node: hello, coalesced pushes, send, ping', async (t) => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  t.after(() => wss.close());
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const port = (wss.address() as AddressInfo).port;
  const frames: Record<string, unknown>[] = [];
  const msg = (inboxSeq: number, text: string, sender = 'bob', clientMsgId = `c${inboxSeq}`) => ({
    type: 'msg',
    inboxSeq,
    message: { id: `m${inboxSeq}`, conv: 'g', seq: inboxSeq, sender, kind: 'text', body: { text }, time: Date.now(), clientMsgId },
  });
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      const f = JSON.parse(String(data)) as Record<string, unknown> & { id?: number; type: string };
      frames.push(f);
      if (f.type === 'hello') {
        ws.send(JSON.stringify({ type: 'reply', id: f.id, result: { version: 1, userId: 'me', deviceId: 'd', inboxSeq: 0, ringStart: 1, sync: 'none', heartbeatMs: 40000, serverTime: Date.now(), limits: { maxFrameBytes: 65536, maxMessageBytes: 16384 } } }));
        // two pushes coalesced into one array message
        ws.send(JSON.stringify([msg(1, 'one'), msg(2, 'two')]));
      } else if (f.type === 'convs') {
        ws.send(JSON.stringify({ type: 'reply', id: f.id, result: { version: 0, entries: [], more: false } }));
      } else if (f.type === 'send') {
        const m = msg(3, 'mine', 'me', f.clientMsgId as string);
        ws.send(JSON.stringify({ type: 'reply', id: f.id, result: { message: m.message, inboxSeq: 3, duplicate: false } }));
      } else if (f.type === 'ping') {
        ws.send(Buffer.from(JSON.stringify({ type: 'pong', id: f.id, inboxSeq: 3, time: Date.now() })), { binary: false });
      }
    });
  });

  const client = new MagpieClient({
    url: `ws://127.0.0.1:${port}/ws`,
    token: 'tok',
    webSocketFactory: (url) => new WebSocket(url),
    heartbeat: { quickIntervalMs: 50 },
    sync: { ackDelayMs: 10 },
  });
  t.after(() => client.close());
  await client.connect();
  assert.equal(client.state, 'online');
  const m = await client.sendText({ conv: 'g' }, 'mine');
  const done = await client.waitForSend(m.clientMsgId);
  assert.equal(done?.state, 'sent');
  await new Promise((r) => setTimeout(r, 250));
  await client.idle();
  assert.equal(client.inboxSeq, 3);
  const view = await client.getMessages('g');
  assert.deepEqual(view.messages.map((x) => [x.seq, x.state]), [
    [1, 'received'],
    [2, 'received'],
    [3, 'sent'],
  ]);
  assert.ok(frames.filter((f) => f.type === 'ping').length >= 3, 'quick pings');
  assert.ok(frames.some((f) => f.type === 'ack' && f.inboxSeq === 3));
});
