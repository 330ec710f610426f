import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startServer, registerAndLogin, RawClient, sleep, type ServerProcess } from './harness.ts';
import { addressGroup } from '../src/http/connection-guard.ts';

/** A raw TCP connection to the server that records when the server closed it. */
async function tcp(url: string): Promise<{ socket: Socket; closed: Promise<number>; data: () => string }> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  let received = '';
  socket.on('data', (d) => (received += d.toString()));
  socket.on('error', () => {});
  const opened = Date.now();
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now() - opened)));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return { socket, closed, data: () => received };
}

const within = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([p, sleep(ms).then(() => assert.fail(`${what}: not within ${ms} ms`))]) as Promise<T>;

describe('connection limits at accept', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: { MAGPIE_MAX_CONNECTIONS_PER_IP: '5' } });
  });
  after(async () => {
    await srv.stop();
  });

  it('sockets that never send a byte count against the per-IP cap; the next one is dropped at accept', async () => {
    const idle = await Promise.all([1, 2, 3, 4, 5].map(() => tcp(srv.url)));
    const extra = await tcp(srv.url);
    await within(extra.closed, 2000, 'the 6th connection is closed');
    assert.equal(extra.data(), '', 'dropped without an answer');
    const http = await tcp(srv.url);
    http.socket.write('GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n');
    await within(http.closed, 2000, 'an HTTP request from the same address is refused while the cap is full');
    assert.equal(http.data(), '');
    for (const c of idle.slice(0, 2)) c.socket.destroy();
    await sleep(100);
    const ok = await fetch(`${srv.url}/api/health`, { headers: { connection: 'close' } });
    assert.equal(ok.status, 200);
    for (const c of idle) c.socket.destroy();
  });

  it('groups IPv6 clients by /64', () => {
    assert.equal(addressGroup('203.0.113.9'), '203.0.113.9');
    assert.equal(addressGroup('::ffff:203.0.113.9'), '203.0.113.9');
    assert.equal(addressGroup('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(addressGroup('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
    assert.equal(addressGroup('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(addressGroup('::1'), '0:0:0:0::/64');
  });
});

describe('HTTP timeouts', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({
      // No password-strength check: registering must finish well inside the 1.5 s request timeout on a loaded machine.
      env: { MAGPIE_IDLE_TIMEOUT_MS: '800', MAGPIE_HEADERS_TIMEOUT_MS: '1000', MAGPIE_REQUEST_TIMEOUT_MS: '1500', MAGPIE_KEEP_ALIVE_TIMEOUT_MS: '500', MAGPIE_HELLO_TIMEOUT_MS: '10000', MAGPIE_MIN_PASSWORD_SCORE: '0' },
    });
  });
  after(async () => {
    await srv.stop();
  });

  it('a connection that never sends a byte is closed after the idle timeout', async () => {
    const c = await tcp(srv.url);
    const took = await within(c.closed, 3000, 'idle socket closed');
    assert.ok(took >= 600, `closed after ${took} ms`);
  });

  it('headers trickled one byte at a time are cut off at the headers timeout', async () => {
    const c = await tcp(srv.url);
    const head = 'GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200);
    let i = 0;
    const timer = setInterval(() => {
      if (i < head.length && !c.socket.destroyed) c.socket.write(head[i++]!);
    }, 100);
    try {
      const took = await within(c.closed, 4500, 'slow headers cut off');
      assert.ok(took < 4000, `closed after ${took} ms`);
    } finally {
      clearInterval(timer);
    }
  });

  it('a body trickled one byte at a time is cut off at the request timeout', async () => {
    const c = await tcp(srv.url);
    c.socket.write('POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n');
    const timer = setInterval(() => {
      if (!c.socket.destroyed) c.socket.write(' ');
    }, 100);
    try {
      const took = await within(c.closed, 5000, 'slow body cut off');
      assert.ok(took < 4500, `closed after ${took} ms`);
    } finally {
      clearInterval(timer);
    }
  });

  it('an idle keep-alive connection closes after the keep-alive timeout', async () => {
    const c = await tcp(srv.url);
    c.socket.write('GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n');
    const took = await within(c.closed, 3000, 'keep-alive closed');
    assert.match(c.data(), /^HTTP\/1.1 200/);
    // Node keeps a keep-alive socket up to ~1 s past keepAliveTimeout (its timeout buffer).
    assert.ok(took < 2500, `closed after ${took} ms`);
  });

  it('a WebSocket is not subject to the HTTP idle timeout', async () => {
    const a = await registerAndLogin(srv.url);
    const { client } = await RawClient.connect(srv.wsUrl, a.token);
    await sleep(2000);
    assert.equal(client.closeCode, undefined);
    client.send({ type: 'ping', id: 9 });
    await client.waitFor((f) => f.type === 'pong' && f.id === 9);
    client.close();
  });
});

