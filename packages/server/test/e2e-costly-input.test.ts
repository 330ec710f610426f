import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, registerAndLogin, RawClient, api, type ServerProcess, type Account } from './harness.ts';

// Issue 13, "Server: input that costs too much": small inputs that made the server do a lot.

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

describe('deeply nested JSON is refused before parsing and validation', () => {
  let srv: ServerProcess;
  let a: Account;
  before(async () => {
    srv = await startServer();
    a = await registerAndLogin(srv.url);
  });
  after(async () => {
    await srv.stop();
  });

  it('a 5 000-level frame gets nesting_too_deep (was internal: the validator overflowed its stack)', async () => {
    const anon = await RawClient.open(srv.wsUrl);
    anon.send(`{"type":"hello","id":1,"versions":[1],"token":"x","inboxSeq":0,"app":${nested(5000)}}`);
    const e1 = await anon.waitFor((f) => f.type === 'error');
    assert.equal(e1.code, 'nesting_too_deep');
    anon.close();

    const { client } = await RawClient.connect(srv.wsUrl, a.token);
    client.send(`{"type":"send","id":2,"clientMsgId":"deep","to":"${a.userId}","kind":"text","body":{"text":"x","n":${nested(5000)}}}`);
    client.send(`{"type":"instruction.result","id":3,"instructionId":"i1","ok":true,"result":${nested(20_000)}}`);
    const errors = [await client.waitFor((f) => f.type === 'error'), await client.waitFor((f) => f.type === 'error' && client.frames.filter((x) => x.type === 'error').length === 2)];
    assert.deepEqual(
      client.frames.filter((f) => f.type === 'error').map((f) => f.code),
      ['nesting_too_deep', 'nesting_too_deep'],
      JSON.stringify(errors),
    );
    // Within the limit still works; the connection is still usable.
    const ok = await client.request({ type: 'convs', since: 0 });
    assert.ok(Array.isArray(ok.entries));
    assert.deepEqual(client.schemaErrors, []);
    client.close();
  });

  it('1 000 such frames from unauthenticated sockets do not block the event loop (was 18 s)', async () => {
    const frame = `{"type":"hello","id":1,"versions":[1],"token":"x","inboxSeq":0,"app":${nested(5000)}}`;
    const sockets = await Promise.all(Array.from({ length: 10 }, () => RawClient.open(srv.wsUrl)));
    const t0 = Date.now();
    for (const s of sockets) for (let i = 0; i < 100; i++) s.send(frame);
    const health = (async () => {
      const h0 = Date.now();
      const r = await api(srv.url, 'GET', '/api/health');
      assert.equal(r.status, 200);
      return Date.now() - h0;
    })();
    await Promise.all(sockets.map((s) => s.waitFor(() => s.frames.length >= 100, 20_000)));
    const elapsed = Date.now() - t0;
    const healthMs = await health;
    for (const s of sockets) {
      assert.ok(s.frames.every((f) => f.type === 'error' && f.code === 'nesting_too_deep'));
      s.close();
    }
    assert.ok(elapsed < 5000, `1 000 deep frames answered in ${elapsed} ms`);
    assert.ok(healthMs < 2000, `a request meanwhile took ${healthMs} ms`);
  });

  it('REST bodies: 400 nesting_too_deep, not 500', async () => {
    for (const [path, token] of [
      ['/api/register', undefined],
      ['/api/messages', a.token],
      ['/api/profile', a.token],
    ] as const) {
      const res = await fetch(srv.url + path, {
        method: path === '/api/profile' ? 'PATCH' : 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: `{"clientMsgId":"c","to":"${a.userId}","kind":"text","body":{"text":"x"},"extra":${nested(5000)}}`,
      });
      assert.equal(res.status, 400, path);
      assert.deepEqual(((await res.json()) as any).error.code, 'nesting_too_deep', path);
    }
  });
});

