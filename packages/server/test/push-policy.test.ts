import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { apnsToken } from '../src/testing/apns-server.ts';
import { fcmToken } from '../src/testing/fcm-server.ts';
import { Clock, pushEnv, startFakes, stopFakes, type Fakes, type PushEnv } from './push-harness.ts';
import { quietDelayMs } from '../src/push/policy.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('push policy', () => {
  let fakes: Fakes;
  let env: PushEnv;
  before(async () => {
    fakes = await startFakes();
    env = await pushEnv({ fakes, push: { marketingPerUserPerDay: 2, collapseWindowMs: 400 } });
  });
  after(async () => {
    await env.close();
    await stopFakes(fakes);
  });

  const report = async () => (await env.api('GET', '/api/admin/push/report', undefined, env.adminToken)).body;
  const apnsFor = (token: string) => fakes.apns.received.items.filter((x) => x.token === token);

  it('pushes only to offline devices: the online one gets it live, the offline one by push', async () => {
    const a = await env.user('ann', 'a1');
    const b = await env.user('ben', 'phone', { offline: true });
    const laptop = await env.login(b.username, 'laptop', 'web');
    const tok = apnsToken();
    const sub = fakes.webpush.subscribe();
    const subId = sub.endpoint.split('/').pop()!;
    assert.equal((await env.api('PUT', '/api/push/device', { provider: 'apns', token: tok }, b.token)).status, 200);
    assert.equal((await env.api('PUT', '/api/push/device', { provider: 'webpush', subscription: sub }, laptop.token)).status, 200);
    env.presence.set(b.userId, 'laptop', true);

    await env.text(a.p, b.userId, 'phone only');
    await env.settle();
    assert.equal(apnsFor(tok).length, 1);
    assert.equal(fakes.webpush.received.count((x) => x.id === subId), 0, 'the online laptop gets no push');

    env.presence.set(b.userId, 'phone', true);
    env.presence.set(b.userId, 'laptop', false);
    await env.text(a.p, b.userId, 'laptop only');
    await env.settle();
    assert.equal(apnsFor(tok).length, 1);
    assert.equal(fakes.webpush.received.count((x) => x.id === subId), 1);

    env.presence.set(b.userId, 'laptop', true);
    const before = (await report()).stages.requested;
    await env.text(a.p, b.userId, 'both online');
    await env.settle();
    assert.equal(apnsFor(tok).length, 1);
    assert.equal(fakes.webpush.received.count((x) => x.id === subId), 1);
    assert.equal((await report()).stages.requested, before, 'nothing requested while every device is online');
  });

  it('a muted conversation gets no push (counted as dropped: muted)', async () => {
    const a = await env.user('amy', 'a1');
    const b = await env.user('bob', 'phone', { offline: true });
    const tok = apnsToken();
    await env.api('PUT', '/api/push/device', { provider: 'apns', token: tok }, b.token);
    await env.text(a.p, b.userId, 'first');
    await env.settle();
    assert.equal(apnsFor(tok).length, 1);
    const conv = apnsFor(tok)[0]!.payload.magpie.conv!;
    const before = (await report()).dropped.muted ?? 0;
    await env.messaging.updateEntry(b.p, conv, { muted: true });
    await env.text(a.p, b.userId, 'while muted');
    await env.settle();
    assert.equal(apnsFor(tok).length, 1, 'no push for a muted conversation');
    assert.equal((await report()).dropped.muted, before + 1);
  });

  it('notifications off and no device are dropped and counted', async () => {
    const a = await env.user('ari', 'a1');
    const off = await env.user('off', 'phone', { offline: true });
    const none = await env.user('none', 'phone', { offline: true });
    const tok = apnsToken();
    await env.api('PUT', '/api/push/device', { provider: 'apns', token: tok, permission: 'denied' }, off.token);
    const r0 = await report();
    await env.text(a.p, off.userId, 'you turned me off');
    await env.text(a.p, none.userId, 'you have no device');
    await env.settle();
    assert.equal(apnsFor(tok).length, 0);
    const r1 = await report();
    assert.equal((r1.dropped.notifications_off ?? 0) - (r0.dropped.notifications_off ?? 0), 1);
    assert.equal((r1.dropped.no_device ?? 0) - (r0.dropped.no_device ?? 0), 1);
    assert.equal(r1.byProvider.none.dropped.no_device >= 1, true);
    // Turning permission back on (PATCH from the app) restores pushes.
    await env.api('PATCH', '/api/push/device', { permission: 'granted' }, off.token);
    await env.text(a.p, off.userId, 'welcome back');
    await env.settle();
    assert.equal(apnsFor(tok).length, 1);
  });

  it('a user without a device is remembered (no read per message), still counted, and pushed as soon as a device is registered', async () => {
    const a = await env.user('dee', 'a1');
    const b = await env.user('dan', 'phone', { offline: true });
    const r0 = await report();
    await env.text(a.p, b.userId, 'no device yet 1');
    await env.settle();
    await env.text(a.p, b.userId, 'no device yet 2');
    await env.settle();
    assert.equal(((await report()).dropped.no_device ?? 0) - (r0.dropped.no_device ?? 0), 2, 'both counted, the second from memory');
    const tok = apnsToken();
    assert.equal((await env.api('PUT', '/api/push/device', { provider: 'apns', token: tok }, b.token)).status, 200);
    await env.text(a.p, b.userId, 'now with a device');
    await env.settle();
    assert.equal(apnsFor(tok).length, 1, 'the device registered after the user was remembered without one gets the push');
  });

  it('collapses several messages of one conversation into one notification with a count', async () => {
    const a = await env.user('cat', 'a1');
    const b = await env.user('cole', 'phone', { offline: true });
    const tok = apnsToken();
    await env.api('PUT', '/api/push/device', { provider: 'apns', token: tok }, b.token);
    await env.text(a.p, b.userId, 'm1');
    await fakes.apns.received.until(() => apnsFor(tok).length === 1);
    for (let i = 2; i <= 5; i++) await env.text(a.p, b.userId, `m${i}`);
    await fakes.apns.received.until(() => apnsFor(tok).length === 2, 3000);
    await sleep(600);
    await env.settle();
    const got = apnsFor(tok);
    assert.equal(got.length, 2, 'five messages, two notifications');
    assert.equal(got[0]!.payload.aps.alert.body, 'm1');
    assert.equal(got[1]!.payload.aps.alert.body, '[5] m5');
    assert.equal(got[1]!.payload.magpie.n, '5');
    assert.equal(got[1]!.payload.magpie.seq, '5');
    assert.equal(got[0]!.headers['apns-collapse-id'], got[1]!.headers['apns-collapse-id'], 'the second replaces the first on the device');
    assert.ok(got[1]!.at - got[0]!.at >= 350, 'the follow-up waited for the collapse window');
    const jobs = await env.push.service.history(b.userId);
    assert.equal(jobs.length, 2);
    assert.ok(((await report()).dropped.collapsed ?? 0) >= 3);
  });

  it('privacy mode hides sender and text (user setting), and speaks the device locale', async () => {
    const a = await env.user('dan', 'a1');
    const b = await env.user('dora', 'phone', { offline: true });
    const tok = apnsToken();
    await env.api('PUT', '/api/push/device', { provider: 'apns', token: tok, locale: 'en-US' }, b.token);
    const s = await env.api('PUT', '/api/push/settings', { privacy: 'hide' }, b.token);
    assert.equal(s.body.settings.privacy, 'hide');
    await env.text(a.p, b.userId, 'the secret plan');
    await fakes.apns.received.until(() => apnsFor(tok).length === 1);
    await env.text(a.p, b.userId, 'more secrets');
    await fakes.apns.received.until(() => apnsFor(tok).length === 2, 3000);
    const [first, second] = apnsFor(tok);
    assert.deepEqual(first!.payload.aps.alert, { title: 'Magpie', body: 'New message' });
    assert.deepEqual(second!.payload.aps.alert, { title: 'Magpie', body: '2 new messages' });
    for (const n of [first, second]) {
      const all = JSON.stringify(n);
      assert.ok(!all.includes('secret') && !all.includes('dan'), 'no content and no sender anywhere in the push');
    }
    assert.equal(first!.payload.magpie.uid, b.userId, 'the routing data stays');
    const stored = JSON.stringify(await env.push.service.history(b.userId));
    assert.ok(!stored.includes('secret'), 'hidden content is not even stored in the queue');

    const c = await env.user('chen', 'phone', { offline: true });
    const tok2 = apnsToken();
    await env.api('PUT', '/api/push/device', { provider: 'apns', token: tok2, locale: 'zh-CN', timeZone: 'Asia/Shanghai' }, c.token);
    await env.api('PUT', '/api/push/settings', { privacy: 'hide' }, c.token);
    await env.text(a.p, c.userId, '秘密');
    await fakes.apns.received.until(() => apnsFor(tok2).length === 1);
    assert.equal(apnsFor(tok2)[0]!.payload.aps.alert.body, '你有一条新消息');
  });

  it('marketing quota per user per day; an unmarked push counts as marketing', async () => {
    const [u] = await env.fastUsers(1, () => ({ provider: 'fcm', token: fcmToken() }));
    const send = (category?: string) => env.api('POST', '/api/admin/push/notify', { userIds: [u], title: 'Sale', body: '50% off', ...(category ? { category } : {}) }, env.adminToken);
    const r1 = await send('marketing');
    const r2 = await send(); // unmarked
    const r3 = await send('marketing');
    assert.equal(r1.body.accepted, 1);
    assert.equal(r2.body.accepted, 1);
    assert.deepEqual(r3.body, { requested: 1, accepted: 0, dropped: { quota: 1 } });
    const t = await send('transaction');
    assert.equal(t.body.accepted, 1, 'transaction pushes have no marketing quota');
    await env.settle();
    const jobs = await env.push.service.history(u!);
    assert.deepEqual(jobs.map((j) => j.category).sort(), ['marketing', 'marketing', 'transaction']);
    const sent = fakes.fcm.received.items.filter((x) => jobs.some((j) => j.id === x.message.data.pid));
    assert.equal(sent.length, 3);
    const mk = sent.find((x) => x.message.data.cat === 'marketing')!;
    assert.equal(mk.message.android.priority, 'NORMAL');
    assert.equal(mk.message.data.channel, 'magpie_marketing');
    assert.ok((await report()).byCategory.marketing.dropped.quota >= 1);
  });

  it('retry-queue handoff: pushes to the device that went away, never twice, not once read, and to a silent device on gave_up', async () => {
    const a = await env.user('hal', 'a1');
    const b = await env.user('hoa', 'phone');
    const tok = apnsToken();
    await env.api('PUT', '/api/push/device', { provider: 'apns', token: tok }, b.token);
    const latest = async () => (await env.store.inboxState(b.userId)).latest;
    await env.text(a.p, b.userId, 'h1');
    await env.settle();
    assert.equal(apnsFor(tok).length, 0, 'online: delivered live, no push');
    // The phone's socket died before it ACKed: the retry queue hands the delivery over.
    env.presence.set(b.userId, 'phone', false);
    const seq1 = await latest();
    env.push.service.handoff({ userId: b.userId, deviceId: 'phone', inboxSeq: seq1 }, 'offline');
    await fakes.apns.received.until(() => apnsFor(tok).length === 1);
    assert.equal(apnsFor(tok)[0]!.payload.aps.alert.body, 'h1');
    env.push.service.handoff({ userId: b.userId, deviceId: 'phone', inboxSeq: seq1 }, 'offline');
    await sleep(100);
    await env.settle();
    assert.equal(apnsFor(tok).length, 1, 'the same message is not pushed twice');
    // Read on another device before the handoff: no push.
    env.presence.set(b.userId, 'phone', true);
    await env.text(a.p, b.userId, 'h2');
    const seq2 = await latest();
    const conv = apnsFor(tok)[0]!.payload.magpie.conv!;
    await env.messaging.markRead(b.p, conv, 2);
    env.presence.set(b.userId, 'phone', false);
    env.push.service.handoff({ userId: b.userId, deviceId: 'phone', inboxSeq: seq2 }, 'offline');
    await sleep(100);
    await env.settle();
    assert.equal(apnsFor(tok).length, 1, 'already read: no push');
    // The device looks connected but never answered (zombie socket): gave_up pushes anyway.
    env.presence.set(b.userId, 'phone', true);
    await env.text(a.p, b.userId, 'h3');
    env.push.service.handoff({ userId: b.userId, deviceId: 'phone', inboxSeq: await latest() }, 'gave_up');
    await fakes.apns.received.until(() => apnsFor(tok).length === 2);
    assert.equal(apnsFor(tok)[1]!.payload.aps.alert.body, 'h3');
  });

  it('a user can switch a category off', async () => {
    const b = await env.user('opt', 'phone', { offline: true });
    await env.api('PUT', '/api/push/device', { provider: 'apns', token: apnsToken() }, b.token);
    await env.api('PUT', '/api/push/settings', { disabled: ['followed'] }, b.token);
    const r = await env.api('POST', '/api/admin/push/notify', { userIds: [b.userId], category: 'followed', title: 'New post', body: 'x' }, env.adminToken);
    assert.deepEqual(r.body.dropped, { category_off: 1 });
    const bad = await env.api('PUT', '/api/push/settings', { disabled: ['im'] }, b.token);
    assert.equal(bad.status, 400, 'IM is controlled by muting conversations, not switched off wholesale');
  });

  it('the admin API needs the admin token', async () => {
    assert.equal((await env.api('GET', '/api/admin/push/report')).status, 401);
    assert.equal((await env.api('GET', '/api/admin/push/report', undefined, 'wrong-token-wrong-token')).status, 401);
    assert.equal((await env.api('POST', '/api/admin/push/notify', { userIds: ['x'], title: 't', body: 'b' }, 'nope')).status, 401);
  });
});

