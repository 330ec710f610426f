import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { apnsToken } from '../src/testing/apns-server.ts';
import { pushEnv, startFakes, stopFakes, type Fakes, type PushEnv } from './push-harness.ts';

/**
 * The device stage of the funnel (delivered / displayed reported by the service worker or
 * SDK), the click rule (open only for the account the push was for), logout unbinding the
 * token, and the funnel at /metrics and in the admin report.
 */
describe('push funnel, receipts, clicks and logout', () => {
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

  const report = async () => (await env.api('GET', '/api/admin/push/report', undefined, env.adminToken)).body;

  it('the service worker reports delivered and displayed; the funnel shows the device stage', async () => {
    const a = await env.user('ada', 'a1');
    const b = await env.user('bea', 'browser', { platform: 'web', offline: true });
    const sub = fakes.webpush.subscribe();
    const id = sub.endpoint.split('/').pop()!;
    await env.api('PUT', '/api/push/device', { provider: 'webpush', subscription: sub }, b.token);
    const r0 = await report();
    await env.text(a.p, b.userId, 'funnel me');
    const [n] = (await fakes.webpush.received.until((xs) => xs.some((x) => x.id === id))).filter((x) => x.id === id);
    await env.settle();
    const receipt = n!.payload.data.r as string;
    // What the service worker does: on `push` → delivered; after showNotification → displayed.
    assert.deepEqual((await env.api('POST', '/api/push/receipts', { receipt, event: 'delivered' })).body, { ok: 1, ignored: 0 });
    assert.equal((await env.api('POST', '/api/push/receipts', { events: [{ receipt, event: 'displayed' }, { receipt, event: 'displayed' }] })).status, 200);
    const forged = await env.api('POST', '/api/push/receipts', { receipt: `${receipt.split('.')[0]}.AAAAAAAAAAAAAAAAAAAAAA`, event: 'delivered' });
    assert.equal(forged.status, 400, 'receipts are signed');
    const r1 = await report();
    const diff = (s: string) => r1.byProvider.webpush.stages[s] - (r0.byProvider.webpush?.stages[s] ?? 0);
    assert.deepEqual(
      ['requested', 'accepted', 'provider_accepted', 'delivered', 'displayed', 'clicked'].map(diff),
      [1, 1, 1, 1, 1, 0],
      'each stage counted once, duplicate reports ignored',
    );
    const job = (await env.push.service.history(b.userId))[0]!;
    assert.ok(job.deliveredAt && job.displayedAt && !job.clickedAt);
    assert.equal(r1.steps.length, 5);
    assert.ok(r1.narrowest, 'the report names the narrowest step');

    const metrics = await env.metrics.registry.metrics();
    assert.match(metrics, /magpie_push_funnel_total\{stage="displayed",category="im",provider="webpush"\} \d+/);
    assert.match(metrics, /magpie_push_funnel_total\{stage="delivered",category="im",provider="webpush"\} \d+/);
    assert.match(metrics, /magpie_push_attempts_total\{provider="webpush",outcome="ok"\} \d+/);
  });

  it('a click opens the conversation only for the account the push was for', async () => {
    const a = await env.user('al', 'a1');
    const b = await env.user('bo', 'shared-phone', { offline: true });
    const tok = apnsToken();
    await env.api('PUT', '/api/push/device', { provider: 'apns', token: tok }, b.token);
    await env.text(a.p, b.userId, 'private to bo');
    const [n] = (await fakes.apns.received.until((xs) => xs.some((x) => x.token === tok))).filter((x) => x.token === tok);
    await env.settle();
    const { r: receipt, uid, conv } = n!.payload.magpie;
    assert.equal(uid, b.userId, 'the push says whom it is for; the SDK compares it with the signed-in account');
    const clicked0 = (await report()).stages.clicked;

    // Bo logs out on the shared phone and Cy signs in there; Cy taps Bo's old notification.
    const c = await env.user('cy', 'shared-phone', { offline: true });
    const asCy = await env.api('POST', '/api/push/click', { receipt }, c.token);
    assert.equal(asCy.status, 200);
    assert.equal(asCy.body.open, false);
    assert.equal(asCy.body.reason, 'account_mismatch');
    const signedOut = await env.api('POST', '/api/push/click', { receipt });
    assert.deepEqual([signedOut.body.open, signedOut.body.reason], [false, 'signed_out']);
    assert.equal((await report()).stages.clicked, clicked0, 'a refused click is not a click');

    const asBo = await env.api('POST', '/api/push/click', { receipt }, b.token);
    assert.deepEqual([asBo.body.open, asBo.body.conv, asBo.body.seq], [true, conv, 1]);
    const r = await report();
    assert.equal(r.stages.clicked, clicked0 + 1);
    assert.ok(r.dropped.account_mismatch >= 2);

    // Marketing has no private content: it opens whoever is signed in.
    const m = await env.api('POST', '/api/admin/push/notify', { userIds: [b.userId], title: 'Offer', body: 'x', data: { url: '/offers/1' } }, env.adminToken);
    assert.equal(m.body.accepted, 1);
    const [mk] = (await fakes.apns.received.until((xs) => xs.some((x) => x.token === tok && x.payload.magpie.cat === 'marketing'))).filter(
      (x) => x.token === tok && x.payload.magpie.cat === 'marketing',
    );
    assert.equal(mk!.headers['apns-priority'], '5');
    assert.equal(mk!.payload.magpie.url, '/offers/1');
    const open = await env.api('POST', '/api/push/click', { receipt: mk!.payload.magpie.r }, c.token);
    assert.deepEqual([open.body.open, open.body.data.url], [true, '/offers/1']);
  });

  it('logout unbinds the device token: no push reaches a logged-out device', async () => {
    const a = await env.user('an', 'a1');
    const b = await env.user('bz', 'phone', { offline: true });
    const tok = apnsToken();
    await env.api('PUT', '/api/push/device', { provider: 'apns', token: tok }, b.token);
    await env.text(a.p, b.userId, 'before logout');
    await fakes.apns.received.until((xs) => xs.some((x) => x.token === tok));
    await env.settle();
    assert.equal((await env.api('POST', '/api/push/device', undefined, b.token)).status, 404, 'sanity: unknown route');
    await env.accounts.logout(b.p);
    assert.deepEqual(await env.push.service.devices(b.userId), [], 'the registry forgot the device at logout');
    const r0 = await report();
    await env.text(a.p, b.userId, 'after logout');
    await env.settle();
    assert.equal(fakes.apns.log.filter(([t]) => t === tok).length, 1, 'not one request for the logged-out device');
    assert.equal((await report()).dropped.no_device - (r0.dropped.no_device ?? 0), 1);

    // Signing in again without registering does not bring the old token back.
    const again = await env.login(b.username, 'phone');
    await env.text(a.p, b.userId, 'after re-login');
    await env.settle();
    assert.equal(fakes.apns.log.filter(([t]) => t === tok).length, 1);
    // Registering again does.
    await env.api('PUT', '/api/push/device', { provider: 'apns', token: tok }, again.token);
    await env.text(a.p, b.userId, 'registered again');
    await fakes.apns.received.until((xs) => xs.filter((x) => x.token === tok).length === 2);
  });

  it('a token moves with the account: the same device token registered by another user is unbound from the first', async () => {
    const a = await env.user('ax', 'a1');
    const b = await env.user('by', 'phone', { offline: true });
    const c = await env.user('cz', 'phone', { offline: true });
    const tok = apnsToken();
    await env.api('PUT', '/api/push/device', { provider: 'apns', token: tok }, b.token);
    await env.api('PUT', '/api/push/device', { provider: 'apns', token: tok }, c.token);
    assert.equal((await env.push.service.devices(b.userId)).length, 0);
    await env.text(a.p, b.userId, 'for b');
    await env.text(a.p, c.userId, 'for c');
    await env.settle();
    const got = fakes.apns.received.items.filter((x) => x.token === tok);
    assert.deepEqual(got.map((x) => x.payload.magpie.uid), [c.userId]);
  });

  it('queued pushes of a device are dropped when it unregisters', async () => {
    const b = await env.user('q', 'phone', { offline: true });
    await env.api('PUT', '/api/push/device', { provider: 'apns', token: apnsToken(), timeZone: 'UTC' }, b.token);
    const hhmm = (t: number) => new Date(t).toISOString().slice(11, 16);
    await env.api('PUT', '/api/push/settings', { quietHours: { start: hhmm(Date.now() - 3600_000), end: hhmm(Date.now() + 7200_000) } }, b.token);
    const r = await env.api('POST', '/api/admin/push/notify', { userIds: [b.userId], category: 'followed', title: 'x', body: 'y' }, env.adminToken);
    assert.equal(r.body.accepted, 1);
    assert.equal((await env.push.service.history(b.userId))[0]!.status, 'queued');
    assert.deepEqual((await env.api('DELETE', '/api/push/device', undefined, b.token)).body, { removed: true });
    const [job] = await env.push.service.history(b.userId);
    assert.deepEqual([job!.status, job!.lastError], ['dropped', 'unbound']);
  });
});
