/**
 * The WebSocket receive path alone: server CPU per received frame with the gateway's direct
 * reads (gateway/direct-read.ts) and with Node's stream path, alternating, in one run.
 *
 *   node --import tsx bench/ws-receive.ts [--conns 200] [--rate 20000] [--seconds 8] [--rounds 3] [--size 150]
 *
 * The server is a child process holding only what the gateway puts in front of its handler: an
 * HTTP server, ws's WebSocketServer with the gateway's options (no deflate, no client
 * tracking, maxPayload 256 KiB) and readDirect, and a 'message' listener that counts. The
 * clients (this process) send masked text frames of --size bytes, spread evenly over the
 * connections at --rate frames/s in total, one frame per write (TCP_NODELAY: mostly one frame
 * per packet and per server read, as in the open-loop bench). Reported: the server process's
 * CPU (user + system, all threads) per frame received, over the measured seconds.
 * MAGPIE_BENCH_SERVER_EXEC_ARGV: extra node flags for the server (e.g. `--cpu-prof --cpu-prof-dir DIR`).
 * `--only direct|stream`: run one of the two.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import type { Duplex } from 'node:stream';

const { values: a } = parseArgs({
  options: {
    conns: { type: 'string', default: '200' },
    rate: { type: 'string', default: '20000' },
    seconds: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    size: { type: 'string', default: '150' },
    only: { type: 'string' },
    role: { type: 'string' },
  },
});

if (a.role === 'server') {
  const { WebSocketServer } = await import('ws');
  const { readDirect } = await import('../packages/server/src/gateway/direct-read.ts');
  const wss = new WebSocketServer({ noServer: true, maxPayload: 256 * 1024, perMessageDeflate: false, clientTracking: false });
  let frames = 0;
  let direct = 0;
  const http = createServer();
  http.on('upgrade', (req, socket: Duplex, head: Buffer) =>
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', () => frames++);
      ws.on('error', () => {});
      if (readDirect(ws, socket)) direct++;
    }),
  );
  http.listen(0, '127.0.0.1', () => process.send!({ port: (http.address() as { port: number }).port }));
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'exit') process.exit(0);
    if (m.cmd === 'mark') {
      const cpu = process.cpuUsage();
      process.send!({ frames, cpuUs: cpu.user + cpu.system, direct });
    }
  });
} else {
  const conns = Number(a.conns);
  const rate = Number(a.rate);
  const seconds = Number(a.seconds);
  const size = Number(a.size);
  const payload = Buffer.from(`{"type":"send","id":1,"clientMsgId":"c","to":"u","kind":"text","body":{"text":"${'x'.repeat(Math.max(0, size - 80))}"}}`);
  const frame = Buffer.alloc(2 + 2 + 4 + payload.length);
  frame[0] = 0x81;
  let off = 2;
  if (payload.length < 126) frame[1] = 0x80 | payload.length;
  else {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(payload.length, 2);
    off = 4;
  }
  const wire = frame.subarray(0, off + 4 + payload.length);
  wire.writeUInt32BE(0x11223344, off);
  for (let i = 0; i < payload.length; i++) wire[off + 4 + i] = payload[i]! ^ wire[off + (i & 3)]!;

  const run = async (directReads: boolean): Promise<{ us: number; fps: number; direct: number }> => {
    const child: ChildProcess = fork(new URL(import.meta.url).pathname, ['--role', 'server'], {
      execArgv: ['--import', 'tsx', ...(process.env.MAGPIE_BENCH_SERVER_EXEC_ARGV ?? '').split(' ').filter(Boolean)],
      env: { ...process.env, MAGPIE_DIRECT_READS: directReads ? '1' : '0' },
    });
    const ask = <T>(msg?: object): Promise<T> =>
      new Promise((resolve) => {
        child.once('message', (m) => resolve(m as T));
        if (msg) child.send(msg);
      });
    const { port } = await ask<{ port: number }>();
    const sockets: Socket[] = [];
    for (let i = 0; i < conns; i++) {
      const s = connect(port, '127.0.0.1');
      s.setNoDelay(true);
      await new Promise<void>((r) => s.once('connect', r));
      s.write(`GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      await new Promise<void>((r) => s.once('data', () => r()));
      s.on('data', () => {});
      sockets.push(s);
    }
    // Paced in 1 ms ticks: each tick writes its share of frames, round robin over the sockets.
    let next = 0;
    let owed = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      owed += ((now - last) * rate) / 1000;
      last = now;
      for (; owed >= 1; owed--) sockets[next++ % conns]!.write(wire);
    }, 1);
    await new Promise((r) => setTimeout(r, 1000)); // warm-up
    const m0 = await ask<{ frames: number; cpuUs: number; direct: number }>({ cmd: 'mark' });
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const m1 = await ask<{ frames: number; cpuUs: number; direct: number }>({ cmd: 'mark' });
    const t1 = performance.now();
    clearInterval(timer);
    for (const s of sockets) s.destroy();
    child.send({ cmd: 'exit' });
    await new Promise((r) => child.once('exit', r));
    const frames = m1.frames - m0.frames;
    return { us: (m1.cpuUs - m0.cpuUs) / frames, fps: (frames * 1000) / (t1 - t0), direct: m1.direct };
  };

  const rows: string[] = [];
  for (let r = 0; r < Number(a.rounds); r++) {
    for (const direct of (r % 2 === 0 ? [true, false] : [false, true]).filter((d) => a.only === undefined || a.only === (d ? 'direct' : 'stream'))) {
      const res = await run(direct);
      const row = `round ${r + 1}  ${direct ? 'direct' : 'stream'}  ${res.fps.toFixed(0)} frames/s  server ${res.us.toFixed(2)} µs per frame  (direct-read connections ${res.direct}/${conns})`;
      console.log(row);
      rows.push(row);
    }
  }
}
