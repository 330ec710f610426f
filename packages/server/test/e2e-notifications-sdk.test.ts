import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { MagpieClient } from '@magpie/sdk';
import { startServer, registerAndLogin, api, type ServerProcess } from './harness.ts';
import { sdkClient, eventually } from './sdk-client.ts';
import { RestApi } from '../../sdk/src/rest.ts';
import { MagpieClientError } from '../../sdk/src/errors.ts';
import { NotificationInbox, NotificationsApi, type NotificationSource } from '../../sdk/src/notifications.ts';

const ADMIN = 'admin-token-notif-sdk-0123456789';

/** The SDK's NotificationsApi and NotificationInbox against the real server: live frames, catch-up from a cursor, settings. */
describe('SDK notifications against the real server', () => {
  let srv: ServerProcess;
  const clients: MagpieClient[] = [];
  before(async () => {
    srv = await startServer({ env: { MAGPIE_ADMIN_TOKEN: ADMIN, MAGPIE_USER_RATE: '2000', MAGPIE_USER_BURST: '2000' } });
  });
  after(async () => {
    for (const c of clients) c.close();
    await srv.stop();
  });

  const send = async (service: string, audience: unknown, title: string) => {
    const r = await api(srv.url, 'POST', `/api/admin/services/${service}/broadcasts`, { audience, title }, ADMIN);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.broadcast;
  };

  it('an online inbox merges live frames; an offline one catches up from its cursor; mute, unsubscribe and read marks', async () => {
    const u = await registerAndLogin(srv.url);
    const svc = (await api(srv.url, 'POST', '/api/admin/services', { name: 'Shop' }, ADMIN)).body.service;
    const rest = new RestApi({ baseUrl: srv.url });
    const napi = new NotificationsApi(rest, () => u.token);
    const client = sdkClient({ baseUrl: srv.url, token: u.token });
    clients.push(client);
    const inbox = new NotificationInbox(napi);
    inbox.attach(client as unknown as NotificationSource);
    const first = await send(svc.id, { kind: 'all' }, 'before connecting');
    await client.connect();
    await eventually(() => inbox.list().some((n) => n.id === first.id), 'pulled on connect');
    const live = await send(svc.id, { kind: 'list', userIds: [u.userId] }, 'live one');
    const liveAll = await send(svc.id, { kind: 'all' }, 'live to all');
    await eventually(() => inbox.list().some((n) => n.id === live.id) && inbox.list().some((n) => n.id === liveAll.id), 'live frames merged');
    assert.deepEqual(inbox.list().map((n) => n.title), ['live to all', 'live one', 'before connecting']);

    // A second inbox resumes from the first one's cursor while the client is away.
    const saved = inbox.cursor;
    client.close();
    const missed = await send(svc.id, { kind: 'list', userIds: [u.userId] }, 'while away');
    const resumed = new NotificationInbox(new NotificationsApi(rest, u.token), saved ? { cursor: saved } : {});
    const seen: string[] = [];
    resumed.on('notifications', (ns) => seen.push(...ns.map((n) => n.title)));
    await resumed.sync();
    assert.deepEqual(seen, ['while away']);
    assert.equal(missed.recipients, 1);

    const [s] = (await napi.services()).filter((x) => x.id === svc.id);
    assert.equal(s!.unread, 4);
    assert.equal((await napi.markRead(svc.id, liveAll.seq)).unread, 1);
    assert.equal((await napi.setMuted(svc.id, true)).muted, true);
    assert.equal((await napi.setUnsubscribed(svc.id, true)).unsubscribed, true);
    assert.equal((await send(svc.id, { kind: 'list', userIds: [u.userId] }, 'not for me')).recipients, 0);
    await resumed.sync();
    assert.deepEqual(seen, ['while away']);
    await assert.rejects(napi.page('not-a-cursor'), (e: unknown) => e instanceof MagpieClientError && e.code === 'invalid');
    await assert.rejects(napi.setMuted('svc_unknown000', true), (e: unknown) => e instanceof MagpieClientError && e.code === 'not_found');
  });
});
