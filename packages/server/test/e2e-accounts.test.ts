import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, registerAndLogin, login, RawClient, api, type ServerProcess } from './harness.ts';

describe('accounts, sessions and the multi-device policy', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: { MAGPIE_DEVICES_PER_PLATFORM_CLASS: '1' } });
  });
  after(async () => {
    await srv.stop();
  });

  it('register and login; passwords are never returned; me works with the token', async () => {
    const acc = await registerAndLogin(srv.url, { username: 'carol_' + Date.now() });
    const me = await api(srv.url, 'GET', '/api/me', undefined, acc.token);
    assert.equal(me.status, 200);
    assert.deepEqual(Object.keys(me.body.user).sort(), ['id', 'nickname', 'username']);
    assert.equal(me.body.user.id, acc.userId);
  });

  it('a new login of the same platform class kicks the older device with a typed close and reason', async () => {
    const phone1 = await registerAndLogin(srv.url, { deviceId: 'iphone', platform: 'ios' });
    const { client: c1 } = await RawClient.connect(srv.wsUrl, phone1.token);
    // A desktop login is another class: no kick.
    const desk = await login(srv.url, phone1.username, 'mac', 'desktop');
    const { client: cd } = await RawClient.connect(srv.wsUrl, desk.token);
    const phone2 = await login(srv.url, phone1.username, 'android', 'android');
    const kicked = await c1.waitFor((f) => f.type === 'kicked');
    assert.equal(kicked.reason, 'new_login');
    await c1.waitClose();
    assert.equal(c1.closeCode, 4102);
    assert.equal(cd.closeCode, undefined, 'the desktop session stays');
    assert.equal((await api(srv.url, 'GET', '/api/me', undefined, phone1.token)).status, 401, 'the kicked token is revoked');
    assert.equal((await api(srv.url, 'GET', '/api/me', undefined, phone2.token)).status, 200);
    cd.close();
  });

  it('logging in again on the same device replaces its old session', async () => {
    const first = await registerAndLogin(srv.url, { deviceId: 'tab', platform: 'web' });
    const second = await login(srv.url, first.username, 'tab', 'web');
    assert.equal((await api(srv.url, 'GET', '/api/me', undefined, first.token)).status, 401);
    assert.equal((await api(srv.url, 'GET', '/api/me', undefined, second.token)).status, 200);
  });

  it('logout closes that device with 4101; logout-all revokes every session', async () => {
    const web = await registerAndLogin(srv.url, { deviceId: 'w', platform: 'web' });
    const mob = await login(srv.url, web.username, 'm', 'ios');
    const desk = await login(srv.url, web.username, 'd', 'desktop');
    const [cw, cm, cd] = await Promise.all([web, mob, desk].map(async (x) => (await RawClient.connect(srv.wsUrl, x.token)).client));
    assert.equal((await api(srv.url, 'POST', '/api/logout', undefined, web.token)).status, 200);
    const k = await cw!.waitFor((f) => f.type === 'kicked');
    assert.equal(k.reason, 'logout');
    await cw!.waitClose();
    assert.equal(cw!.closeCode, 4101);
    assert.equal(cm!.closeCode, undefined);
    const all = await api(srv.url, 'POST', '/api/logout-all', undefined, mob.token);
    assert.deepEqual(all.body, { revoked: 2 });
    await cm!.waitClose();
    await cd!.waitClose();
    assert.equal(cm!.closeCode, 4101);
    assert.equal(cd!.closeCode, 4101);
    for (const t of [mob.token, desk.token]) assert.equal((await api(srv.url, 'GET', '/api/me', undefined, t)).status, 401);
  });

  it('a connection that never says hello is closed with 4503', async () => {
    const s2 = await startServer({ env: { MAGPIE_HELLO_TIMEOUT_MS: '300' } });
    try {
      const raw = await RawClient.open(s2.wsUrl);
      const e = await raw.requestError({ type: 'sync', since: 0 });
      assert.equal(e.code, 'hello_required');
      await raw.waitClose(3000);
      assert.equal(raw.closeCode, 4503);
    } finally {
      await s2.stop();
    }
  });
});

describe('server heartbeat rule', () => {
  it('closes a connection silent for two heartbeat intervals with 4500, and keeps one that pings', async () => {
    const srv = await startServer({ env: { MAGPIE_HEARTBEAT_MS: '1000' } });
    try {
      const quiet = await registerAndLogin(srv.url);
      const chatty = await registerAndLogin(srv.url);
      const { client: q } = await RawClient.connect(srv.wsUrl, quiet.token);
      const { client: c } = await RawClient.connect(srv.wsUrl, chatty.token);
      const started = Date.now();
      const pinger = setInterval(() => c.send({ type: 'ping', interval: 1000 }), 400);
      await q.waitClose(10_000);
      clearInterval(pinger);
      assert.equal(q.closeCode, 4500);
      const silentFor = Date.now() - started;
      // Never before two intervals; the upper bound allows the sweep period and a loaded machine.
      assert.ok(silentFor >= 1900 && silentFor < 8000, `closed after ${silentFor} ms of silence (2 intervals + sweep)`);
      assert.equal(c.closeCode, undefined, 'the pinging client stays connected');
      c.close();
    } finally {
      await srv.stop();
    }
  });
});
