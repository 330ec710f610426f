import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.ts';
import { createMagpieServer, type MagpieServer } from '../src/app.ts';
import { api, login, pullAll, RawClient, registerAndLogin, sleep, startServer } from './harness.ts';
import { apnsToken } from '../src/testing/apns-server.ts';
import { fcmToken } from '../src/testing/fcm-server.ts';
import { fakeProviderConfig, startFakes, stopFakes, type Fakes } from './push-harness.ts';

const ADMIN = 'push-e2e-admin-token-0123456789';

/**
 * End to end on the real server (createMagpieServer on port 0, providers pointed at the
 * local fakes): B registers devices and goes offline, A sends over WebSocket, B's devices
 * get exactly the pushes the policy says, and the messages are there when B reconnects.
 */
describe('offline push end to end (in-process server)', () => {
  let fakes: Fakes;
  let server: MagpieServer;
  let base: string;
  let wsUrl: string;
  let dataDir: string;
  before(async () => {
    fakes = await startFakes();
    dataDir = mkdtempSync(join(tmpdir(), 'magpie-push-e2e-'));
    const config = loadConfig({}, {
      host: '127.0.0.1',
      port: 0,
      dataDir,
      logLevel: 'warn',
      adminToken: ADMIN,
      limits: { userRate: 1000, userBurst: 1000, ipRate: 1000, ipBurst: 1000 },
      push: { ...fakeProviderConfig(fakes), collapseWindowMs: 500, quietHours: null },
    });
    server = await createMagpieServer(config);
    base = (await server.start()).replace('localhost', '127.0.0.1');
    wsUrl = base.replace('http', 'ws') + '/ws';
    fakes.webpush.expectedVapidKey = server.push.service.vapidPublicKey;
  });
  after(async () => {
    await server.stop();
    await stopFakes(fakes);
    rmSync(dataDir, { recursive: true, force: true });
  });

  const settle = async () => {
    await server.push.service.drained();
    await server.push.dispatcher.idle();
  };

  it('B offline, A sends: B’s phone and browser get exactly the policy’s pushes; the messages are there on reconnect', async () => {
    const a = await registerAndLogin(base, { deviceId: 'a-desk', platform: 'desktop' });
    const b = await registerAndLogin(base, { deviceId: 'b-phone', platform: 'ios' });
    const bWeb = await login(base, b.username, 'b-browser', 'web');
    const tok = apnsToken();
    const sub = fakes.webpush.subscribe();
    const subId = sub.endpoint.split('/').pop()!;
    // The web client: VAPID key → PushManager.subscribe → register the subscription.
    const key = await api(base, 'GET', '/api/push/vapid-public-key');
    assert.equal(key.body.publicKey, server.push.service.vapidPublicKey);
    assert.equal((await api(base, 'PUT', '/api/push/device', { provider: 'apns', token: tok, locale: 'en', timeZone: 'Europe/Berlin' }, b.token)).status, 200);
    assert.equal((await api(base, 'PUT', '/api/push/device', { provider: 'webpush', subscription: sub, permission: 'granted' }, bWeb.token)).status, 200);

    // B is connected on both devices, then goes offline.
    const { client: cb1 } = await RawClient.connect(wsUrl, b.token);
    const { client: cb2 } = await RawClient.connect(wsUrl, bWeb.token);
    const { client: ca } = await RawClient.connect(wsUrl, a.token);
    const live = await ca.request({ type: 'send', clientMsgId: 'live-1', to: b.userId, kind: 'text', body: { text: 'while you are here' } });
    await cb1.waitFor((f) => f.type === 'msg');
    await cb1.request({ type: 'read', conv: live.message.conv, seq: live.message.seq });
    await settle();
    assert.equal(fakes.apns.received.count((x) => x.token === tok), 0, 'online devices get no push');
    cb1.close();
    cb2.close();
    await Promise.all([cb1.waitClose(), cb2.waitClose()]);
    for (let i = 0; i < 50 && server.gateway.isOnline(b.userId); i++) await sleep(10);
    assert.equal(server.gateway.isOnline(b.userId), false);

    const sent = [];
    for (let i = 1; i <= 3; i++) sent.push(await ca.request({ type: 'send', clientMsgId: `off-${i}`, to: b.userId, kind: 'text', body: { text: `offline ${i}` } }));
    await fakes.apns.received.until((xs) => xs.filter((x) => x.token === tok).length >= 2, 4000);
    await fakes.webpush.received.until((xs) => xs.filter((x) => x.id === subId).length >= 2, 4000);
    await sleep(700);
    await settle();

    // Exactly what the policy says: the first message at once, the rest collapsed into one
    // notification whose count is the conversation's unread count.
    const phone = fakes.apns.received.items.filter((x) => x.token === tok);
    const browser = fakes.webpush.received.items.filter((x) => x.id === subId);
    for (const got of [phone.map((x) => ({ body: x.payload.aps.alert.body, n: x.payload.magpie.n, uid: x.payload.magpie.uid, conv: x.payload.magpie.conv })), browser.map((x) => ({ body: x.payload.body, n: x.payload.data.n, uid: x.payload.data.uid, conv: x.payload.data.conv }))]) {
      assert.deepEqual(
        got.map((g) => [g.body, g.n]),
        [
          ['offline 1', '1'],
          ['[3] offline 3', '3'],
        ],
      );
      for (const g of got) assert.deepEqual([g.uid, g.conv], [b.userId, live.message.conv]);
    }
    assert.equal(phone[0]!.payload.aps.alert.title, a.username);
    assert.equal(phone[0]!.headers['apns-collapse-id'], phone[1]!.headers['apns-collapse-id']);

    // The browser's service worker reports; B taps the notification on the phone.
    await api(base, 'POST', '/api/push/receipts', { receipt: browser[1]!.payload.data.r, event: 'displayed' });
    const click = await api(base, 'POST', '/api/push/click', { receipt: phone[1]!.payload.magpie.r }, b.token);
    assert.deepEqual([click.body.open, click.body.conv], [true, live.message.conv]);

    // B reconnects: the messages are there (incremental sync from the inbox).
    const { client: back, welcome } = await RawClient.connect(wsUrl, b.token, 1);
    assert.equal(welcome.sync, 'incremental');
    const pulled = await pullAll(back, 1);
    assert.deepEqual(
      pulled.items.map((i: any) => i.message.body.text),
      ['offline 1', 'offline 2', 'offline 3'],
    );
    assert.deepEqual(pulled.items.map((i: any) => i.message.id), sent.map((s) => s.message.id));

    // /metrics and the admin report show the funnel, device stage included.
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /magpie_push_funnel_total\{stage="provider_accepted",category="im",provider="apns"\} 2/);
    assert.match(metrics, /magpie_push_funnel_total\{stage="clicked",category="im",provider="apns"\} 1/);
    assert.match(metrics, /magpie_push_funnel_total\{stage="displayed",category="im",provider="webpush"\} 1/);
    assert.match(metrics, /magpie_push_dropped_total\{reason="collapsed",category="im",provider="apns"\} 1/);
    const report = (await api(base, 'GET', '/api/admin/push/report', undefined, ADMIN)).body;
    assert.deepEqual(report.byProvider.apns.stages, { requested: 3, accepted: 2, provider_accepted: 2, delivered: 1, displayed: 1, clicked: 1 });
    assert.deepEqual(report.byProvider.webpush.stages, { requested: 3, accepted: 2, provider_accepted: 2, delivered: 1, displayed: 1, clicked: 0 });
    for (const c of [ca, back]) c.close();
  });

  it('after logout no push reaches the device, and a click for another account does not open', async () => {
    const a = await registerAndLogin(base, { deviceId: 'a2', platform: 'desktop' });
    const b = await registerAndLogin(base, { deviceId: 'shared', platform: 'ios' });
    const tok = apnsToken();
    await api(base, 'PUT', '/api/push/device', { provider: 'apns', token: tok }, b.token);
    const { client: ca } = await RawClient.connect(wsUrl, a.token);
    await ca.request({ type: 'send', clientMsgId: 'x1', to: b.userId, kind: 'text', body: { text: 'hi B' } });
    const [n] = (await fakes.apns.received.until((xs) => xs.some((x) => x.token === tok))).filter((x) => x.token === tok);
    assert.equal((await api(base, 'POST', '/api/logout', undefined, b.token)).status, 200);
    // C signs in on the same phone; the old notification for B is tapped.
    const c = await registerAndLogin(base, { deviceId: 'shared', platform: 'ios' });
    const click = await api(base, 'POST', '/api/push/click', { receipt: n!.payload.magpie.r }, c.token);
    assert.deepEqual([click.body.open, click.body.reason], [false, 'account_mismatch']);
    await ca.request({ type: 'send', clientMsgId: 'x2', to: b.userId, kind: 'text', body: { text: 'are you there' } });
    await sleep(300);
    await settle();
    assert.equal(fakes.apns.log.filter(([t]) => t === tok).length, 1, 'nothing after logout');
    ca.close();
  });
});

