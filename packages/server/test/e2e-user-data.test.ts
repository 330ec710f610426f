import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { UserExportSchema } from '@magpie/protocol';
import { PG_URL, pgUnavailable, testDatabase } from './pg-test-helpers.ts';
import { startServer, registerAndLogin, RawClient, api, login, type ServerProcess } from './harness.ts';

/**
 * Operator data requests for one account, on SQLite and on PostgreSQL: export (profile,
 * sessions, conversation entries, the messages it sent; no hashes) and erasure (as the owner's
 * own deletion: tombstone, sessions revoked, login refused). Bad input changes nothing.
 */
const ADMIN = 'admin-token-0123456789abcdef';
const pgSkip = await pgUnavailable();

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`user data export and erasure (${kind})`, { skip: kind === 'postgres' ? (pgSkip ?? false) : false }, () => {
    let srv: ServerProcess;
    const db = testDatabase('magpie_udata');
    const admin = kind === 'postgres' ? postgres(PG_URL, { max: 1, onnotice: () => {} }) : null;
    before(async () => {
      const env: Record<string, string> = { MAGPIE_ADMIN_TOKEN: ADMIN };
      if (admin) {
        const url = await db.create();
        env.MAGPIE_STORE = url.toString();
      }
      srv = await startServer({ env });
    });
    after(async () => {
      await srv?.stop();
      if (admin) {
        await db.drop();
      }
    });

    it('exports the account: profile, sessions, conversations and its own messages only, without hashes', async () => {
      const a = await registerAndLogin(srv.url, { deviceId: 'a-web' });
      const b = await registerAndLogin(srv.url);
      const ca = (await RawClient.connect(srv.wsUrl, a.token)).client;
      const cb = (await RawClient.connect(srv.wsUrl, b.token)).client;
      for (let i = 0; i < 3; i++) await ca.request({ type: 'send', clientMsgId: `a${i}`, to: b.userId, kind: 'text', body: { text: `from a ${i}` } });
      await cb.request({ type: 'send', clientMsgId: 'b0', to: a.userId, kind: 'text', body: { text: 'from b' } });
      ca.close();
      cb.close();
      const r = await api(srv.url, 'GET', `/api/admin/users/${a.userId}/export`, undefined, ADMIN);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const parsed = UserExportSchema.parse(r.body);
      assert.equal(parsed.user.id, a.userId);
      assert.equal(parsed.user.username, a.username);
      assert.deepEqual(parsed.sessions.map((s) => s.deviceId), ['a-web']);
      assert.equal(parsed.conversations.length, 1);
      assert.deepEqual(parsed.messages.map((m) => (m.body as { text: string }).text), ['from a 0', 'from a 1', 'from a 2']);
      const text = JSON.stringify(r.body);
      assert.doesNotMatch(text, /passwordHash|tokenHash|scrypt/);
      assert.ok(!text.includes(a.token), 'no session token');
    });

    it('refuses without the admin token and for an unknown user, changing nothing', async () => {
      const a = await registerAndLogin(srv.url);
      assert.equal((await api(srv.url, 'GET', `/api/admin/users/${a.userId}/export`, undefined, a.token)).status, 401);
      assert.equal((await api(srv.url, 'POST', `/api/admin/users/${a.userId}/erase`, undefined, 'wrong-token-0123456789')).status, 401);
      const unknown = await api(srv.url, 'POST', '/api/admin/users/nobody/erase', undefined, ADMIN);
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.error.code, 'not_found');
      assert.equal((await api(srv.url, 'GET', '/api/me', undefined, a.token)).status, 200, 'the account still works');
    });

    it('erases the account: tombstone, sessions revoked (socket closes 4101), login refused; a second erase is a conflict', async () => {
      const a = await registerAndLogin(srv.url);
      const { client } = await RawClient.connect(srv.wsUrl, a.token);
      const r = await api(srv.url, 'POST', `/api/admin/users/${a.userId}/erase`, undefined, ADMIN);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(r.body, { ok: true });
      await client.waitClose();
      assert.equal(client.closeCode, 4101);
      assert.equal((await api(srv.url, 'GET', '/api/me', undefined, a.token)).status, 401);
      await assert.rejects(login(srv.url, a.username, 'again'));
      const ex = await api(srv.url, 'GET', `/api/admin/users/${a.userId}/export`, undefined, ADMIN);
      assert.equal(ex.body.user.nickname, 'Deleted account');
      assert.equal(typeof ex.body.user.deletedAt, 'number');
      const again = await api(srv.url, 'POST', `/api/admin/users/${a.userId}/erase`, undefined, ADMIN);
      assert.equal(again.status, 409);
    });
  });
}
