import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, registerAndLogin, login, RawClient, api, sleep, type ServerProcess, type Account } from './harness.ts';

/** One value of a Prometheus text exposition, summed over label sets matching `labels`. */
async function metric(base: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!(rest.startsWith(' ') || rest.startsWith('{'))) continue;
    if (labels && !rest.includes(labels)) continue;
    sum += Number(line.split(' ').at(-1));
  }
  return sum;
}

/** Frames written inside `fn` leave in one TCP write, so the server reads them in one chunk. */
export function together(c: RawClient, fn: () => void): void {
  const socket = (c.ws as unknown as { _socket: import('node:net').Socket })._socket;
  socket.cork();
  fn();
  socket.uncork();
}

describe('sessions: one identity per connection, frames in order', () => {
  let srv: ServerProcess;
  const open: RawClient[] = [];
  before(async () => {
    srv = await startServer({ env: { MAGPIE_USER_RATE: '2000', MAGPIE_USER_BURST: '2000' } });
  });
  after(async () => {
    for (const c of open) c.close();
    assert.deepEqual(open.flatMap((c) => c.schemaErrors), []);
    await srv.stop();
  });
  const raw = async () => {
    const c = await RawClient.open(srv.wsUrl);
    open.push(c);
    return c;
  };
  const hello = (token: string, id: number) => ({ type: 'hello', id, versions: [1], token, inboxSeq: 0, caps: ['batch'] });

  it('regression: two hellos back to back — the second is refused, the socket keeps the first identity for life', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const c = await raw();
    const connsBefore = await metric(srv.url, 'magpie_connections');
    together(c, () => {
      c.send(hello(a.token, 1));
      c.send(hello(b.token, 2));
    });
    const first = await c.waitFor((f) => f.id === 1);
    const second = await c.waitFor((f) => f.id === 2);
    assert.equal(first.type, 'reply');
    assert.equal(first.result.userId, a.userId);
    assert.equal(second.type, 'error');
    assert.equal(second.code, 'invalid');
    // b's messages never reach a's socket.
    const z = await registerAndLogin(srv.url);
    const { client: cz } = await RawClient.connect(srv.wsUrl, z.token);
    open.push(cz);
    await cz.request({ type: 'send', clientMsgId: 'to-b', to: b.userId, kind: 'text', body: { text: 'for b only' } });
    await cz.request({ type: 'send', clientMsgId: 'to-a', to: a.userId, kind: 'text', body: { text: 'for a' } });
    await c.waitFor((f) => f.type === 'msg' && f.message.clientMsgId === 'to-a');
    assert.equal(c.messages().filter((m) => m.message.clientMsgId === 'to-b').length, 0);
    // After a's logout-all the socket closes, and nothing of it stays counted.
    assert.equal((await api(srv.url, 'POST', '/api/logout-all', undefined, a.token)).status, 200);
    await c.waitClose();
    assert.equal(c.closeCode, 4101);
    // The server counts the close when it handles it: poll (a loaded machine can take more than a moment).
    let conns = await metric(srv.url, 'magpie_connections');
    for (const deadline = Date.now() + 5000; conns !== connsBefore && Date.now() < deadline; conns = await metric(srv.url, 'magpie_connections')) await sleep(50);
    assert.equal(conns, connsBefore, 'the closed socket is no longer counted');
  });

  it('frames sent right after hello wait for it instead of getting hello_required', async () => {
    const a = await registerAndLogin(srv.url);
    const c = await raw();
    together(c, () => {
      c.send(hello(a.token, 1));
      c.send({ type: 'sync', id: 2, since: 0 });
      c.send({ type: 'convs', id: 3, since: 0 });
    });
    const sync = await c.waitFor((f) => f.id === 2);
    const convs = await c.waitFor((f) => f.id === 3);
    assert.equal(sync.type, 'reply', JSON.stringify(sync));
    assert.equal(convs.type, 'reply', JSON.stringify(convs));
    assert.ok(c.frames.findIndex((f) => f.id === 1) < c.frames.findIndex((f) => f.id === 2), 'the welcome comes first');
  });

  it('a read pipelined after a send sees it; pipelined sends still share group commits', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const { client: c } = await RawClient.connect(srv.wsUrl, a.token);
    open.push(c);
    const first = await c.request({ type: 'send', clientMsgId: 'm0', to: b.userId, kind: 'text', body: { text: 'zero' } });
    const conv = first.message.conv;
    together(c, () => {
      c.send({ type: 'send', id: 10, clientMsgId: 'm1', to: b.userId, kind: 'text', body: { text: 'one' } });
      c.send({ type: 'history', id: 11, conv, after: 0 });
    });
    const hist = await c.waitFor((f) => f.id === 11);
    assert.equal(hist.type, 'reply');
    assert.ok(
      hist.result.messages.some((m: any) => m.clientMsgId === 'm1'),
      `history issued after the send includes it: ${JSON.stringify(hist.result.messages.map((m: any) => m.clientMsgId))}`,
    );

    const batchesBefore = await metric(srv.url, 'magpie_commit_batch_size_count');
    const msgsBefore = await metric(srv.url, 'magpie_commit_batch_size_sum');
    const n = 200;
    for (let i = 0; i < n; i++) c.send({ type: 'send', id: 1000 + i, clientMsgId: `p${i}`, to: b.userId, kind: 'text', body: { text: `p${i}` } });
    c.send({ type: 'ack', inboxSeq: 0 });
    c.send({ type: 'ping', id: 5000 });
    await c.waitFor((f) => f.id === 5000, 15_000);
    const replies = c.frames.filter((f) => f.type === 'reply' && f.id >= 1000 && f.id < 1000 + n);
    assert.equal(replies.length, n, 'every send answered before the ping that followed them');
    const seqs = replies.sort((x, y) => x.id - y.id).map((r) => r.result.message.seq);
    assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'seqs follow the order of the frames');
    const batches = (await metric(srv.url, 'magpie_commit_batch_size_count')) - batchesBefore;
    const msgs = (await metric(srv.url, 'magpie_commit_batch_size_sum')) - msgsBefore;
    assert.equal(msgs, n);
    assert.ok(batches <= n / 4, `${n} pipelined sends went through ${batches} group commits`);
  });

  it('a hello that fails validation gets invalid with its id; the connection stays and may say hello again', async () => {
    const a = await registerAndLogin(srv.url);
    const c = await raw();
    const e = await c.requestError({ type: 'hello', versions: 'one', token: a.token, inboxSeq: 0 });
    assert.equal(e.code, 'invalid');
    const ok = await c.request(hello(a.token, 77));
    assert.equal(ok.userId, a.userId);
  });

  it('logging in again on the same device closes the old socket with 4102 and says so accurately', async () => {
    const first = await registerAndLogin(srv.url, { deviceId: 'laptop' });
    const { client: c } = await RawClient.connect(srv.wsUrl, first.token);
    open.push(c);
    await login(srv.url, first.username, 'laptop', 'web');
    const k = await c.waitFor((f) => f.type === 'kicked');
    assert.equal(k.reason, 'new_login');
    assert.equal(k.message, 'signed in again on this device');
    await c.waitClose();
    assert.equal(c.closeCode, 4102);
    assert.equal(c.closeReason, 'signed in again on this device');
  });

  it('a revocation racing with hello never leaves the socket open', async () => {
    const a = await registerAndLogin(srv.url);
    for (let i = 0; i < 12; i++) {
      const s = await login(srv.url, a.username, `race${i}`, i % 2 ? 'ios' : 'desktop');
      const c = await raw();
      c.send(hello(s.token, 1));
      await sleep(i % 4);
      await api(srv.url, 'POST', '/api/logout', undefined, s.token);
      await c.waitClose(3000);
      assert.ok(c.closeCode === 4101 || c.closeCode === 4100, `round ${i}: closed with ${c.closeCode}`);
    }
  });
});