describe('per-app marketing quota', () => {
  it('stops at the app-wide daily limit', async () => {
    const fakes = await startFakes();
    const env = await pushEnv({ fakes, push: { marketingPerUserPerDay: 5, marketingPerAppPerDay: 3 } });
    try {
      const users = await env.fastUsers(5, () => ({ provider: 'fcm', token: fcmToken() }));
      const r = await env.api('POST', '/api/admin/push/notify', { userIds: users, title: 'Sale', body: 'x' }, env.adminToken);
      assert.deepEqual(r.body, { requested: 5, accepted: 3, dropped: { quota: 2 } });
    } finally {
      await env.close();
      await stopFakes(fakes);
    }
  });
});

describe('quiet hours (device time zone, controllable clock)', () => {
  it('non-IM pushes wait for the end of the window in the device time zone; IM does not wait', async () => {
    // The latest 15:30 UTC in the past = 23:30 in Shanghai (UTC+8, no DST).
    const d = new Date();
    d.setUTCHours(15, 30, 0, 0);
    if (d.getTime() > Date.now()) d.setUTCDate(d.getUTCDate() - 1);
    const clock = new Clock(d.getTime());
    const fakes = await startFakes();
    const env = await pushEnv({ fakes, now: clock.now, push: { quietHours: { start: '22:00', end: '08:00' } } });
    try {
      assert.equal(quietDelayMs(clock.t, 'Asia/Shanghai', { start: '22:00', end: '08:00' }), 8.5 * 3600_000);
      const a = await env.user('amir', 'a1');
      const sh = await env.user('shanghai', 'phone', { offline: true });
      const ny = await env.user('newyork', 'phone', { offline: true });
      const tSh = apnsToken();
      const tNy = apnsToken();
      await env.api('PUT', '/api/push/device', { provider: 'apns', token: tSh, timeZone: 'Asia/Shanghai' }, sh.token);
      await env.api('PUT', '/api/push/device', { provider: 'apns', token: tNy, timeZone: 'America/New_York' }, ny.token);
      const r = await env.api('POST', '/api/admin/push/notify', { userIds: [sh.userId, ny.userId], category: 'transaction', title: 'Order shipped', body: '#42' }, env.adminToken);
      assert.equal(r.body.accepted, 2);
      await env.text(a.p, sh.userId, 'IM at 23:30 goes now');
      await fakes.apns.received.until((xs) => xs.some((x) => x.token === tNy) && xs.some((x) => x.token === tSh));
      await env.settle();
      const forSh = fakes.apns.received.items.filter((x) => x.token === tSh);
      assert.deepEqual(forSh.map((x) => x.payload.magpie.cat), ['im'], 'Shanghai: only the IM push during quiet hours');
      assert.equal(fakes.apns.received.items.filter((x) => x.token === tNy)[0]!.payload.magpie.cat, 'transaction', 'New York is awake');
      const waiting = (await env.push.service.history(sh.userId)).find((j) => j.category === 'transaction')!;
      assert.equal(waiting.status, 'queued');
      assert.equal(waiting.notBefore, clock.t + 8.5 * 3600_000, 'due at 08:00 Shanghai time');
      clock.advance(8.5 * 3600_000 - 60_000);
      env.push.dispatcher.kick();
      await sleep(200);
      assert.equal(fakes.apns.received.items.filter((x) => x.token === tSh).length, 1, 'still 07:59 there');
      clock.advance(60_000);
      env.push.dispatcher.kick();
      await fakes.apns.received.until((xs) => xs.filter((x) => x.token === tSh).length === 2);
      const late = fakes.apns.received.items.filter((x) => x.token === tSh)[1]!;
      assert.equal(late.payload.magpie.cat, 'transaction');
      assert.equal(late.headers['apns-priority'], '10');
      assert.equal(late.payload.aps['interruption-level'], 'time-sensitive');
    } finally {
      await env.close();
      await stopFakes(fakes);
    }
  });
});