describe('per-user limits apply to REST and WebSocket alike, and to ping', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: { MAGPIE_USER_RATE: '5', MAGPIE_USER_BURST: '20', MAGPIE_PING_RATE: '2', MAGPIE_PING_BURST: '5' } });
  });
  after(async () => {
    await srv.stop();
  });

  const restSend = (from: Account, to: Account, i: number) =>
    api(srv.url, 'POST', '/api/messages', { clientMsgId: `rest${i}`, to: to.userId, kind: 'text', body: { text: `m${i}` } }, from.token);

  it('REST sends beyond the user budget get 429 rate_limited (were all accepted: 350 of 350)', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const t0 = Date.now();
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => restSend(a, b, i)));
    const refill = Math.ceil(((Date.now() - t0) / 1000) * 5);
    const ok = answers.filter((r) => r.status === 200);
    const limited = answers.filter((r) => r.status === 429);
    assert.equal(ok.length + limited.length, 60, JSON.stringify(answers.find((r) => r.status !== 200 && r.status !== 429)));
    assert.ok(ok.length <= 20 + refill, `${ok.length} accepted with a burst of 20 (+${refill} refilled)`);
    assert.ok(limited.every((r) => r.body.error.code === 'rate_limited' && r.body.error.retryAfterMs > 0));
    // Reads count too, and so does the other transport: the bucket is the user's.
    const { client } = await RawClient.connect(srv.wsUrl, a.token);
    for (let i = 0; i < 10; i++) client.send({ type: 'convs', id: 700 + i, since: 0 });
    await client.waitFor(() => client.frames.filter((f) => f.id >= 700).length === 10);
    const wsLimited = client.frames.filter((f) => f.id >= 700 && f.type === 'error' && f.code === 'rate_limited');
    assert.ok(wsLimited.length >= 5, `${wsLimited.length} of 10 frames limited right after the REST burst`);
    client.close();
    const list = await api(srv.url, 'GET', '/api/conversations?since=0', undefined, b.token);
    assert.equal(list.status, 200, 'another user is not affected');
    assert.equal(list.body.entries[0].lastSeq, ok.length, 'exactly the accepted sends are stored');
  });

  it('WebSocket frames spend the budget REST requests then lack', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const { client } = await RawClient.connect(srv.wsUrl, a.token);
    for (let i = 0; i < 30; i++) client.send({ type: 'convs', id: 500 + i, since: 0 });
    await client.waitFor(() => client.frames.filter((f) => f.id >= 500).length === 30);
    const r = await restSend(a, b, 0);
    assert.equal(r.status, 429);
    assert.equal(r.body.error.code, 'rate_limited');
    client.close();
  });

  it('ping has a limit of its own: a flood is answered rate_limited, heartbeats at a normal pace are not', async () => {
    const a = await registerAndLogin(srv.url);
    const { client } = await RawClient.connect(srv.wsUrl, a.token);
    for (let i = 0; i < 50; i++) client.send({ type: 'ping', id: 900 + i });
    await client.waitFor(() => client.frames.filter((f) => f.id >= 900).length === 50);
    const answers = client.frames.filter((f) => f.id >= 900);
    const pongs = answers.filter((f) => f.type === 'pong');
    assert.ok(pongs.length >= 5 && pongs.length <= 7, `${pongs.length} pongs for a burst of 5`);
    assert.ok(answers.filter((f) => f.type === 'error').every((f) => f.code === 'rate_limited'));
    // Pings do not spend the request budget.
    assert.ok(Array.isArray((await client.request({ type: 'convs', since: 0 })).entries));
    assert.equal(client.closeCode, undefined);
    await new Promise((r) => setTimeout(r, 600));
    client.send({ type: 'ping', id: 999 });
    const again = await client.waitFor((f) => f.id === 999);
    assert.equal(again.type, 'pong', 'a ping after the bucket refilled is answered');
    client.close();
  });
});