describe('sessions: expiry and the per-user socket cap', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: { MAGPIE_TOKEN_TTL_MS: '2500', MAGPIE_MAX_SOCKETS_PER_USER: '2' } });
  });
  after(async () => {
    await srv.stop();
  });

  it('an open socket closes with 4100 when its session expires', async () => {
    const a = await registerAndLogin(srv.url);
    const started = Date.now();
    const { client: c } = await RawClient.connect(srv.wsUrl, a.token);
    await c.waitClose(6000);
    assert.equal(c.closeCode, 4100);
    assert.equal(c.closeReason, 'the session expired');
    assert.ok(Date.now() - started < 4000, `closed ${Date.now() - started} ms after connecting`);
    assert.equal((await api(srv.url, 'GET', '/api/me', undefined, a.token)).status, 401);
  });

  it('a user holds at most maxSocketsPerUser sockets; the next hello is refused with 4505', async () => {
    const a: Account = await registerAndLogin(srv.url);
    const { client: c1 } = await RawClient.connect(srv.wsUrl, a.token);
    const { client: c2 } = await RawClient.connect(srv.wsUrl, a.token);
    const c3 = await RawClient.open(srv.wsUrl);
    const e = await c3.requestError({ type: 'hello', versions: [1], token: a.token, inboxSeq: 0 });
    assert.equal(e.code, 'rate_limited');
    await c3.waitClose();
    assert.equal(c3.closeCode, 4505);
    c1.close();
    await c1.waitClose();
    await sleep(100);
    const { client: c4 } = await RawClient.connect(srv.wsUrl, a.token);
    assert.equal(c4.closeCode, undefined);
    c2.close();
    c4.close();
  });
});

describe('sessions: an expiry beyond two sweep intervals', () => {
  let srv: ServerProcess;
  before(async () => {
    // heartbeat 1 s → the gateway sweeps every 500 ms: a session 2.5 s long gets no timer at
    // hello (more than two sweeps away); the sweep arms it once the expiry is near.
    srv = await startServer({ env: { MAGPIE_TOKEN_TTL_MS: '2500', MAGPIE_HEARTBEAT_MS: '1000' } });
  });
  after(async () => {
    await srv.stop();
  });

  it('still closes the socket with 4100 at its expiry', async () => {
    const a = await registerAndLogin(srv.url);
    const loggedIn = Date.now();
    const { client: c } = await RawClient.connect(srv.wsUrl, a.token);
    // Pings keep the 1 s heartbeat satisfied until the session ends.
    const pinger = setInterval(() => c.closeCode === undefined && c.send({ type: 'ping' }), 300);
    try {
      await c.waitClose(6000);
    } finally {
      clearInterval(pinger);
    }
    const after = Date.now() - loggedIn;
    assert.equal(c.closeCode, 4100);
    assert.equal(c.closeReason, 'the session expired');
    assert.ok(after >= 2000 && after < 4000, `closed ${after} ms after login (session 2500 ms)`);
  });
});