describe('offline push end to end (server process, SIGKILL)', () => {
  it('a queued push survives a crash of the server process', async () => {
    const fakes = await startFakes();
    const dataDir = mkdtempSync(join(tmpdir(), 'magpie-push-kill-'));
    const env = {
      MAGPIE_ADMIN_TOKEN: ADMIN,
      MAGPIE_PUSH_FCM_PROJECT_ID: fakes.fcm.projectId,
      MAGPIE_PUSH_FCM_SERVICE_ACCOUNT: JSON.stringify(fakes.fcm.serviceAccount),
      MAGPIE_PUSH_FCM_ENDPOINT: fakes.fcm.url,
      MAGPIE_PUSH_QUIET_HOURS: 'off',
      MAGPIE_USER_RATE: '1000',
      MAGPIE_USER_BURST: '1000',
    };
    let srv = await startServer({ env, dataDir });
    try {
      const a = await registerAndLogin(srv.url, { deviceId: 'a', platform: 'desktop' });
      const b = await registerAndLogin(srv.url, { deviceId: 'p', platform: 'android' });
      const token = fcmToken();
      fakes.fcm.failures.set(token, 1, { code: 'UNAVAILABLE', retryAfter: 3 });
      assert.equal((await api(srv.url, 'PUT', '/api/push/device', { provider: 'fcm', token }, b.token)).status, 200);
      const { client: ca } = await RawClient.connect(srv.wsUrl, a.token);
      await ca.request({ type: 'send', clientMsgId: 'k1', to: b.userId, kind: 'text', body: { text: 'survives SIGKILL' } });
      for (let i = 0; i < 200 && !fakes.fcm.log.some(([t]) => t === token); i++) await sleep(10);
      assert.deepEqual(fakes.fcm.log.filter(([t]) => t === token).map(([, s]) => s), [503]);
      await sleep(200);
      await srv.kill('SIGKILL');
      assert.equal(fakes.fcm.received.count((x) => x.token === token), 0);
      srv = await startServer({ env, dataDir });
      const [got] = (await fakes.fcm.received.until((xs) => xs.some((x) => x.token === token), 8000)).filter((x) => x.token === token);
      assert.equal(got!.message.data.body, 'survives SIGKILL');
      assert.equal(got!.message.data.uid, b.userId);
      const user = (await api(srv.url, 'GET', `/api/admin/push/users/${b.userId}`, undefined, ADMIN)).body;
      assert.deepEqual(user.jobs[0].attemptLog.map((x: any) => [x.attempt, x.outcome, x.status]), [
        [1, 'transient', 503],
        [2, 'ok', 200],
      ]);
    } finally {
      await srv.kill('SIGTERM');
      await stopFakes(fakes);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
