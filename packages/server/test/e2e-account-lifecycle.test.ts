/**
 * Issue 13, accounts slice: password policy, login backoff, normalized usernames, one
 * display-text validator, password change, account deletion, operator disable/enable and
 * revoke-sessions, and the data directory's permissions. The real server as a process.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, registerAndLogin, login, RawClient, api, uniqueName, type ServerProcess } from './harness.ts';

const ADMIN = 'admin-token-0123456789abcdef';
const PW = 'correct horse';

describe('accounts: passwords, usernames, lifecycle (issue 13)', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({
      env: {
        MAGPIE_ADMIN_TOKEN: ADMIN,
        MAGPIE_LOGIN_FREE_FAILURES: '2',
        MAGPIE_LOGIN_BACKOFF_BASE_MS: '400',
        MAGPIE_LOGIN_BACKOFF_MAX_MS: '800',
        // This suite's logins all come from 127.0.0.1: the per-IP budget has its own test.
        MAGPIE_IP_LOGIN_FAILURES_PER_MIN: '100000',
        MAGPIE_IP_LOGIN_FAILURE_BURST: '100000',
      },
    });
  });
  after(async () => {
    await srv.stop();
  });

  const register = (body: Record<string, unknown>) => api(srv.url, 'POST', '/api/register', body);
  const tryLogin = (username: string, password: string, deviceId = 'd1') => api(srv.url, 'POST', '/api/login', { username, password, deviceId, platform: 'web' });
  const admin = (path: string) => api(srv.url, 'POST', path, undefined, ADMIN);

  it('refuses common and trivial passwords at register with weak_password and a reason', async () => {
    for (const password of ['password', 'aaaaaaaa', '        ', '12345678', 'qwertyuiop', 'Password1']) {
      const r = await register({ username: uniqueName(), password });
      assert.equal(r.status, 400, password);
      assert.equal(r.body.error.code, 'weak_password', password);
      assert.ok(r.body.error.message.length > 10, 'a human reason');
    }
    const name = uniqueName('same');
    assert.equal((await register({ username: name, password: `${name}1` })).body.error.code, 'weak_password', 'the username is a known word');
    assert.equal((await register({ username: uniqueName(), password: PW })).status, 201);
  });

  it('usernames are unique and log in case-insensitively (NFKC + case fold)', async () => {
    const base = uniqueName('Mix');
    const r = await register({ username: `${base}_Case`, password: PW });
    assert.equal(r.status, 201);
    assert.equal(r.body.user.username, `${base}_Case`, 'shown as typed');
    assert.equal((await register({ username: `${base.toLowerCase()}_case`, password: PW })).body.error.code, 'conflict');
    // Fullwidth letters are the same name after NFKC.
    const fullwidth = [...`${base}_case`].map((c) => (/[a-z]/i.test(c) ? String.fromCodePoint(c.codePointAt(0)! + 0xfee0) : c)).join('');
    assert.equal((await register({ username: fullwidth, password: PW })).body.error.code, 'conflict');
    const l = await tryLogin(`${base.toUpperCase()}_CASE`, PW);
    assert.equal(l.status, 200);
    assert.equal(l.body.userId, r.body.user.id);
  });

  it('one validator: control characters, bidi overrides and javascript: URLs are refused everywhere', async () => {
    for (const nickname of ['bad\u0007bell', 'evil\u202Egnp.exe', 'zero\u200Bwidth', '\u2066iso\u2069', ' ']) {
      const r = await register({ username: uniqueName(), password: PW, nickname });
      assert.equal(r.status, 400, JSON.stringify(nickname));
      assert.equal(r.body.error.code, 'invalid');
    }
    const a = await registerAndLogin(srv.url);
    const patch = (body: unknown) => api(srv.url, 'PATCH', '/api/profile', body, a.token);
    assert.equal((await patch({ nickname: 'x\u202Ey' })).status, 400);
    for (const avatar of ['javascript:alert(1)', 'data:text/html,hi', '//evil.example/a.png', 'https://user:pw@h.example/a.png', 'vbscript:x']) {
      assert.equal((await patch({ avatar })).status, 400, avatar);
    }
    assert.equal((await patch({ avatar: 'https://cdn.example/a.png' })).status, 200);
    assert.equal((await patch({ avatar: '/files/a.png' })).status, 200, 'a path on this server');
    assert.equal((await patch({ nickname: 'Zoë 👩‍💻' })).status, 200, 'emoji ZWJ sequences stay allowed');
    const g = (body: unknown) => api(srv.url, 'POST', '/api/groups', body, a.token);
    assert.equal((await g({ name: 'team\u202E' })).status, 400);
    assert.equal((await g({ name: 'team', avatar: 'javascript:alert(1)' })).status, 400);
    const ok = await g({ name: 'team' });
    assert.equal(ok.status, 201);
    const conv = ok.body.group.conv;
    assert.equal((await api(srv.url, 'PATCH', `/api/groups/${conv}`, { announcement: 'a\u202Eb' }, a.token)).status, 400);
    assert.equal((await api(srv.url, 'PATCH', `/api/groups/${conv}`, { announcement: 'line one\nline two' }, a.token)).status, 200);
  });

  it('failed logins back off per account (capped), a known device is not held back, the right password after the wait works', async () => {
    const acc = await registerAndLogin(srv.url, { deviceId: 'owner-phone' });
    const attacker = (pw = 'wrong password 1') => tryLogin(acc.username, pw, 'attacker');
    assert.equal((await attacker()).body.error.code, 'bad_credentials');
    assert.equal((await attacker()).body.error.code, 'bad_credentials');
    assert.equal((await attacker()).body.error.code, 'bad_credentials', 'the third failure starts the backoff');
    const held = await attacker(PW);
    assert.equal(held.status, 429, 'even the right password waits: nothing is checked during the delay');
    assert.equal(held.body.error.code, 'rate_limited');
    assert.ok(held.body.error.retryAfterMs > 0 && held.body.error.retryAfterMs <= 800, `capped: ${held.body.error.retryAfterMs}`);
    // The owner's device has logged in before: the attacker's failures do not delay it.
    assert.equal((await tryLogin(acc.username, PW, 'owner-phone')).status, 200);
    // Repeated failures never hold the account longer than the cap.
    for (let i = 0; i < 4; i++) {
      const r = await attacker();
      if (r.status === 429) await new Promise((res) => setTimeout(res, r.body.error.retryAfterMs + 20));
    }
    const last = await attacker();
    if (last.status === 429) assert.ok(last.body.error.retryAfterMs <= 800);
    await new Promise((res) => setTimeout(res, 850));
    assert.equal((await tryLogin(acc.username, PW, 'attacker')).status, 200, 'after the wait the right password logs in');
    assert.equal((await tryLogin(acc.username, 'wrong password 1', 'attacker')).body.error.code, 'bad_credentials', 'success cleared the count');
  });

  it('password change requires the current password, refuses weak ones and revokes the other sessions', async () => {
    const web = await registerAndLogin(srv.url, { deviceId: 'w', platform: 'web' });
    const phone = await login(srv.url, web.username, 'p', 'ios');
    const { client: cp } = await RawClient.connect(srv.wsUrl, phone.token);
    const change = (body: unknown) => api(srv.url, 'POST', '/api/password', body, web.token);
    assert.equal((await change({ currentPassword: 'not it at all', newPassword: 'Fresh-Passphrase-92' })).body.error.code, 'bad_credentials');
    assert.equal((await change({ currentPassword: PW, newPassword: 'password' })).body.error.code, 'weak_password');
    const ok = await change({ currentPassword: PW, newPassword: 'Fresh-Passphrase-92' });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, { revoked: 1 });
    await cp.waitClose();
    assert.equal(cp.closeCode, 4101);
    assert.equal((await api(srv.url, 'GET', '/api/me', undefined, web.token)).status, 200, 'this session stays');
    assert.equal((await api(srv.url, 'GET', '/api/me', undefined, phone.token)).status, 401);
    assert.equal((await tryLogin(web.username, PW, 'x')).body.error.code, 'bad_credentials', 'the old password is gone');
    assert.equal((await tryLogin(web.username, 'Fresh-Passphrase-92', 'x')).status, 200);
  });

  it('account deletion: password required, sessions end, login impossible, name reserved, groups and friends handed over, messages stay', async () => {
    const del = await registerAndLogin(srv.url, { deviceId: 'dd' });
    const friend = await registerAndLogin(srv.url);
    const { client: cs } = await RawClient.connect(srv.wsUrl, del.token);
    // A friend, a DM, an owned group with a member, and an owned group alone.
    await api(srv.url, 'POST', '/api/friends/requests', { to: friend.userId }, del.token);
    assert.equal((await api(srv.url, 'POST', `/api/friends/requests/${del.userId}/accept`, undefined, friend.token)).status, 200);
    const sent = await api(srv.url, 'POST', '/api/messages', { clientMsgId: 'bye-1', to: friend.userId, kind: 'text', body: { text: 'hello' } }, del.token);
    assert.equal(sent.status, 200);
    const shared = (await api(srv.url, 'POST', '/api/groups', { name: 'shared', members: [friend.userId], joinPolicy: 'open' }, del.token)).body.group.conv;
    const alone = (await api(srv.url, 'POST', '/api/groups', { name: 'alone' }, del.token)).body.group.conv;

    const wrong = await api(srv.url, 'POST', '/api/account/delete', { password: 'not my password' }, del.token);
    assert.equal(wrong.body.error.code, 'bad_credentials');
    const ok = await api(srv.url, 'POST', '/api/account/delete', { password: PW }, del.token);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    await cs.waitClose();
    assert.equal(cs.closeCode, 4101);
    assert.equal((await api(srv.url, 'GET', '/api/me', undefined, del.token)).status, 401);
    assert.equal((await tryLogin(del.username, PW, 'dd')).body.error.code, 'bad_credentials');
    assert.equal((await register({ username: del.username.toUpperCase(), password: PW })).body.error.code, 'conflict', 'the name stays reserved');

    const seen = await api(srv.url, 'GET', `/api/users/${del.userId}`, undefined, friend.token);
    assert.equal(seen.body.user.nickname, 'Deleted account');
    const group = (await api(srv.url, 'GET', `/api/groups/${shared}`, undefined, friend.token)).body.group;
    assert.equal(group.owner, friend.userId, 'the owned group passed to the other member');
    assert.equal(group.memberCount, 1);
    assert.equal((await api(srv.url, 'GET', `/api/groups/${alone}`, undefined, friend.token)).body.group.dismissed, true);
    assert.deepEqual((await api(srv.url, 'GET', '/api/friends', undefined, friend.token)).body.items, []);
    const conv = sent.body.message.conv;
    const history = await api(srv.url, 'GET', `/api/conversations/${encodeURIComponent(conv)}/messages`, undefined, friend.token);
    assert.ok(history.body.messages.some((m: { sender: string; clientMsgId: string }) => m.sender === del.userId && m.clientMsgId === 'bye-1'), 'messages stay');
  });

  it('operator disable/enable and revoke-sessions close sockets with kicked{reason:"admin"}', async () => {
    const u = await registerAndLogin(srv.url, { deviceId: 'op' });
    assert.equal((await api(srv.url, 'POST', `/api/admin/users/${u.userId}/disable`, undefined, 'wrong-token-xxxxxxxx')).status, 401);
    const { client } = await RawClient.connect(srv.wsUrl, u.token);
    const d = await admin(`/api/admin/users/${u.userId}/disable`);
    assert.equal(d.status, 200);
    assert.equal(d.body.revoked, 1);
    assert.equal(d.body.user.disabled, true);
    const k = await client.waitFor((f) => f.type === 'kicked');
    assert.equal(k.reason, 'admin');
    await client.waitClose();
    assert.equal(client.closeCode, 4102);
    const refused = await tryLogin(u.username, PW, 'op');
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'account_disabled');
    assert.equal((await tryLogin(u.username, 'wrong password here', 'op')).body.error.code, 'bad_credentials', 'the state is told only after the right password');
    const raw = await RawClient.open(srv.wsUrl);
    const e = await raw.requestError({ type: 'hello', versions: [1], token: u.token, inboxSeq: 0 });
    assert.equal(e.code, 'unauthorized', 'the old token cannot connect');
    raw.close();

    assert.equal((await admin(`/api/admin/users/${u.userId}/enable`)).body.user.disabled, false);
    const back = await login(srv.url, u.username, 'op');
    const { client: c2 } = await RawClient.connect(srv.wsUrl, back.token);
    const r = await admin(`/api/admin/users/${u.userId}/revoke-sessions`);
    assert.deepEqual(r.body, { revoked: 1 });
    assert.equal((await c2.waitFor((f) => f.type === 'kicked')).reason, 'admin');
    await c2.waitClose();
    assert.equal(c2.closeCode, 4102);
    assert.equal((await admin(`/api/admin/users/nobody_here/disable`)).status, 404);
  });

  it('the data directory is private: 0700, files 0600', async () => {
    const mode = (p: string) => statSync(p).mode & 0o777;
    assert.equal(mode(srv.dataDir), 0o700);
    const files = readdirSync(srv.dataDir);
    // One database file: push (and its VAPID key) live in magpie.db since the push store moved onto the shared engine.
    assert.ok(files.includes('magpie.db') && !files.includes('push.db'), files.join(','));
    // Directories (media blobs and uploads) 0700, files 0600, all the way down.
    const walk = (dir: string): void => {
      for (const f of readdirSync(dir)) {
        const p = join(dir, f);
        if (statSync(p).isDirectory()) {
          assert.equal(mode(p), 0o700, p);
          walk(p);
        } else assert.equal(mode(p), 0o600, p);
      }
    };
    walk(srv.dataDir);
  });
});

describe('accounts: per-IP budget, hashing queue, existing data dir (issue 13)', () => {
  it('one IP spraying many accounts is stopped by its failure budget', async () => {
    const srv = await startServer({ env: { MAGPIE_IP_LOGIN_FAILURES_PER_MIN: '1', MAGPIE_IP_LOGIN_FAILURE_BURST: '4' } });
    try {
      const acc = await registerAndLogin(srv.url);
      const codes: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await api(srv.url, 'POST', '/api/login', { username: uniqueName('spray'), password: 'guess guess 1', deviceId: 'x', platform: 'web' });
        codes.push(r.body.error.code);
      }
      assert.deepEqual(codes.slice(0, 4), ['bad_credentials', 'bad_credentials', 'bad_credentials', 'bad_credentials']);
      assert.equal(codes.at(-1), 'rate_limited');
      const r = await api(srv.url, 'POST', '/api/login', { username: acc.username, password: PW, deviceId: 'y', platform: 'web' });
      assert.equal(r.body.error.code, 'rate_limited', 'every login from the IP waits');
      assert.ok(r.body.error.retryAfterMs > 0);
    } finally {
      await srv.stop();
    }
  });

  it('password checks beyond the pool and queue are refused with a retryable unavailable', async () => {
    const srv = await startServer({ env: { MAGPIE_HASH_CONCURRENCY: '1', MAGPIE_HASH_QUEUE: '1', MAGPIE_IP_LOGIN_FAILURES_PER_MIN: '100000', MAGPIE_IP_LOGIN_FAILURE_BURST: '100000' } });
    try {
      const rs = await Promise.all(
        Array.from({ length: 12 }, () => api(srv.url, 'POST', '/api/login', { username: uniqueName('flood'), password: 'guess guess 1', deviceId: 'x', platform: 'web' })),
      );
      const codes = rs.map((r) => r.body.error.code);
      assert.ok(codes.includes('unavailable'), codes.join(','));
      assert.ok(codes.includes('bad_credentials'), codes.join(','));
      const u = rs.find((r) => r.body.error.code === 'unavailable')!;
      assert.equal(u.status, 503);
      assert.ok(u.body.error.retryAfterMs > 0);
    } finally {
      await srv.stop();
    }
  });

  it('an existing world-readable data directory is made private at start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'magpie-perm-'));
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'old-notes.txt'), 'x', { mode: 0o644 });
    mkdirSync(join(dir, 'sub'), { mode: 0o755 });
    writeFileSync(join(dir, 'sub', 'f'), 'x', { mode: 0o666 });
    const srv = await startServer({ dataDir: dir });
    try {
      const mode = (p: string) => statSync(p).mode & 0o777;
      assert.equal(mode(dir), 0o700);
      assert.equal(mode(join(dir, 'old-notes.txt')), 0o600);
      assert.equal(mode(join(dir, 'sub')), 0o700);
      assert.equal(mode(join(dir, 'sub', 'f')), 0o600);
    } finally {
      await srv.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