describe('lanes', () => {
  it('a marketing burst in the bulk lane does not delay an IM push', async () => {
    const fakes = await startFakes();
    const env = await pushEnv({ fakes, push: { marketingPerUserPerDay: 10, lanes: { bulk: { concurrency: 8, ratePerSec: 200 } } } });
    try {
      const users = await env.fastUsers(400, () => ({ provider: 'fcm', token: fcmToken() }));
      const a = await env.user('boss', 'a1');
      const b = await env.user('busy', 'phone', { offline: true });
      const tok = apnsToken();
      await env.api('PUT', '/api/push/device', { provider: 'apns', token: tok }, b.token);
      const r = await env.api('POST', '/api/admin/push/notify', { userIds: users, title: 'Flash sale', body: 'now' }, env.adminToken);
      assert.equal(r.body.accepted, 400);
      await sleep(100);
      const t0 = Date.now();
      await env.text(a.p, b.userId, 'urgent');
      await fakes.apns.received.until((xs) => xs.some((x) => x.token === tok), 3000);
      const imLatency = Date.now() - t0;
      const depth = await env.pushStore.queueDepth();
      assert.ok(depth.bulk > 100, `the marketing burst is still draining (${depth.bulk} left)`);
      assert.ok(imLatency < 1000, `IM push took ${imLatency} ms during the burst`);
    } finally {
      await env.close();
      await stopFakes(fakes);
    }
  });
});
