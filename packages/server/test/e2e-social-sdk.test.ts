import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, registerAndLogin, login, RawClient, sleep, type ServerProcess } from './harness.ts';
import { RestApi } from '../../sdk/src/rest.ts';
import { MagpieClientError } from '../../sdk/src/errors.ts';
import { RelationSync, SocialApi } from '../../sdk/src/social.ts';

/** The SDK's SocialApi and RelationSync against the real server process. */
describe('SDK social graph against the real server', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ env: { MAGPIE_IP_RATE: '100000', MAGPIE_IP_BURST: '100000' } });
  });
  after(async () => {
    await srv.stop();
  });

  it('SocialApi drives every flow; RelationSync follows live frames on one device and catches up on another', async () => {
    const rest = new RestApi({ baseUrl: srv.url });
    const alice = await registerAndLogin(srv.url, { deviceId: 'a1' });
    const bob = await registerAndLogin(srv.url, { deviceId: 'b-live' });
    const bobOffline = await login(srv.url, bob.username, 'b-offline', 'desktop');
    const carol = await registerAndLogin(srv.url);
    const A = new SocialApi(rest, alice.token);
    const B = new SocialApi(rest, () => bob.token);
    const C = new SocialApi(rest, carol.token);

    const profile = await A.updateProfile({ nickname: 'Alice SDK', avatar: 'https://img.example/a.png', extra: { lang: 'zh' } });
    assert.equal(profile.nickname, 'Alice SDK');
    assert.deepEqual((await B.userProfile(alice.userId)).profile, profile);
    assert.deepEqual((await B.search('alice sd')).results.map((p) => p.id), [alice.userId]);
    assert.deepEqual((await B.search(alice.username)).exact.map((p) => p.id), [alice.userId]);

    // Bob's live device: RelationSync fed by the raw socket's frames (the typed handler).
    const bobLive = new RelationSync(B);
    await bobLive.sync();
    assert.equal(bobLive.version, 0);
    const { client: socket } = await RawClient.connect(srv.wsUrl, bob.token);
    const changes: string[] = [];
    bobLive.on('change', (e) => changes.push(`${e.change.version}:${e.change.kind}`));
    socket.ws.on('message', (data) => {
      const parsed = JSON.parse(String(data));
      for (const f of Array.isArray(parsed) ? parsed : [parsed]) bobLive.handleFrame(f);
    });
    // Bob's other device, persisted at version 0 and offline.
    const bobOther = new RelationSync(new SocialApi(rest, bobOffline.token), { version: 0, relations: [] });

    assert.equal((await A.requestFriend(bob.userId, 'hi Bob')).state, 'outgoing');
    assert.equal((await C.requestFriend(bob.userId)).state, 'outgoing');
    assert.deepEqual((await B.requests('incoming')).items.map((r) => r.user.id).sort(), [alice.userId, carol.userId].sort());
    assert.equal((await B.acceptRequest(alice.userId)).state, 'friend');
    assert.equal((await B.rejectRequest(carol.userId)).state, 'none');
    assert.equal((await B.block(carol.userId)).state, 'blocked');
    await assert.rejects(C.requestFriend(bob.userId), (e: unknown) => e instanceof MagpieClientError && e.code === 'forbidden' && e.status === 403);
    await assert.rejects(A.requestFriend(bob.userId), (e: unknown) => e instanceof MagpieClientError && e.code === 'conflict');
    await assert.rejects(A.acceptRequest(carol.userId), (e: unknown) => e instanceof MagpieClientError && e.code === 'not_found');
    await assert.rejects(new SocialApi(rest, 'bogus').profile(), (e: unknown) => e instanceof MagpieClientError && e.code === 'unauthorized' && e.status === 401);

    for (let i = 0; i < 100 && bobLive.version < 5; i++) await sleep(20);
    assert.deepEqual(changes, ['1:request_received', '2:request_received', '3:friend_added', '4:request_rejected', '5:blocked']);
    assert.deepEqual(bobLive.peers('friend'), [alice.userId]);
    assert.deepEqual(bobLive.peers('blocked'), [carol.userId]);

    await bobOther.sync();
    assert.equal(bobOther.version, 5);
    assert.deepEqual([...bobOther.relations].sort(), [...bobLive.relations].sort());
    assert.deepEqual((await B.friends()).items.map((f) => f.user.id), [alice.userId]);
    assert.deepEqual((await B.blocks()).items.map((f) => f.user.id), [carol.userId]);

    assert.equal((await B.unblock(carol.userId)).state, 'none');
    assert.equal((await A.removeFriend(bob.userId)).state, 'none');
    assert.equal((await C.requestFriend(bob.userId, 'again')).state, 'outgoing');
    assert.equal((await C.cancelRequest(bob.userId)).state, 'none');
    for (let i = 0; i < 100 && bobLive.version < 9; i++) await sleep(20);
    await bobOther.sync();
    assert.equal(bobLive.version, 9);
    assert.equal(bobOther.version, 9);
    assert.deepEqual([...bobLive.relations], []);
    assert.deepEqual([...bobOther.relations], []);
    const log = await B.changes(5);
    assert.deepEqual(log.changes.map((c) => c.kind), ['unblocked', 'friend_removed', 'request_received', 'request_cancelled']);
    socket.close();
  });
});
