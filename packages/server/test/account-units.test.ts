/** Issue 13 units: login backoff, the bounded scrypt pool, the display-text/URL validator, username keys. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MagpieError, avatarUrl, displayName, safeText, usernameKey, Username } from '@magpie/protocol';
import { LoginThrottle } from '../src/services/login-throttle.ts';
import { PasswordHasher, hashPassword } from '../src/util/passwords.ts';
import { checkPasswordStrength } from '../src/util/password-policy.ts';
import { usernameKeyBackfill } from '../src/db/migrations/0004-core.ts';

describe('LoginThrottle', () => {
  const limits = { freeFailures: 2, backoffBaseMs: 1000, backoffMaxMs: 4000, forgetAfterMs: 60_000, ipFailuresPerMinute: 6, ipFailureBurst: 5 };

  it('delays exponentially after the free failures, never beyond the cap, and a success clears it', () => {
    let t = 0;
    const th = new LoginThrottle(limits, () => t);
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      t += th.wait('alice', undefined);
      th.failure('alice', undefined);
      delays.push(th.wait('alice', undefined));
    }
    assert.deepEqual(delays, [0, 0, 1000, 2000, 4000, 4000]);
    assert.equal(th.wait('alice\u0000known-device', undefined), 0, 'another key (a known device) is not held back');
    t += 4000;
    assert.equal(th.wait('alice', undefined), 0, 'after the delay an attempt is checked');
    th.success('alice');
    th.failure('alice', undefined);
    assert.equal(th.wait('alice', undefined), 0, 'counting starts over');
  });

  it('forgets failures after a quiet period', () => {
    let t = 0;
    const th = new LoginThrottle(limits, () => t);
    for (let i = 0; i < 3; i++) th.failure('bob', undefined);
    assert.ok(th.wait('bob', undefined) > 0);
    t += 60_000;
    assert.equal(th.wait('bob', undefined), 0);
  });

  it('one IP has a failure budget across accounts', () => {
    let t = 0;
    const th = new LoginThrottle(limits, () => t);
    for (let i = 0; i < 5; i++) th.failure(`user${i}`, '10.0.0.1');
    assert.equal(th.wait('someone-else', '10.0.0.1'), 0, 'the burst is allowed');
    th.failure('user9', '10.0.0.1');
    const w = th.wait('someone-else', '10.0.0.1');
    assert.ok(w > 0 && w <= 10_000, `waits ~one refill (${w})`);
    assert.equal(th.wait('someone-else', '10.0.0.2'), 0, 'other addresses are not affected');
  });
});

describe('PasswordHasher', () => {
  it('runs at most `concurrency` scrypt hashes, queues `queue` more, refuses the rest with a retryable unavailable', async () => {
    const h = new PasswordHasher({ concurrency: 1, queue: 2 });
    const stored = await hashPassword('correct horse');
    const calls = Array.from({ length: 5 }, () => h.verify('correct horse', stored).then((ok) => ({ ok }), (e: unknown) => ({ e })));
    assert.deepEqual(h.load, { running: 1, waiting: 2 });
    const out = await Promise.all(calls);
    assert.deepEqual(out.slice(0, 3), [{ ok: true }, { ok: true }, { ok: true }]);
    for (const r of out.slice(3)) {
      const e = (r as { e: MagpieError }).e;
      assert.ok(e instanceof MagpieError);
      assert.equal(e.code, 'unavailable');
      assert.ok((e.retryAfterMs ?? 0) > 0);
    }
    assert.deepEqual(h.load, { running: 0, waiting: 0 });
  });
});

describe('password policy (zxcvbn-ts)', () => {
  it('refuses common and trivial passwords with a reason, accepts passphrases', async () => {
    for (const pw of ['password', 'aaaaaaaa', '        ', '12345678', 'iloveyou2']) {
      await assert.rejects(checkPasswordStrength(pw, 2), (e: unknown) => e instanceof MagpieError && e.code === 'weak_password' && e.message.length > 5, pw);
    }
    await assert.rejects(checkPasswordStrength('marvin_the_bird', 2, ['marvin_the_bird']), /./, 'the username itself');
    await checkPasswordStrength('correct horse', 2);
    await checkPasswordStrength('Fresh-Passphrase-92', 2);
    await checkPasswordStrength('password', 0);
  });
});

describe('display text and URL validator (protocol package)', () => {
  const ok = (schema: { safeParse(v: unknown): { success: boolean } }, v: unknown) => schema.safeParse(v).success;
  it('display names: controls, bidi overrides/isolates/marks, invisible characters are refused; emoji and scripts pass', () => {
    const name = displayName(64);
    for (const bad of ['a\u0000', 'a\u0007b', 'x\u202Ey', '\u2066x\u2069', 'a\u200Fb', 'a\u200Bb', 'a\uFEFFb', '\u00AD', 'a\u2028b', '\uE000', ' ', '\u200D', 'a\nb', 'x'.repeat(65)]) {
      assert.equal(ok(name, bad), false, JSON.stringify(bad));
    }
    for (const good of ['Zoë', '👩‍💻 dev', 'مرحبا', 'שלום', '李雷', 'नमस्ते', 'Ａｌｉｃｅ']) assert.equal(ok(name, good), true, good);
    assert.equal(name.parse('  spaced  '), 'spaced');
  });
  it('multi-line text allows newlines and tabs only', () => {
    assert.equal(ok(safeText(100), 'a\nb\tc'), true);
    assert.equal(ok(safeText(100), 'a\u202Eb'), false);
    assert.equal(ok(safeText(100), 'a\u0001'), false);
  });
  it('avatar URLs: http(s) or a path on this server', () => {
    const url = avatarUrl(2048);
    for (const good of ['https://cdn.example/a.png', 'http://h.example/x?y=1', '/files/a.png', '']) assert.equal(ok(url, good), true, good);
    for (const bad of ['javascript:alert(1)', 'JAVASCRIPT:alert(1)', ' javascript:x', 'data:image/png;base64,AA', '//evil.example/a', 'ftp://h/x', 'https://u:p@h.example/', 'relative/x.png', '/a\\b', 'https://h.example/\u202E']) {
      assert.equal(ok(url, bad), false, bad);
    }
  });
  it('usernames: NFKC at register, NFKC + case fold as the key', () => {
    assert.equal(Username.parse('ａｌｉｃｅ'), 'alice');
    assert.equal(ok(Username, 'al ice'), false);
    assert.equal(usernameKey('Alice'), usernameKey('ａＬＩＣＥ'));
  });
  it('backfill: the older of two case-variant legacy names keeps the key', () => {
    assert.deepEqual(
      usernameKeyBackfill([{ id: 'u1', username: 'Bob' }, { id: 'u2', username: 'bob' }, { id: 'u3', username: 'Carol' }], ['carol']),
      [{ id: 'u1', key: 'bob' }, { id: 'u2', key: 'bob#u2' }, { id: 'u3', key: 'carol#u3' }],
    );
  });
});
