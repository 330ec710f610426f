import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { apnsToken } from '../src/testing/apns-server.ts';
import { fcmToken } from '../src/testing/fcm-server.ts';
import { pushEnv, startFakes, stopFakes, type Fakes, type PushEnv } from './push-harness.ts';

/**
 * Each provider adapter against a local server that speaks that provider's protocol:
 * happy path, invalid/unregistered token removed at once, transient failure retried.
 */
describe('push providers against local fakes', () => {
  let fakes: Fakes;
  let env: PushEnv;
  before(async () => {
    fakes = await startFakes();
    env = await pushEnv({ fakes });
  });
  after(async () => {
    await env.close();
    await stopFakes(fakes);
  });

  async function pair(deviceBody: Record<string, unknown>, platform: 'ios' | 'android' | 'web' = 'ios') {
    const a = await env.user('alice', 'a-phone');
    const b = await env.user('bob', 'b-dev', { platform, offline: true });
    const r = await env.api('PUT', '/api/push/device', deviceBody, b.token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return { a, b };
  }

  const jobsOf = (userId: string) => env.push.service.history(userId);

  describe('APNs (HTTP/2, token auth)', () => {
    it('happy path: an offline iOS device gets the message with IM priority, thread and collapse id', async () => {
      const token = apnsToken();
      const { a, b } = await pair({ provider: 'apns', token, locale: 'en-GB', timeZone: 'Europe/London' });
      await env.text(a.p, b.userId, 'Lunch at noon?');
      await fakes.apns.received.until((xs) => xs.some((x) => x.token === token));
      await env.settle();
      const n = fakes.apns.received.items.find((x) => x.token === token)!;
      assert.equal(n.payload.aps.alert.title, 'alice');
      assert.equal(n.payload.aps.alert.body, 'Lunch at noon?');
      assert.equal(n.headers['apns-priority'], '10');
      assert.equal(n.headers['apns-push-type'], 'alert');
      assert.equal(n.headers['apns-topic'], fakes.apns.topic);
      assert.ok(n.headers['apns-collapse-id']);
      assert.equal(n.payload.aps['interruption-level'], 'active');
      assert.equal(n.payload.magpie.uid, b.userId, 'the push names the account it is for');
      assert.equal(n.payload.magpie.conv, n.payload.aps['thread-id']);
      assert.match(String(n.payload.magpie.r), /^p.+\..+/, 'a signed receipt rides along');
      const [job] = await jobsOf(b.userId);
      assert.equal(job!.status, 'sent');
      assert.deepEqual(job!.attemptLog.map((x) => [x.outcome, x.status]), [['ok', 200]]);
    });

    it('410 Unregistered: the token is removed at once and never used again', async () => {
      const token = apnsToken();
      fakes.apns.unregistered.add(token);
      const { a, b } = await pair({ provider: 'apns', token });
      await env.text(a.p, b.userId, 'one');
      await env.settle();
      assert.deepEqual(fakes.apns.log.filter(([t]) => t === token).map(([, s]) => s), [410]);
      assert.deepEqual((await env.api('GET', '/api/push/devices', undefined, b.token)).body.devices, []);
      const [job] = await jobsOf(b.userId);
      assert.equal(job!.status, 'dropped');
      assert.equal(job!.lastError, 'invalid_token');
      assert.deepEqual(job!.attemptLog.map((x) => [x.outcome, x.status, x.reason]), [['invalid_token', 410, 'Unregistered']]);
      await env.text(a.p, b.userId, 'two');
      await env.settle();
      assert.equal(fakes.apns.log.filter(([t]) => t === token).length, 1, 'no second request to a dead token');
    });

    it('400 BadDeviceToken: removed as well', async () => {
      const token = apnsToken();
      fakes.apns.badTokens.add(token);
      const { a, b } = await pair({ provider: 'apns', token });
      await env.text(a.p, b.userId, 'x');
      await env.settle();
      const [job] = await jobsOf(b.userId);
      assert.deepEqual(job!.attemptLog.map((x) => [x.outcome, x.reason]), [['invalid_token', 'BadDeviceToken']]);
      assert.equal((await env.push.service.devices(b.userId)).length, 0);
    });

    it('503 / 429 are retried with backoff until accepted; every attempt is recorded', async () => {
      const token = apnsToken();
      fakes.apns.failures.set(token, 2, { status: 503, reason: 'ServiceUnavailable' });
      const { a, b } = await pair({ provider: 'apns', token });
      await env.text(a.p, b.userId, 'retry me');
      await fakes.apns.received.until((xs) => xs.some((x) => x.token === token), 5000);
      await env.settle();
      const [job] = await jobsOf(b.userId);
      assert.equal(job!.status, 'sent');
      assert.deepEqual(job!.attemptLog.map((x) => [x.attempt, x.outcome, x.status]), [
        [1, 'transient', 503],
        [2, 'transient', 503],
        [3, 'ok', 200],
      ]);
      assert.ok(job!.attemptLog[1]!.at - job!.attemptLog[0]!.at >= 10, 'backoff between attempts');
    });
  });

  describe('FCM HTTP v1', () => {
    it('happy path: OAuth2 token from the service account, data message with high priority; the token is reused', async () => {
      const token = fcmToken();
      const before = fakes.fcm.tokenRequests;
      const { a, b } = await pair({ provider: 'fcm', token }, 'android');
      await env.text(a.p, b.userId, 'hello android');
      await env.text(a.p, b.userId, 'second', undefined);
      await fakes.fcm.received.until((xs) => xs.filter((x) => x.token === token).length >= 1);
      await env.settle();
      const n = fakes.fcm.received.items.find((x) => x.token === token)!;
      assert.equal(n.message.android.priority, 'HIGH');
      assert.equal(n.message.data.title, 'alice');
      assert.equal(n.message.data.body, 'hello android');
      assert.equal(n.message.data.uid, b.userId);
      assert.equal(n.message.data.channel, 'magpie_im');
      assert.ok(n.message.android.collapse_key);
      assert.ok(fakes.fcm.tokenRequests - before <= 1, 'one access token for many sends');
    });

    it('UNREGISTERED (404): token removed', async () => {
      const token = fcmToken();
      fakes.fcm.unregistered.add(token);
      const { a, b } = await pair({ provider: 'fcm', token }, 'android');
      await env.text(a.p, b.userId, 'gone?');
      await env.settle();
      const [job] = await jobsOf(b.userId);
      assert.deepEqual(job!.attemptLog.map((x) => [x.outcome, x.status, x.reason]), [['invalid_token', 404, 'UNREGISTERED']]);
      assert.equal((await env.push.service.devices(b.userId)).length, 0);
    });

    it('INVALID_ARGUMENT on message.token: token removed (not a payload error)', async () => {
      const token = fcmToken();
      fakes.fcm.invalid.add(token);
      const { a, b } = await pair({ provider: 'fcm', token }, 'android');
      await env.text(a.p, b.userId, 'bad token');
      await env.settle();
      const [job] = await jobsOf(b.userId);
      assert.deepEqual(job!.attemptLog.map((x) => [x.outcome, x.status, x.reason]), [['invalid_token', 400, 'INVALID_ARGUMENT']]);
      assert.equal((await env.push.service.devices(b.userId)).length, 0);
    });

    it('UNAVAILABLE (503) with Retry-After: retried no sooner than the server asked', async () => {
      const token = fcmToken();
      fakes.fcm.failures.set(token, 1, { code: 'UNAVAILABLE', retryAfter: 1 });
      const { a, b } = await pair({ provider: 'fcm', token }, 'android');
      await env.text(a.p, b.userId, 'later');
      await fakes.fcm.received.until((xs) => xs.some((x) => x.token === token), 5000);
      await env.settle();
      const [job] = await jobsOf(b.userId);
      assert.deepEqual(job!.attemptLog.map((x) => [x.outcome, x.status, x.reason]), [
        ['transient', 503, 'UNAVAILABLE'],
        ['ok', 200, null],
      ]);
      assert.ok(job!.attemptLog[1]!.at - job!.attemptLog[0]!.at >= 990, 'Retry-After: 1 honoured');
    });

    it('an expired access token (401) is refreshed and the send goes through', async () => {
      const token = fcmToken();
      const { a, b } = await pair({ provider: 'fcm', token }, 'android');
      fakes.fcm.revokeAccessTokens();
      const before = fakes.fcm.tokenRequests;
      await env.text(a.p, b.userId, 'after refresh');
      await fakes.fcm.received.until((xs) => xs.some((x) => x.token === token));
      await env.settle();
      assert.equal(fakes.fcm.tokenRequests, before + 1);
      const [job] = await jobsOf(b.userId);
      assert.equal(job!.status, 'sent');
    });
  });

  describe('Web Push (VAPID, RFC 8291)', () => {
    it('serves the VAPID public key; the push service verifies our JWT and the browser decrypts the payload', async () => {
      const key = (await env.api('GET', '/api/push/vapid-public-key')).body.publicKey;
      assert.equal(key, env.push.service.vapidPublicKey);
      assert.equal(Buffer.from(String(key), 'base64url').length, 65);
      const cfg = (await env.api('GET', '/api/push/config')).body;
      assert.deepEqual(cfg.providers.sort(), ['apns', 'fcm', 'webhook', 'webpush']);
      const sub = fakes.webpush.subscribe();
      const { a, b } = await pair({ provider: 'webpush', subscription: sub, permission: 'granted' }, 'web');
      await env.text(a.p, b.userId, 'to the browser');
      const id = sub.endpoint.split('/').pop()!;
      await fakes.webpush.received.until((xs) => xs.some((x) => x.id === id));
      await env.settle();
      const n = fakes.webpush.received.items.find((x) => x.id === id)!;
      assert.equal(n.payload.title, 'alice');
      assert.equal(n.payload.body, 'to the browser');
      assert.equal(n.payload.data.uid, b.userId);
      assert.equal(n.payload.category, 'im');
      assert.equal(n.headers.urgency, 'high');
      assert.ok(n.headers.topic, 'collapse via Topic');
      assert.equal(n.vapid.k, key);
      assert.equal(n.vapid.sub, 'mailto:ops@magpie.test');
      assert.deepEqual(fakes.webpush.errors, []);
    });

    it('410 from the push service (unsubscribed): subscription removed', async () => {
      const sub = fakes.webpush.subscribe();
      const { a, b } = await pair({ provider: 'webpush', subscription: sub }, 'web');
      fakes.webpush.unsubscribe(sub.endpoint);
      await env.text(a.p, b.userId, 'anyone?');
      await env.settle();
      const [job] = await jobsOf(b.userId);
      assert.deepEqual(job!.attemptLog.map((x) => [x.outcome, x.status]), [['invalid_token', 410]]);
      assert.equal((await env.push.service.devices(b.userId)).length, 0);
    });

    it('429 with Retry-After: retried', async () => {
      const sub = fakes.webpush.subscribe();
      const id = sub.endpoint.split('/').pop()!;
      fakes.webpush.failures.set(id, 1, { status: 429, retryAfter: 0 });
      const { a, b } = await pair({ provider: 'webpush', subscription: sub }, 'web');
      await env.text(a.p, b.userId, 'throttled');
      await fakes.webpush.received.until((xs) => xs.some((x) => x.id === id));
      await env.settle();
      const [job] = await jobsOf(b.userId);
      assert.deepEqual(job!.attemptLog.map((x) => [x.outcome, x.status]), [
        ['transient', 429],
        ['ok', 201],
      ]);
    });

    it('refuses subscriptions that point anywhere but an allowed push service (no SSRF)', async () => {
      const b = await env.user('mallory', 'm-web', { platform: 'web' });
      const sub = fakes.webpush.subscribe();
      for (const endpoint of ['http://10.0.0.1/push/x', 'https://internal.example/push', 'file:///etc/passwd']) {
        const r = await env.api('PUT', '/api/push/device', { provider: 'webpush', subscription: { ...sub, endpoint } }, b.token);
        assert.equal(r.status, 400, endpoint);
        assert.equal(r.body.error.code, 'invalid');
      }
      const bad = await env.api('PUT', '/api/push/device', { provider: 'webpush', subscription: { ...sub, keys: { p256dh: 'AAAA', auth: 'AAAA' } } }, b.token);
      assert.equal(bad.status, 400);
    });
  });

  describe('generic webhook (phone-maker channels)', () => {
    it('signed JSON with the vendor fields of the category; a dead vendor token is removed', async () => {
      const { a, b } = await pair({ provider: 'webhook', vendor: 'huawei', token: 'hw-token-1' }, 'android');
      await env.text(a.p, b.userId, 'via relay');
      await fakes.webhook.received.until((xs) => xs.some((x) => x.body.token === 'hw-token-1'));
      await env.settle();
      const n = fakes.webhook.received.items.find((x) => x.body.token === 'hw-token-1')!;
      assert.equal(fakes.webhook.badSignatures, 0);
      assert.equal(n.body.vendor, 'huawei');
      assert.deepEqual(n.body.vendorFields, { importance: 'NORMAL', category: 'IM' });
      assert.equal(n.body.notification.body, 'via relay');
      assert.equal(n.body.data.uid, b.userId);

      const c = await pair({ provider: 'webhook', vendor: 'vivo', token: 'vivo-dead' }, 'android');
      fakes.webhook.dead.add('vivo-dead');
      await env.text(c.a.p, c.b.userId, 'x');
      await env.settle();
      assert.equal((await env.push.service.devices(c.b.userId)).length, 0);
    });
  });

  it('registration is validated per provider and unknown providers are refused', async () => {
    const b = await env.user('val', 'v1');
    const cases: [Record<string, unknown>, number][] = [
      [{ provider: 'apns', token: 'not-hex' }, 400],
      [{ provider: 'fcm' }, 400],
      [{ provider: 'webhook', token: 'x' }, 400],
      [{ provider: 'carrier-pigeon', token: 'x' }, 400],
      [{ provider: 'apns', token: apnsToken(), timeZone: 'Mars/Olympus' }, 400],
      [{ provider: 'apns', token: apnsToken(), timeZone: 'Asia/Shanghai', locale: 'zh-CN', appVersion: '2.1.0', permission: 'granted' }, 200],
    ];
    for (const [body, status] of cases) assert.equal((await env.api('PUT', '/api/push/device', body, b.token)).status, status, JSON.stringify(body));
    assert.equal((await env.api('PUT', '/api/push/device', { provider: 'apns', token: apnsToken() })).status, 401, 'needs a session');
    const list = (await env.api('GET', '/api/push/devices', undefined, b.token)).body.devices;
    assert.equal(list.length, 1);
    assert.equal(list[0].timeZone, 'Asia/Shanghai');
    assert.equal(list[0].locale, 'zh-CN');
    assert.equal(list[0].platform, 'ios');
    assert.match(list[0].token, /^…/, 'the token itself is never shown');
    const patched = await env.api('PATCH', '/api/push/device', { permission: 'denied' }, b.token);
    assert.equal(patched.body.device.permission, 'denied');
  });
});
