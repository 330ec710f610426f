import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { startServer, registerAndLogin, RawClient, api, sleep, type ServerProcess, type Account } from './harness.ts';

describe('bad input gets a typed error, stores nothing, and the process survives', () => {
  let srv: ServerProcess;
  let a: Account;
  let b: Account;
  before(async () => {
    srv = await startServer({ env: { MAGPIE_USER_RATE: '20', MAGPIE_USER_BURST: '30', MAGPIE_MAX_FRAME_BYTES: '4096', MAGPIE_MAX_MESSAGE_BYTES: '1024' } });
    a = await registerAndLogin(srv.url);
    b = await registerAndLogin(srv.url);
  });
  after(async () => {
    await srv.stop();
  });

  async function assertNothingStored(token: string): Promise<void> {
    const list = await api(srv.url, 'GET', '/api/conversations?since=0', undefined, token);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.entries, []);
  }

  it('malformed JSON, unknown type, wrong field types, oversize frame and message', async () => {
    const { client } = await RawClient.connect(srv.wsUrl, a.token);
    client.send('{"type":"send",');
    assert.equal((await client.waitFor((f) => f.type === 'error' && f.code === 'bad_frame')).code, 'bad_frame');
    client.send('[1,2,3]');
    await client.waitFor((f) => f.type === 'error' && f.code === 'bad_frame' && /object/.test(f.message));
    const unknown = await client.requestError({ type: 'teleport' });
    assert.equal(unknown.code, 'unknown_type');
    assert.equal(typeof unknown.id, 'number', 'the error answers the request id');
    const wrong = await client.requestError({ type: 'send', clientMsgId: 42, to: b.userId, kind: 'text', body: { text: 'x' } });
    assert.equal(wrong.code, 'invalid');
    assert.ok(wrong.details.some((d: any) => d.path === 'clientMsgId'));
    const badBody = await client.requestError({ type: 'send', clientMsgId: 'x', to: b.userId, kind: 'text', body: { text: 5 } });
    assert.equal(badBody.code, 'invalid');
    const badKind = await client.requestError({ type: 'send', clientMsgId: 'x', to: b.userId, kind: 'hologram', body: {} });
    assert.equal(badKind.code, 'invalid');
    const system = await client.requestError({ type: 'send', clientMsgId: 'x', to: b.userId, kind: 'system', body: { event: 'fake' } });
    assert.equal(system.code, 'forbidden');
    const big = await client.requestError({ type: 'send', clientMsgId: 'big', to: b.userId, kind: 'text', body: { text: 'x'.repeat(5000) } });
    assert.equal(big.code, 'frame_too_large');
    const bigMsg = await client.requestError({ type: 'send', clientMsgId: 'bigm', to: b.userId, kind: 'text', body: { text: 'y'.repeat(2000) } });
    assert.equal(bigMsg.code, 'message_too_large');
    const both = await client.requestError({ type: 'send', clientMsgId: 'both', to: b.userId, conv: 'd:x:y', kind: 'text', body: { text: 'x' } });
    assert.equal(both.code, 'invalid');
    assert.deepEqual(client.schemaErrors, []);
    await assertNothingStored(a.token);
    await assertNothingStored(b.token);
    // The connection is still usable after all that.
    const ok = await client.request({ type: 'convs', since: 0 });
    assert.deepEqual(ok.entries, []);
    client.close();
  });

  it('sending to a user or conversation that does not exist, or one you are not in', async () => {
    const { client } = await RawClient.connect(srv.wsUrl, a.token);
    assert.equal((await client.requestError({ type: 'send', clientMsgId: 'n1', to: 'u-nobody', kind: 'text', body: { text: 'x' } })).code, 'not_found');
    assert.equal((await client.requestError({ type: 'send', clientMsgId: 'n2', conv: 'd:nope:nope2', kind: 'text', body: { text: 'x' } })).code, 'not_found');
    assert.equal((await client.requestError({ type: 'send', clientMsgId: 'n3', to: a.userId, kind: 'text', body: { text: 'me' } })).code, 'invalid');
    assert.equal((await client.requestError({ type: 'history', conv: 'd:nope:nope2' })).code, 'not_found');
    await assertNothingStored(a.token);
    // A third user cannot write into or read A↔B.
    const c = await registerAndLogin(srv.url);
    const { client: cb } = await RawClient.connect(srv.wsUrl, b.token);
    const sent = await cb.request({ type: 'send', clientMsgId: 'ab', to: a.userId, kind: 'text', body: { text: 'private' } });
    const { client: cc } = await RawClient.connect(srv.wsUrl, c.token);
    assert.equal((await cc.requestError({ type: 'send', clientMsgId: 'intrude', conv: sent.message.conv, kind: 'text', body: { text: 'hi' } })).code, 'forbidden');
    assert.equal((await cc.requestError({ type: 'history', conv: sent.message.conv })).code, 'forbidden');
    assert.equal((await cc.requestError({ type: 'read', conv: sent.message.conv, seq: 1 })).code, 'forbidden');
    const hist = await cb.request({ type: 'history', conv: sent.message.conv });
    assert.deepEqual(hist.messages.map((m: any) => m.clientMsgId), ['ab']);
    for (const x of [client, cb, cc]) x.close();
  });

  it('frames before hello, a bad token, a revoked token and an expired-looking token', async () => {
    const raw = await RawClient.open(srv.wsUrl);
    const early = await raw.requestError({ type: 'convs', since: 0 });
    assert.equal(early.code, 'hello_required');
    raw.close();
    const bad = await RawClient.open(srv.wsUrl);
    const err = await bad.requestError({ type: 'hello', versions: [1], token: 'not-a-token', inboxSeq: 0 });
    assert.equal(err.code, 'unauthorized');
    await bad.waitClose();
    assert.equal(bad.closeCode, 4100);
    const v = await RawClient.open(srv.wsUrl);
    const ver = await v.requestError({ type: 'hello', versions: [7], token: a.token, inboxSeq: 0 });
    assert.equal(ver.code, 'unsupported_version');
    await v.waitClose();
    assert.equal(v.closeCode, 4103);
    // Revoke: a logged-out token is refused over HTTP and WebSocket.
    const tmp = await registerAndLogin(srv.url);
    assert.equal((await api(srv.url, 'POST', '/api/logout', undefined, tmp.token)).status, 200);
    const me = await api(srv.url, 'GET', '/api/me', undefined, tmp.token);
    assert.equal(me.status, 401);
    assert.equal(me.body.error.code, 'unauthorized');
    const again = await RawClient.open(srv.wsUrl);
    assert.equal((await again.requestError({ type: 'hello', versions: [1], token: tmp.token, inboxSeq: 0 })).code, 'unauthorized');
  });

  it('sending faster than the rate limit gets rate_limited with retryAfterMs, and nothing beyond the limit is stored', async () => {
    const u = await registerAndLogin(srv.url);
    const v = await registerAndLogin(srv.url);
    const { client } = await RawClient.connect(srv.wsUrl, u.token);
    for (let i = 0; i < 60; i++) client.send({ type: 'send', id: 1000 + i, clientMsgId: `r${i}`, to: v.userId, kind: 'text', body: { text: `r${i}` } });
    await client.waitFor(() => client.frames.filter((f) => f.id >= 1000).length === 60, 10_000);
    const answers = client.frames.filter((f) => f.id >= 1000);
    const limited = answers.filter((f) => f.type === 'error');
    const accepted = answers.filter((f) => f.type === 'reply');
    assert.ok(limited.length > 0, 'some sends are limited');
    assert.ok(limited.every((f) => f.code === 'rate_limited' && f.retryAfterMs > 0));
    assert.equal(client.closeCode, undefined, 'the connection is not dropped');
    const list = await client.request({ type: 'convs', since: 0 }).catch(async () => {
      await sleep(1000);
      return client.request({ type: 'convs', since: 0 });
    });
    assert.equal(list.entries[0].lastSeq, accepted.length, 'exactly the accepted sends are stored');
    client.close();
  });

  it('HTTP: invalid bodies and unknown routes get typed errors', async () => {
    const r1 = await api(srv.url, 'POST', '/api/register', { username: 'x', password: 'short' });
    assert.equal(r1.status, 400);
    assert.equal(r1.body.error.code, 'invalid');
    const r2 = await fetch(srv.url + '/api/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{nope' });
    assert.equal(r2.status, 400);
    assert.equal(((await r2.json()) as any).error.code, 'invalid');
    const r3 = await api(srv.url, 'POST', '/api/login', { username: a.username, password: 'wrong password', deviceId: 'd', platform: 'web' });
    assert.equal(r3.status, 401);
    assert.equal(r3.body.error.code, 'bad_credentials');
    const r4 = await api(srv.url, 'POST', '/api/register', { username: a.username, password: 'another password' });
    assert.equal(r4.status, 409);
    assert.equal(r4.body.error.code, 'conflict');
    const r5 = await api(srv.url, 'GET', '/api/nothing-here');
    assert.equal(r5.status, 404);
    assert.equal(r5.body.error.code, 'not_found');
  });
});

