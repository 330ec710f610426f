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