describe('hello timeout', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: { MAGPIE_HELLO_TIMEOUT_MS: '700', MAGPIE_MIN_PASSWORD_SCORE: '0' } });
  });
  after(async () => {
    await srv.stop();
  });

  it('each socket without hello closes with 4503 after its own timeout; a socket that said hello stays', async () => {
    const a = await registerAndLogin(srv.url);
    const silentAt = (c: RawClient, opened: number) => c.waitClose(5000).then(() => ({ code: c.closeCode, after: Date.now() - opened }));
    const firstAt = Date.now();
    const first = await RawClient.open(srv.wsUrl);
    const firstClosed = silentAt(first, firstAt);
    // Opened in the middle of the first one's wait, with a hello in between: the timer for the
    // first must neither close the greeted socket nor this later one early.
    const { client: greeted } = await RawClient.connect(srv.wsUrl, a.token);
    await sleep(350);
    const secondAt = Date.now();
    const second = await RawClient.open(srv.wsUrl);
    const secondClosed = silentAt(second, secondAt);
    const [f, s] = await Promise.all([firstClosed, secondClosed]);
    assert.equal(f.code, 4503);
    assert.equal(s.code, 4503);
    assert.ok(f.after >= 600 && s.after >= 600, `closed ${f.after} and ${s.after} ms after opening (timeout 700 ms)`);
    await sleep(200);
    assert.equal(greeted.closeCode, undefined);
    greeted.send({ type: 'ping', id: 7 });
    await greeted.waitFor((fr) => fr.type === 'pong' && fr.id === 7);
    greeted.close();
  });
});

describe('open-file limit', { skip: process.platform !== 'linux' ? 'Linux only (/proc, prlimit)' : false }, () => {
  it('a server started with a low soft limit runs with its soft limit raised to the hard limit', async () => {
    const hard = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))![1]!;
    const soft = hard === 'unlimited' ? 4096 : Math.min(1024, Number(hard));
    const main = new URL('../src/main.ts', import.meta.url).pathname;
    // prlimit execs node in place: the child's pid is the server's.
    const proc = fork(main, [], {
      execPath: '/usr/bin/prlimit',
      execArgv: [`--nofile=${soft}:${hard}`, process.execPath, '--import', 'tsx'],
      env: { ...process.env, MAGPIE_PORT: '0', MAGPIE_HOST: '127.0.0.1', MAGPIE_DATA_DIR: `/tmp/magpie-fd-${process.pid}`, MAGPIE_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    try {
      await within(new Promise<void>((resolve) => proc.on('message', (m: { ready?: string }) => m.ready && resolve())), 20_000, 'server started');
      const limits = readFileSync(`/proc/${proc.pid}/limits`, 'utf8');
      const [, s, h] = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits)!;
      assert.equal(h, hard);
      assert.ok(s === h || Number(s) > soft, `soft limit ${s} raised from ${soft} toward ${h}`);
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
  });
});