describe('fuzz: thousands of random frames at the gateway', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: { MAGPIE_USER_RATE: '100000', MAGPIE_USER_BURST: '100000', MAGPIE_MAX_ERRORS_PER_10S: '1000000' } });
  });
  after(async () => {
    await srv.stop();
  });

  const TYPES = ['hello', 'ping', 'send', 'ack', 'sync', 'history', 'convs', 'read', 'conv.update', 'x', ''];
  function randomValue(depth = 0): unknown {
    switch (randomInt(depth > 2 ? 6 : 9)) {
      case 0: return randomInt(-1e6, 1e6);
      case 1: return randomBytes(randomInt(0, 12)).toString('latin1');
      case 2: return null;
      case 3: return Math.random() < 0.5;
      case 4: return 1e308 * (Math.random() < 0.5 ? 10 : 1);
      case 5: return 'd:' + randomBytes(4).toString('hex');
      case 6: return Array.from({ length: randomInt(4) }, () => randomValue(depth + 1));
      default: return Object.fromEntries(Array.from({ length: randomInt(5) }, () => [randomBytes(3).toString('hex'), randomValue(depth + 1)]));
    }
  }
  function randomFrame(): string {
    const r = Math.random();
    if (r < 0.15) return randomBytes(randomInt(1, 200)).toString(Math.random() < 0.5 ? 'latin1' : 'base64');
    const frame: Record<string, unknown> = { type: TYPES[randomInt(TYPES.length)] };
    for (const key of ['id', 'since', 'seq', 'inboxSeq', 'conv', 'to', 'kind', 'body', 'clientMsgId', 'limit', 'before', 'after', 'token', 'versions']) {
      if (Math.random() < 0.4) frame[key] = randomValue();
    }
    return JSON.stringify(frame);
  }

  it('answers every frame, never crashes, and still serves real traffic afterwards', async () => {
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    let sent = 0;
    let { client } = await RawClient.connect(srv.wsUrl, a.token);
    const clients = [client];
    const unauth = await RawClient.open(srv.wsUrl);
    let unauthSent = 0;
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 100; i++) {
        const text = randomFrame();
        // A random `hello` may carry a bad token: that closes the connection (4100) by design.
        if (client.closeCode !== undefined) {
          ({ client } = await RawClient.connect(srv.wsUrl, a.token));
          clients.push(client);
        }
        client.send(text);
        if (unauth.closeCode === undefined) {
          unauth.send(text);
          unauthSent++;
        }
        sent++;
      }
      await sleep(5);
    }
    // Wait until the answers stop coming.
    // A final ping on the live connection: its pong comes after the junk before it was read.
    if (client.closeCode === undefined) {
      client.send({ type: 'ping', id: 2 ** 31 });
      await client.waitFor((f) => f.type === 'pong' && f.id === 2 ** 31, 60_000);
    }
    const answered = () => clients.reduce((n, c) => n + c.frames.length, 0);
    let last = -1;
    while (answered() !== last) {
      last = answered();
      await sleep(300);
    }
    assert.equal(srv.proc.exitCode, null, 'the server process is alive');
    assert.deepEqual(clients.flatMap((c) => c.schemaErrors), [], 'every server frame matches the protocol schema');
    const errors = clients.flatMap((c) => c.frames.filter((f) => f.type === 'error'));
    // Junk sent into a connection that a random bad-token `hello` just closed (4100) is lost; the rest is answered.
    assert.ok(errors.length > sent / 4, `typed errors answered the junk (${errors.length} errors for ${sent} frames over ${clients.length} connections)`);
    assert.ok(errors.every((e) => typeof e.code === 'string' && typeof e.message === 'string'));
    assert.ok(unauthSent > 0 && unauth.frames.every((f) => f.type === 'error'), 'before hello only errors come back');
    // Real traffic still works.
    const { client: ca } = await RawClient.connect(srv.wsUrl, a.token);
    const { client: cb } = await RawClient.connect(srv.wsUrl, b.token);
    const r = await ca.request({ type: 'send', clientMsgId: 'after-fuzz', to: b.userId, kind: 'text', body: { text: 'still here' } });
    assert.equal(r.message.body.text, 'still here');
    await cb.waitFor((f) => f.type === 'msg' && f.message.clientMsgId === 'after-fuzz');
    const health = await api(srv.url, 'GET', '/api/health');
    assert.equal(health.status, 200);
    for (const x of [client, unauth, ca, cb]) x.close();
  });

  it('a client that keeps sending junk is cut off with 4504', async () => {
    const s2 = await startServer({ env: { MAGPIE_MAX_ERRORS_PER_10S: '20' } });
    try {
      const u = await registerAndLogin(s2.url);
      const { client } = await RawClient.connect(s2.wsUrl, u.token);
      for (let i = 0; i < 30; i++) client.send('not json');
      await client.waitClose();
      assert.equal(client.closeCode, 4504);
      assert.equal(client.frames.filter((f) => f.code === 'bad_frame').length, 21, 'answered up to the limit, then closed');
    } finally {
      await s2.stop();
    }
  });
});

describe('server-only message kinds', () => {
  it('clients cannot post system notices or forge red-packet messages', async () => {
    const srv = await startServer();
    try {
      const a = await registerAndLogin(srv.url);
      const b = await registerAndLogin(srv.url);
      const { client } = await RawClient.connect(srv.wsUrl, a.token);
      const fake = { packetId: 'p1', split: 'random', count: 1, total: 100000, greeting: 'free money', exclusiveTo: null, expiresAt: Date.now() + 1000 };
      assert.equal((await client.requestError({ type: 'send', clientMsgId: 'rp', to: b.userId, kind: 'redpacket', body: fake })).code, 'forbidden');
      const status = { packetId: 'p1', status: 'expired', claimedCount: 0, claimedAmount: 0, refunded: 0, bestLuck: null };
      assert.equal((await client.requestError({ type: 'send', clientMsgId: 'rps', to: b.userId, kind: 'redpacket.status', body: status })).code, 'forbidden');
      const http = await api(srv.url, 'POST', '/api/messages', { clientMsgId: 'rp2', to: b.userId, kind: 'redpacket', body: fake }, a.token);
      assert.equal(http.status, 403);
      client.close();
    } finally {
      await srv.stop();
    }
  });
});
