import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NotificationPageSchema, serviceAdminRoutes } from '@magpie/protocol';
import { startServer, registerAndLogin, api, RawClient, pullAll, sleep, type ServerProcess, type Account } from './harness.ts';
import { FakeWebPush } from '../src/testing/webpush-server.ts';

const ADMIN = 'admin-token-notifications-0123456789';
const CAPACITY = 20;

export type NotificationsEnv = () => Promise<{ env: Record<string, string>; cleanup(): Promise<void> }>;

/** Every notification page of a user from `cursor` on (validated against the protocol schema). */
export async function syncAll(url: string, token: string, cursor?: string): Promise<{ items: any[]; cursor: string; wrapped: boolean }> {
  const items: any[] = [];
  let wrapped = false;
  for (;;) {
    const r = await api(url, 'GET', `/api/notifications?limit=50${cursor ? `&cursor=${cursor}` : ''}`, undefined, token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    NotificationPageSchema.parse(r.body);
    items.push(...r.body.notifications);
    wrapped ||= r.body.wrapped;
    cursor = r.body.cursor;
    if (!r.body.more) return { items, cursor: cursor!, wrapped };
  }
}

/**
 * Service accounts and notification conversations end to end against the real server process:
 * audiences, ring separation from chat, mute/unsubscribe, schedules, pushes (marketing category
 * and quota) and retention.
 */
export function runNotificationsE2E(name: string, envOf: NotificationsEnv): void {
  describe(`notifications end to end: ${name}`, () => {
    let srv: ServerProcess;
    let env: Record<string, string>;
    let cleanup: () => Promise<void>;
    let webpush: FakeWebPush;
    let a: Account;
    let b: Account;
    let c: Account;
    let svc: any;
    const dataDir = mkdtempSync(join(tmpdir(), 'magpie-notif-'));
    const admin = (method: string, path: string, body?: unknown) => api(srv.url, method, path, body, ADMIN);
    const broadcast = async (service: string, body: unknown) => {
      const r = await admin('POST', `/api/admin/services/${service}/broadcasts`, body);
      assert.equal(r.status, 201, JSON.stringify(r.body));
      serviceAdminRoutes.broadcast.reply[201].parse(r.body);
      return r.body.broadcast;
    };

    before(async () => {
      const e = await envOf();
      env = e.env;
      cleanup = e.cleanup;
      webpush = await new FakeWebPush().start();
      srv = await startServer({
        dataDir,
        env: {
          ...env,
          MAGPIE_ADMIN_TOKEN: ADMIN,
          MAGPIE_SERVICES_CAPACITY: String(CAPACITY),
          MAGPIE_SERVICES_SCHEDULE_POLL_MS: '100',
          MAGPIE_PUSH_MARKETING_PER_USER_PER_DAY: '2',
          MAGPIE_PUSH_QUIET_HOURS: 'off',
          MAGPIE_PUSH_WEBPUSH_ALLOW_INSECURE: '1',
          MAGPIE_PUSH_WEBPUSH_ALLOWED_HOSTS: '127.0.0.1',
          MAGPIE_USER_RATE: '1000',
          MAGPIE_USER_BURST: '1000',
          MAGPIE_IP_RATE: '5000',
          MAGPIE_IP_BURST: '5000',
        },
      });
      [a, b, c] = await Promise.all([registerAndLogin(srv.url), registerAndLogin(srv.url), registerAndLogin(srv.url)]);
    });
    after(async () => {
      await srv?.stop();
      await webpush?.stop();
      rmSync(dataDir, { recursive: true, force: true });
      await cleanup?.();
    });

    it('the operator creates service accounts (svc_ ids); users and anonymous callers cannot', async () => {
      assert.equal((await api(srv.url, 'POST', '/api/admin/services', { name: 'Deals' }, a.token)).status, 401);
      const r = await admin('POST', '/api/admin/services', { name: 'Deals', avatar: 'https://example.com/deals.png', marketing: true });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      svc = r.body.service;
      assert.match(svc.id, /^svc_/);
      assert.deepEqual([svc.name, svc.marketing, svc.lastSeq], ['Deals', true, 0]);
      assert.equal((await admin('POST', '/api/admin/services', { name: '' })).status, 400);
      const renamed = await admin('PATCH', `/api/admin/services/${svc.id}`, { description: 'Weekly deals' });
      assert.equal(renamed.body.service.description, 'Weekly deals');
      assert.ok((await admin('GET', '/api/admin/services')).body.services.some((s: any) => s.id === svc.id));
      assert.equal((await admin('POST', '/api/admin/services/svc_nope0000/broadcasts', { audience: { kind: 'all' }, title: 'x' })).status, 404);
      const listed = await api(srv.url, 'GET', '/api/notifications/services', undefined, a.token);
      assert.ok(listed.body.services.some((s: any) => s.id === svc.id && s.unread === 0 && !s.muted));
    });

    it('audiences: all (live frame to every online user), a list, a segment by attributes', async () => {
      const ca = (await RawClient.connect(srv.wsUrl, a.token)).client;
      const cb = (await RawClient.connect(srv.wsUrl, b.token)).client;
      try {
        const all = await broadcast(svc.id, { audience: { kind: 'all' }, title: 'Hello everyone', body: 'Big sale', data: { link: '/sale' } });
        assert.equal(all.recipients, 0, 'audience all is stored once, not per user');
        for (const cl of [ca, cb]) {
          const f = await cl.waitFor((x) => x.type === 'notification' && x.notification.id === all.id);
          assert.deepEqual([f.notification.audience, f.notification.feedSeq, f.notification.slot, f.notification.data.link], ['all', 1, null, '/sale']);
        }
        const list = await broadcast(svc.id, { audience: { kind: 'list', userIds: [a.userId, 'no-such-user'] }, title: 'Just for you' });
        assert.equal(list.recipients, 1, 'unknown ids are skipped');
        const fl = await ca.waitFor((x) => x.type === 'notification' && x.notification.id === list.id);
        assert.equal(fl.notification.slot, 1);
        // Segment: users with plan=gold and city in (berlin, paris).
        assert.equal((await admin('PATCH', `/api/admin/users/${b.userId}/attributes`, { attributes: { plan: 'gold', city: 'paris' } })).status, 200);
        await admin('PATCH', `/api/admin/users/${c.userId}/attributes`, { attributes: { plan: 'gold', city: 'rome' } });
        await admin('PATCH', `/api/admin/users/${a.userId}/attributes`, { attributes: { plan: 'free', city: 'paris' } });
        assert.deepEqual((await admin('GET', `/api/admin/users/${b.userId}/attributes`)).body.attributes, { city: 'paris', plan: 'gold' });
        assert.equal((await admin('PATCH', `/api/admin/users/nobody/attributes`, { attributes: { plan: 'x' } })).status, 404);
        const seg = await broadcast(svc.id, { audience: { kind: 'segment', attributes: { plan: 'gold', city: ['berlin', 'paris'] } }, title: 'Gold members in Paris' });
        assert.equal(seg.recipients, 1);
        await cb.waitFor((x) => x.type === 'notification' && x.notification.id === seg.id);
        await sleep(200);
        assert.ok(!ca.frames.some((x) => x.type === 'notification' && x.notification.id === seg.id), 'a is not in the segment');
        assert.ok(!cb.frames.some((x) => x.type === 'notification' && x.notification.id === list.id), 'b is not on the list');
        // Sync: a sees all + list, b sees all + segment, c (offline) all + nothing of the segment (rome).
        const sa = await syncAll(srv.url, a.token);
        assert.deepEqual(sa.items.map((n) => n.id), [all.id, list.id]);
        const sb = await syncAll(srv.url, b.token);
        assert.deepEqual(sb.items.map((n) => n.id), [all.id, seg.id]);
        assert.deepEqual((await syncAll(srv.url, c.token)).items.map((n) => n.id), [all.id]);
        // From the returned cursor nothing is new; a later broadcast is.
        assert.equal((await syncAll(srv.url, a.token, sa.cursor)).items.length, 0);
        const later = await broadcast(svc.id, { audience: { kind: 'all' }, title: 'Later' });
        assert.deepEqual((await syncAll(srv.url, a.token, sa.cursor)).items.map((n) => n.id), [later.id]);
        assert.equal((await api(srv.url, 'GET', '/api/notifications?cursor=garbage!', undefined, a.token)).status, 400);
        assert.deepEqual(ca.schemaErrors, []);
      } finally {
        ca.close();
        cb.close();
      }
    });

    it('ring separation: a flood of broadcasts never evicts chat; the notification ring keeps its own capacity', async () => {
      const x = await registerAndLogin(srv.url);
      const y = await registerAndLogin(srv.url);
      const cx = (await RawClient.connect(srv.wsUrl, x.token)).client;
      try {
        for (let i = 0; i < 10; i++) await cx.request({ type: 'send', clientMsgId: `chat-${i}`, to: y.userId, kind: 'text', body: { text: `chat ${i}` } });
        const cy = await RawClient.connect(srv.wsUrl, y.token);
        const chatSeq = cy.welcome.inboxSeq;
        cy.client.close();
        assert.equal(chatSeq, 10);
        const flood = 3 * CAPACITY;
        for (let i = 0; i < flood; i++) await broadcast(svc.id, { audience: { kind: 'list', userIds: [y.userId] }, title: `promo ${i}` });
        const again = await RawClient.connect(srv.wsUrl, y.token);
        try {
          assert.equal(again.welcome.inboxSeq, chatSeq, 'no broadcast took a chat inbox slot');
          const chat = await pullAll(again.client, 0);
          assert.equal(chat.full, false);
          assert.deepEqual(chat.items.map((i: any) => i.message.body.text), Array.from({ length: 10 }, (_, i) => `chat ${i}`));
        } finally {
          again.client.close();
        }
        const ring = await syncAll(srv.url, y.token);
        const promos = ring.items.filter((n) => n.slot !== null);
        assert.equal(promos.length, CAPACITY, 'the ring keeps `services.capacity` slots');
        assert.equal(promos.at(-1).title, `promo ${flood - 1}`);
        assert.equal(ring.wrapped, true);
      } finally {
        cx.close();
      }
    });

    it('mute keeps notifications (no push); unsubscribe stops them without gaps in what was synced; resubscribe resumes', async () => {
      const u = await registerAndLogin(srv.url);
      const s2 = (await admin('POST', '/api/admin/services', { name: 'News', marketing: false })).body.service;
      const one = await broadcast(s2.id, { audience: { kind: 'all' }, title: 'one' });
      const first = await syncAll(srv.url, u.token);
      assert.ok(first.items.some((n) => n.id === one.id));
      const muted = await api(srv.url, 'PATCH', `/api/notifications/services/${s2.id}`, { muted: true }, u.token);
      assert.deepEqual([muted.body.service.muted, muted.body.service.unsubscribed], [true, false]);
      const cu = (await RawClient.connect(srv.wsUrl, u.token)).client;
      try {
        const two = await broadcast(s2.id, { audience: { kind: 'all' }, title: 'two (muted: still here)' });
        await cu.waitFor((x) => x.type === 'notification' && x.notification.id === two.id);
        const unsub = await api(srv.url, 'PATCH', `/api/notifications/services/${s2.id}`, { unsubscribed: true }, u.token);
        assert.equal(unsub.body.service.unsubscribed, true);
        const three = await broadcast(s2.id, { audience: { kind: 'all' }, title: 'three (unsubscribed)' });
        const listed = await broadcast(s2.id, { audience: { kind: 'list', userIds: [u.userId] }, title: 'list (unsubscribed)' });
        assert.equal(listed.recipients, 0, 'no ring slot for an unsubscribed user');
        await sleep(300);
        assert.ok(!cu.frames.some((x) => x.type === 'notification' && [three.id, listed.id].includes(x.notification.id)), 'no frames after unsubscribe');
        const incremental = await syncAll(srv.url, u.token, first.cursor);
        assert.deepEqual(incremental.items.filter((n) => n.service === s2.id).map((n) => n.id), [two.id]);
        // A full sync still shows what came before the unsubscribe, and nothing after.
        const full = await syncAll(srv.url, u.token);
        assert.deepEqual(full.items.filter((n) => n.service === s2.id).map((n) => n.id), [one.id, two.id]);
        await api(srv.url, 'PATCH', `/api/notifications/services/${s2.id}`, { unsubscribed: false }, u.token);
        const four = await broadcast(s2.id, { audience: { kind: 'all' }, title: 'four' });
        await cu.waitFor((x) => x.type === 'notification' && x.notification.id === four.id);
        const resumed = await syncAll(srv.url, u.token, incremental.cursor);
        assert.deepEqual(resumed.items.filter((n) => n.service === s2.id).map((n) => n.id), [four.id]);
        // Read marks: unread counts per service.
        let svcView = (await api(srv.url, 'GET', '/api/notifications/services', undefined, u.token)).body.services.find((s: any) => s.id === s2.id);
        assert.equal(svcView.unread, 3);
        const read = await api(srv.url, 'POST', `/api/notifications/services/${s2.id}/read`, { seq: two.seq }, u.token);
        assert.equal(read.body.service.unread, 1);
        svcView = (await api(srv.url, 'GET', '/api/notifications/services', undefined, u.token)).body.services.find((s: any) => s.id === s2.id);
        assert.deepEqual([svcView.readSeq, svcView.unread], [two.seq, 1]);
      } finally {
        cu.close();
      }
    });

    it('pushes: marketing category with the per-user quota; muted users get none; a non-marketing service pushes as followed', async () => {
      const p = await registerAndLogin(srv.url, { deviceId: 'phone' });
      const m = await registerAndLogin(srv.url, { deviceId: 'phone' });
      for (const who of [p, m]) {
        const sub = webpush.subscribe();
        const reg = await api(srv.url, 'PUT', '/api/push/device', { provider: 'webpush', subscription: sub, permission: 'granted' }, who.token);
        assert.equal(reg.status, 200, JSON.stringify(reg.body));
      }
      const promo = (await admin('POST', '/api/admin/services', { name: 'Promo', marketing: true })).body.service;
      const system = (await admin('POST', '/api/admin/services', { name: 'System', marketing: false })).body.service;
      await api(srv.url, 'PATCH', `/api/notifications/services/${promo.id}`, { muted: true }, m.token);
      const counts = async () => {
        const r = (await admin('GET', '/api/admin/push/report')).body.byCategory;
        return { marketing: r.marketing?.stages.requested ?? 0, quota: r.marketing?.dropped.quota ?? 0, followed: r.followed?.stages.requested ?? 0 };
      };
      const before = await counts();
      for (let i = 0; i < 3; i++) await broadcast(promo.id, { audience: { kind: 'list', userIds: [p.userId, m.userId] }, title: `deal ${i}` });
      await broadcast(system.id, { audience: { kind: 'list', userIds: [p.userId] }, title: 'maintenance tonight' });
      let now = before;
      for (let i = 0; i < 100 && (now.marketing - before.marketing < 3 || now.followed - before.followed < 1); i++) {
        await sleep(100);
        now = await counts();
      }
      // p's device: 3 marketing requests, the third over the quota of 2 a day; m muted the service: not even requested.
      assert.deepEqual([now.marketing - before.marketing, now.quota - before.quota, now.followed - before.followed], [3, 1, 1]);
      const jobs: any[] = (await admin('GET', `/api/admin/push/users/${p.userId}`)).body.jobs;
      const marketing = jobs.filter((j) => j.category === 'marketing');
      // Pushes of one service share a collapse key: a queued one may be replaced by the next.
      assert.ok(marketing.length >= 1 && marketing.length <= 2, JSON.stringify(jobs.map((j) => [j.category, j.body])));
      assert.ok(marketing.every((j) => j.title === 'Promo' && j.data.service === promo.id));
      assert.equal(jobs.filter((j) => j.category === 'followed').length, 1);
      assert.equal((await admin('GET', `/api/admin/push/users/${m.userId}`)).body.jobs.length, 0, 'muted: no push');
      // The notifications are stored whatever the quota.
      assert.equal((await syncAll(srv.url, p.token)).items.filter((n) => n.service === promo.id).length, 3);
    });

    it('scheduled sends go out once at their time; a canceled one never does', async () => {
      const s = (await admin('POST', '/api/admin/services', { name: 'Later' })).body.service;
      const due = Date.now() + 800;
      const sch = await admin('POST', `/api/admin/services/${s.id}/schedules`, { audience: { kind: 'list', userIds: [a.userId, b.userId] }, title: 'Scheduled', sendAt: due });
      assert.equal(sch.status, 201, JSON.stringify(sch.body));
      const gone = await admin('POST', `/api/admin/services/${s.id}/schedules`, { audience: { kind: 'all' }, title: 'Never', sendAt: Date.now() + 60_000 });
      assert.equal((await admin('DELETE', `/api/admin/schedules/${gone.body.schedule.id}`)).body.schedule.status, 'canceled');
      assert.equal((await admin('DELETE', `/api/admin/schedules/${gone.body.schedule.id}`)).status, 409);
      let list: any[] = [];
      for (let i = 0; i < 100; i++) {
        list = (await admin('GET', `/api/admin/services/${s.id}/schedules`)).body.schedules;
        if (list.find((x) => x.id === sch.body.schedule.id)?.status === 'sent') break;
        await sleep(100);
      }
      const sent = list.find((x) => x.id === sch.body.schedule.id);
      assert.equal(sent.status, 'sent');
      const bs = (await admin('GET', `/api/admin/services/${s.id}/broadcasts`)).body.broadcasts;
      assert.equal(bs.length, 1);
      assert.deepEqual([bs[0].scheduleId, bs[0].recipients, bs[0].id], [sch.body.schedule.id, 2, sent.broadcastId]);
      assert.ok(bs[0].createdAt >= due);
    });
  });
}

/** Retention on its own server: broadcasts and ring slots older than `services.retentionDays` are swept. */
export function runNotificationRetentionE2E(name: string, envOf: NotificationsEnv): void {
  describe(`notification retention: ${name}`, () => {
    let srv: ServerProcess;
    let cleanup: () => Promise<void>;
    before(async () => {
      const e = await envOf();
      cleanup = e.cleanup;
      // 0.00003 days ≈ 2.6 s.
      srv = await startServer({ env: { ...e.env, MAGPIE_ADMIN_TOKEN: ADMIN, MAGPIE_SERVICES_RETENTION_DAYS: '0.00003', MAGPIE_SERVICES_SWEEP_MS: '200', MAGPIE_SERVICES_SCHEDULE_POLL_MS: '100' } });
    });
    after(async () => {
      await srv?.stop();
      await cleanup?.();
    });

    it('old broadcasts and slots are swept; chat is untouched; the cursor continues', async () => {
      const u = await registerAndLogin(srv.url);
      const s = (await api(srv.url, 'POST', '/api/admin/services', { name: 'Short-lived' }, ADMIN)).body.service;
      await api(srv.url, 'POST', `/api/admin/services/${s.id}/broadcasts`, { audience: { kind: 'all' }, title: 'old all' }, ADMIN);
      await api(srv.url, 'POST', `/api/admin/services/${s.id}/broadcasts`, { audience: { kind: 'list', userIds: [u.userId] }, title: 'old list' }, ADMIN);
      const before = await syncAll(srv.url, u.token);
      assert.equal(before.items.length, 2);
      let left = 2;
      for (let i = 0; i < 100 && left > 0; i++) {
        await sleep(100);
        left = (await syncAll(srv.url, u.token)).items.length;
      }
      assert.equal(left, 0, 'swept');
      assert.equal((await api(srv.url, 'GET', `/api/admin/services/${s.id}/broadcasts`, undefined, ADMIN)).body.broadcasts.length, 0);
      const fresh = (await api(srv.url, 'POST', `/api/admin/services/${s.id}/broadcasts`, { audience: { kind: 'list', userIds: [u.userId] }, title: 'fresh' }, ADMIN)).body.broadcast;
      const next = await syncAll(srv.url, u.token, before.cursor);
      assert.deepEqual(next.items.map((n) => n.id), [fresh.id]);
    });
  });
}
