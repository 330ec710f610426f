#!/usr/bin/env node
/**
 * The gateway's write path alone: server CPU per delivery of a fan-out through Connection
 * (gateway/connection.ts, compiled), to N real loopback WebSocket connections, without the
 * store, the bus or a load generator that parses frames (a child process holds raw sockets
 * and only reads). Compares two builds of connection.js on the same machine in one window:
 *
 *   node bench/fanout-flush.mjs --tree . --tree /tmp/magpie-alternate/<sha> --rounds 2
 *
 * Modes:
 *   stream   (default) open loop: every --gap-ms one shared frame (a super-group `advanced`)
 *            to all N connections, --messages in all; prints server CPU µs per delivery,
 *            socket writes per delivery (below 1 when waiting connections coalesce frames),
 *            kernel share, and how long the whole run took (the timer is late when a flush
 *            holds the event loop).
 *   single   one fan-out at a time, waiting until every connection's output is written
 *            before the next (no coalescing possible): CPU per delivery and wall time per fan-out.
 *   distinct like single, with a different frame per connection (a normal group's `msg`).
 *
 * Each --tree is a checkout whose compiled `Connection` is measured, loaded through its public
 * test entry point `@magpie/server/testing` (bench/lib/tree.mjs; commits from the one that
 * exports it on).
 *
 * Options (defaults): --tree DIR (repeatable, required) --n 5000 --messages 200
 *   --gap-ms 50 --mode stream|single|distinct --rounds 1
 */
import http from 'node:http';
import net from 'node:net';
import { fork } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { WebSocketServer } from 'ws';
import { importFromTree } from './lib/tree.mjs';

if (process.argv[2] === '--client') {
  const port = Number(process.argv[3]);
  const n = Number(process.argv[4]);
  let open = 0;
  for (let i = 0; i < n; i++) {
    const s = net.connect({ port, host: '127.0.0.1' }, () =>
      s.write(`GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`),
    );
    let upgraded = false;
    s.on('data', () => {
      if (!upgraded && (upgraded = true) && ++open === n) process.send('open');
    });
  }
  process.on('message', () => process.exit(0));
} else if (process.argv[2] === '--one') {
  await one(JSON.parse(process.argv[3]));
} else {
  const { values: o } = parseArgs({
    options: {
      tree: { type: 'string', multiple: true, default: [] },
      n: { type: 'string', default: '5000' },
      messages: { type: 'string', default: '200' },
      'gap-ms': { type: 'string', default: '50' },
      mode: { type: 'string', default: 'stream' },
      rounds: { type: 'string', default: '1' },
    },
    strict: true,
  });
  if (o.tree.length === 0) throw new Error('--tree DIR (a built checkout) is required');
  for (let r = 0; r < Number(o.rounds); r++) {
    for (const t of o.tree) {
      const spec = { tree: resolve(t), n: Number(o.n), messages: Number(o.messages), gapMs: Number(o['gap-ms']), mode: o.mode };
      // Each build in a fresh process (no JIT state or sockets shared between them).
      await new Promise((done) => fork(new URL(import.meta.url).pathname, ['--one', JSON.stringify(spec)]).on('exit', done));
    }
  }
}

async function one({ tree, n, messages, gapMs, mode }) {
  const { Connection, SharedFrame } = await importFromTree(tree, '@magpie/server/testing');
  const conns = [];
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
  const server = http.createServer();
  server.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => {
      const c = new Connection(ws, '127.0.0.1', { maxBuffered: 4 << 20, maxInflight: 16, stallMs: 10_000 }, 30_000, () => {}, socket);
      c.batching = true;
      conns.push(c);
      // Writes counted at the socket's libuv handle, where both the stream's writes and the
      // connection's direct ones (gateway/connection.ts writeDirect) arrive: the same wrapper
      // for every build.
      let writes = 0;
      const handle = socket._handle;
      for (const name of ['writeBuffer', 'writev', 'writeUtf8String', 'writeLatin1String']) {
        const write = handle[name];
        handle[name] = function (req, chunk, ...rest) {
          if (chunk.length > 0) writes++;
          return write.call(this, req, chunk, ...rest);
        };
      }
      c.writes = () => writes;
    }),
  );
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const client = fork(new URL(import.meta.url).pathname, ['--client', String(server.address().port), String(n)]);
  await new Promise((r) => client.once('message', r));
  while (conns.length < n) await new Promise((r) => setTimeout(r, 10));
  const body = 'x'.repeat(120);
  const frameText = (k) => `{"type":"advanced","conv":"g:1","seq":${k},"message":{"body":"${body}"}}`;
  const allWritten = () => {
    for (let i = conns.length - 1; i >= 0; i--) if (conns[i].outputBytes() !== 0) return false;
    return true;
  };
  const written = () => new Promise((r) => {
    const check = () => (allWritten() ? r() : setTimeout(check, 2));
    setTimeout(check, 2);
  });
  const writes = () => conns.reduce((s, c) => s + c.writes(), 0);
  const fanOut = (k) => {
    if (mode === 'distinct') {
      let i = 0;
      for (const c of conns) c.send(`{"type":"msg","inboxSeq":${k * n + i++},"message":{"body":"${body}"}}`);
    } else {
      const f = new SharedFrame(frameText(k));
      for (const c of conns) c.send(f);
    }
  };
  const label = tree.split('/').slice(-2).join('/');
  // Warm-up: 20 fan-outs, one at a time.
  for (let k = 0; k < 20; k++) {
    fanOut(k);
    await written();
  }
  const w0 = writes();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const walls = [];
  if (mode === 'stream') {
    await new Promise((r) => {
      let k = 0;
      const iv = setInterval(() => {
        fanOut(k);
        if (++k === messages) {
          clearInterval(iv);
          r();
        }
      }, gapMs);
    });
    await written();
  } else {
    for (let k = 0; k < messages; k++) {
      const t = performance.now();
      fanOut(k);
      await written();
      walls.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, gapMs));
    }
  }
  const cpu = process.cpuUsage(c0);
  const total = cpu.user + cpu.system;
  const deliveries = messages * n;
  walls.sort((a, b) => a - b);
  const q = (p) => (walls.length ? +walls[Math.min(walls.length - 1, Math.floor(p * walls.length))].toFixed(1) : undefined);
  console.log(
    JSON.stringify({
      build: label,
      mode,
      n,
      messages,
      gapMs,
      usPerDelivery: +(total / deliveries).toFixed(3),
      writesPerDelivery: +((writes() - w0) / deliveries).toFixed(3),
      kernelShare: +(cpu.system / total).toFixed(2),
      runS: +((performance.now() - t0) / 1000).toFixed(1),
      ...(walls.length ? { fanOutMsP50: q(0.5), fanOutMsP99: q(0.99) } : {}),
    }),
  );
  client.send('exit');
  process.exit(0);
}
