/**
 * Issue 13 leftovers: a deleted account cannot be befriended or added to a group (not_found),
 * and a session that escaped a disable or deletion (created at that very moment) is refused by
 * authentication because the user row is checked, not only the session.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MagpieError } from '@magpie/protocol';
import { openSqliteStore } from '../src/store/open.ts';
import { MemoryBus } from '../src/bus/memory-bus.ts';
import { AccountService } from '../src/services/account-service.ts';
import { hashToken } from '../src/util/ids.ts';
import { startServer, registerAndLogin, api, type ServerProcess } from './harness.ts';

describe('a session that escaped a disable or deletion', () => {
  it('is refused by authenticate (and revoked), for disabled and for deleted users', async () => {
    const store = await openSqliteStore({ path: ':memory:', ringCapacity: 100 });
    await store.migrate();
    const accounts = new AccountService(store, new MemoryBus(), { tokenTtlMs: 3600_000, devicesPerPlatformClass: 5 });
    const now = Date.now();
    const session = async (userId: string, token: string) =>
      store.createSession({ tokenHash: hashToken(token), userId, deviceId: `d-${token}`, platform: 'web', appVersion: '', createdAt: now, expiresAt: now + 3600_000 });
    const alice = await accounts.register('alice_race', 'correct horse battery');
    const bob = await accounts.register('bob_race', 'correct horse battery');
    // The race: the row is switched off, then a session written by a login that had already passed its checks.
    await store.setUserDisabled(alice.id, now);
    await session(alice.id, 'tok-alice-after-disable');
    await store.markUserDeleted(bob.id, now, 'Deleted account');
    await session(bob.id, 'tok-bob-after-delete');
    for (const token of ['tok-alice-after-disable', 'tok-bob-after-delete']) {
      await assert.rejects(accounts.authenticate(token), (e: unknown) => e instanceof MagpieError && e.code === 'unauthorized', token);
    }
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(await store.getSession(hashToken('tok-alice-after-disable'), Date.now()), null, 'the escaped session is revoked');
    // Enabled again: a fresh session works.
    await store.setUserDisabled(alice.id, null);
    await session(alice.id, 'tok-alice-enabled');
    assert.equal((await accounts.authenticate('tok-alice-enabled')).userId, alice.id);
    await store.close();
  });
});

describe('deleted accounts cannot be befriended or added to groups', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: { MAGPIE_USER_RATE: '2000', MAGPIE_USER_BURST: '2000' } });
  });
  after(async () => {
    await srv.stop();
  });

  it('friend request, group create, invite and approval of a deleted account answer not_found', async () => {
    const owner = await registerAndLogin(srv.url);
    const gone = await registerAndLogin(srv.url);
    const applicant = await registerAndLogin(srv.url);
    const g = (await api(srv.url, 'POST', '/api/groups', { name: 'Gate', joinPolicy: 'approval' }, owner.token)).body.group;
    assert.equal((await api(srv.url, 'POST', `/api/groups/${g.conv}/join`, {}, applicant.token)).status, 200);
    for (const who of [gone, applicant]) {
      const del = await api(srv.url, 'POST', '/api/account/delete', { password: 'correct horse' }, who.token);
      assert.equal(del.status, 200, JSON.stringify(del.body));
    }
    const req = await api(srv.url, 'POST', '/api/friends/requests', { to: gone.userId }, owner.token);
    assert.equal(req.body.error?.code, 'not_found', JSON.stringify(req.body));
    const created = await api(srv.url, 'POST', '/api/groups', { name: 'With a ghost', members: [gone.userId] }, owner.token);
    assert.equal(created.body.error?.code, 'not_found', JSON.stringify(created.body));
    const invited = await api(srv.url, 'POST', `/api/groups/${g.conv}/invite`, { users: [gone.userId] }, owner.token);
    assert.equal(invited.body.error?.code, 'not_found', JSON.stringify(invited.body));
    const approved = await api(srv.url, 'POST', `/api/groups/${g.conv}/requests/${applicant.userId}/approve`, {}, owner.token);
    assert.equal(approved.body.error?.code, 'not_found', JSON.stringify(approved.body));
    const members = await api(srv.url, 'GET', `/api/groups/${g.conv}/members`, undefined, owner.token);
    assert.deepEqual(members.body.members.map((m: any) => m.userId), [owner.userId]);
  });
});
