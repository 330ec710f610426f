import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pgUnavailable, testDatabase } from './pg-test-helpers.ts';
import { NATS_URL, natsUnavailable } from './nats-test-helpers.ts';
import { startServer, registerAndLogin, login, RawClient, api, sleep, type ServerProcess } from './harness.ts';

/**
 * Sessions across two nodes (PostgreSQL + NATS): a revocation or expiry closes every socket
 * of the session on every node, including one whose hello raced with the revocation.
 * Needs PostgreSQL and NATS; skips without them unless MAGPIE_REQUIRE_SERVICES=1.
 */
const skip = (await pgUnavailable()) ?? (await natsUnavailable());
const TTL_MS = 12_000;

describe('sessions on a cluster of two nodes (PostgreSQL + NATS)', { skip: skip ?? false }, () => {
  const db = testDatabase('magpie_sessions');
  let n1: ServerProcess;
  let n2: ServerProcess;
  const clients: RawClient[] = [];
  before(async () => {
    const url = await db.create();
    const env = { MAGPIE_STORE: url.toString(), MAGPIE_NATS: NATS_URL, MAGPIE_TOKEN_TTL_MS: String(TTL_MS), MAGPIE_DEVICES_PER_PLATFORM_CLASS: '1' };
    n1 = await startServer({ env });
    n2 = await startServer({ env });
  });
  after(async () => {
    for (const c of clients) c.close();
    assert.deepEqual(clients.flatMap((c) => c.schemaErrors), []);
    await Promise.all([n1?.stop(), n2?.stop()]);
    await db.drop();
  });
  const connect = async (node: ServerProcess, token: string) => {
    const { client } = await RawClient.connect(node.wsUrl, token);
    clients.push(client);
    return client;
  };
  const hello = (token: string, id: number) => ({ type: 'hello', id, versions: [1], token, inboxSeq: 0 });

  it('logout on node 1 closes the session’s sockets on node 2 with 4101; logout-all closes every node’s', async () => {
    const web = await registerAndLogin(n1.url, { deviceId: 'w', platform: 'web' });
    const mob = await login(n1.url, web.username, 'm', 'ios');
    const w2 = await connect(n2, web.token);
    const w2b = await connect(n2, web.token);
    const w1 = await connect(n1, web.token);
    const m1 = await connect(n1, mob.token);
    const m2 = await connect(n2, mob.token);
    assert.equal((await api(n1.url, 'POST', '/api/logout', undefined, web.token)).status, 200);
    await Promise.all([w1.waitClose(), w2.waitClose(), w2b.waitClose()]);
    for (const c of [w1, w2, w2b]) assert.equal(c.closeCode, 4101);
    assert.equal(m1.closeCode, undefined);
    assert.equal(m2.closeCode, undefined);
    assert.equal((await api(n2.url, 'POST', '/api/logout-all', undefined, mob.token)).status, 200);
    await Promise.all([m1.waitClose(), m2.waitClose()]);
    assert.equal(m1.closeCode, 4101);
    assert.equal(m2.closeCode, 4101);
  });

  it('a new login on node 1 closes the same device’s socket on node 2 with an accurate text', async () => {
    const a = await registerAndLogin(n2.url, { deviceId: 'tab', platform: 'web' });
    const old = await connect(n2, a.token);
    await login(n1.url, a.username, 'tab', 'web');
    const k = await old.waitFor((f) => f.type === 'kicked');
    assert.equal(k.message, 'signed in again on this device');
    await old.waitClose();
    assert.equal(old.closeCode, 4102);
  });

  it('regression: two hellos back to back on one socket — the second is refused; logout-all of the first closes it', async () => {
    const a = await registerAndLogin(n1.url);
    const b = await registerAndLogin(n1.url);
    const c = await RawClient.open(n2.wsUrl);
    clients.push(c);
    const socket = (c.ws as unknown as { _socket: import('node:net').Socket })._socket;
    socket.cork();
    c.send(hello(a.token, 1));
    c.send(hello(b.token, 2));
    socket.uncork();
    const first = await c.waitFor((f) => f.id === 1);
    const second = await c.waitFor((f) => f.id === 2);
    assert.equal(first.result?.userId, a.userId);
    assert.equal(second.type, 'error');
    await api(n1.url, 'POST', '/api/logout-all', undefined, a.token);
    await c.waitClose();
    assert.equal(c.closeCode, 4101);
  });

  it('a hello on node 2 racing with a logout on node 1 never leaves the socket open', async () => {
    const a = await registerAndLogin(n1.url);
    for (let i = 0; i < 12; i++) {
      const s = await login(n1.url, a.username, `race${i}`, ['ios', 'desktop', 'web'][i % 3]!);
      const c = await RawClient.open(n2.wsUrl);
      clients.push(c);
      const logout = sleep(i % 6).then(() => api(n1.url, 'POST', '/api/logout', undefined, s.token));
      c.send(hello(s.token, 1));
      await logout;
      await c.waitClose(3000);
      assert.ok(c.closeCode === 4101 || c.closeCode === 4100, `round ${i}: closed with ${c.closeCode}`);
    }
  });

  it('sockets on both nodes close with 4100 when the session expires', async () => {
    const a = await registerAndLogin(n1.url);
    const loggedIn = Date.now();
    const [c1, c2] = await Promise.all([connect(n1, a.token), connect(n2, a.token)]);
    await Promise.all([c1.waitClose(TTL_MS + 5000), c2.waitClose(TTL_MS + 5000)]);
    const took = Date.now() - loggedIn;
    for (const c of [c1, c2]) {
      assert.equal(c.closeCode, 4100);
      assert.equal(c.closeReason, 'the session expired');
    }
    assert.ok(took < TTL_MS + 1500, `closed ${took} ms after login (ttl ${TTL_MS})`);
  });
});
