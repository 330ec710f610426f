import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createECDH, randomBytes, type ECDH } from 'node:crypto';
import { createRequire } from 'node:module';
import { encryptAes128gcm, MAX_PLAINTEXT, RECORD_SIZE } from '../src/push/providers/rfc8291.ts';
import { decryptAes128gcm } from '../src/testing/webpush-server.ts';
import { InlineEncryptor, WorkerEncryptor } from '../src/push/providers/encrypt-pool.ts';
import { FakeWebPush } from '../src/testing/webpush-server.ts';
import { WebPushProvider, generateVapidKeys } from '../src/push/providers/webpush.ts';
import type { ProviderMessage } from '../src/push/providers/provider.ts';
import type { PushDevice } from '../src/push/types.ts';

/** http_ece is the RFC 8188 library `web-push` encrypts with; here it is the independent reader. */
const ece = createRequire(import.meta.url)('http_ece') as {
  decrypt(buffer: Buffer, params: { version: 'aes128gcm'; privateKey: ECDH; authSecret: string }): Buffer;
};

const b64 = (s: string) => Buffer.from(s, 'base64url');

/** RFC 8291 Appendix A (line breaks removed). */
const RFC8291 = {
  plaintext: 'When I grow up, I want to be a watermelon',
  asPublic: 'BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8',
  asPrivate: 'yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw',
  uaPublic: 'BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4',
  uaPrivate: 'q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94',
  salt: 'DGv6ra1nlYgDCS1FRnbzlw',
  authSecret: 'BTBZMqHH6r4Tts7J_aSIgg',
  header: 'DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8',
  ciphertext: '8pfeW0KbunFT06SuDKoJH9Ql87S1QUrdirN6GcG7sFz1y1sqLgVi1VhjVkHsUoEsbI_0LpXMuGvnzQ',
};

function browser(): { ecdh: ECDH; p256dh: Buffer; auth: Buffer } {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return { ecdh, p256dh: ecdh.getPublicKey(), auth: randomBytes(16) };
}

describe('Web Push encryption (RFC 8291 aes128gcm, native crypto)', () => {
  it('reproduces RFC 8291 Appendix A byte for byte', () => {
    const body = encryptAes128gcm(Buffer.from(RFC8291.plaintext), b64(RFC8291.uaPublic), b64(RFC8291.authSecret), {
      senderPrivateKey: b64(RFC8291.asPrivate),
      salt: b64(RFC8291.salt),
    });
    assert.equal(body.subarray(0, 86).toString('base64url'), RFC8291.header);
    assert.equal(body.subarray(86).toString('base64url'), RFC8291.ciphertext);
    assert.equal(body.subarray(21, 86).toString('base64url'), RFC8291.asPublic);
    // The browser's side of the same vector: both decrypters read it.
    const ua = createECDH('prime256v1');
    ua.setPrivateKey(b64(RFC8291.uaPrivate));
    assert.equal(decryptAes128gcm(body, ua, b64(RFC8291.authSecret)).toString(), RFC8291.plaintext);
    assert.equal(ece.decrypt(body, { version: 'aes128gcm', privateKey: ua, authSecret: RFC8291.authSecret }).toString(), RFC8291.plaintext);
  });

  it('http_ece (what web-push uses) and the test push service decrypt what we produce, at every size class', () => {
    const ua = browser();
    for (const n of [0, 1, 15, 16, 17, 300, 1000, 3000, MAX_PLAINTEXT]) {
      const plain = randomBytes(n);
      const body = encryptAes128gcm(plain, ua.p256dh, ua.auth);
      assert.equal(body.length, 86 + n + 1 + 16, `size ${n}`);
      assert.ok(body.length <= 4096);
      assert.equal(body.readUInt32BE(16), RECORD_SIZE);
      assert.equal(body[20], 65);
      assert.deepEqual(ece.decrypt(body, { version: 'aes128gcm', privateKey: ua.ecdh, authSecret: ua.auth.toString('base64url') }), plain, `http_ece, size ${n}`);
      assert.deepEqual(decryptAes128gcm(body, ua.ecdh, ua.auth), plain, `fake, size ${n}`);
    }
  });

  it('a fresh sender key and salt for every message; the wrong auth secret does not decrypt', () => {
    const ua = browser();
    const plain = Buffer.from('{"title":"x"}');
    const one = encryptAes128gcm(plain, ua.p256dh, ua.auth);
    const two = encryptAes128gcm(plain, ua.p256dh, ua.auth);
    assert.notDeepEqual(one.subarray(21, 86), two.subarray(21, 86), 'sender key reused');
    assert.notDeepEqual(one.subarray(0, 16), two.subarray(0, 16), 'salt reused');
    assert.throws(() => decryptAes128gcm(one, ua.ecdh, randomBytes(16)));
    assert.throws(() => decryptAes128gcm(one, browser().ecdh, ua.auth));
  });

  it('refuses keys that are not P-256 points and payloads over one 4 096-byte push', () => {
    const ua = browser();
    assert.throws(() => encryptAes128gcm(Buffer.from('x'), Buffer.alloc(65, 4), ua.auth));
    assert.throws(() => encryptAes128gcm(Buffer.from('x'), ua.p256dh.subarray(1), ua.auth));
    assert.throws(() => encryptAes128gcm(Buffer.from('x'), ua.p256dh, ua.auth.subarray(0, 8)));
    assert.throws(() => encryptAes128gcm(Buffer.alloc(MAX_PLAINTEXT + 1), ua.p256dh, ua.auth), /too large/);
  });
});

describe('Web Push encryption off the event loop (worker pool)', () => {
  const b64u = (b: Buffer) => b.toString('base64url');

  it('a batch from one turn goes to the workers; every body decrypts to its own payload; a bad key fails only its item', async () => {
    const enc = new WorkerEncryptor(2);
    try {
      const uas = Array.from({ length: 50 }, browser);
      const jobs = uas.map((ua, i) => enc.encrypt(JSON.stringify({ i, text: 'ü'.repeat(i * 7) }), b64u(ua.p256dh), b64u(ua.auth)));
      const bad = enc.encrypt('{}', b64u(Buffer.alloc(65, 4)), b64u(randomBytes(16)));
      const bodies = await Promise.all(jobs);
      await assert.rejects(bad);
      bodies.forEach((body, i) => {
        assert.deepEqual(JSON.parse(decryptAes128gcm(body, uas[i]!.ecdh, uas[i]!.auth).toString()), { i, text: 'ü'.repeat(i * 7) });
      });
      // Later turns keep working (the workers stay up).
      const ua = browser();
      const again = await enc.encrypt('"later"', b64u(ua.p256dh), b64u(ua.auth));
      assert.equal(decryptAes128gcm(again, ua.ecdh, ua.auth).toString(), '"later"');
    } finally {
      await enc.close();
    }
  });

  it('a worker that dies loses nothing: its unanswered items and later ones are encrypted inline', async () => {
    const errors: Error[] = [];
    const enc = new WorkerEncryptor(1, (e) => errors.push(e));
    try {
      const ua = browser();
      await enc.encrypt('"warm"', b64u(ua.p256dh), b64u(ua.auth)); // the worker is up
      const pending = Array.from({ length: 20 }, (_, i) => enc.encrypt(`"${i}"`, b64u(ua.p256dh), b64u(ua.auth)));
      // Kill it while the batch is in flight.
      const slots = (enc as unknown as { slots: { worker: { terminate(): Promise<number> } }[] }).slots;
      await slots[0]!.worker.terminate();
      const bodies = await Promise.all(pending);
      bodies.forEach((b, i) => assert.equal(decryptAes128gcm(b, ua.ecdh, ua.auth).toString(), `"${i}"`));
      const after = await enc.encrypt('"after"', b64u(ua.p256dh), b64u(ua.auth));
      assert.equal(decryptAes128gcm(after, ua.ecdh, ua.auth).toString(), '"after"');
      assert.equal(errors.length, 1);
    } finally {
      await enc.close();
    }
  });

  it('inline (threads = 0) gives the same format', async () => {
    const ua = browser();
    const body = await new InlineEncryptor().encrypt('"x"', b64u(ua.p256dh), b64u(ua.auth));
    assert.equal(decryptAes128gcm(body, ua.ecdh, ua.auth).toString(), '"x"');
  });
});

describe('WebPushProvider.send (adapter, default worker encryption)', () => {
  let fake: FakeWebPush;
  let provider: WebPushProvider;
  const vapid = generateVapidKeys();
  before(async () => {
    fake = await new FakeWebPush().start();
    fake.expectedVapidKey = vapid.publicKey;
    provider = new WebPushProvider({ subject: 'mailto:ops@magpie.test', ...vapid, timeoutMs: 5000 });
  });
  after(async () => {
    await provider.close();
    await fake.stop();
  });
  const device = (token: string): PushDevice => ({
    userId: 'u', deviceId: 'd', platform: 'web', provider: 'webpush', token, vendor: null, sandbox: false,
    appVersion: '1', locale: 'en', timeZone: 'UTC', permission: 'granted', lastSeen: 0, createdAt: 0, updatedAt: 0,
  });
  const message = (over: Partial<ProviderMessage> = {}): ProviderMessage => ({
    pushId: 'p1', receipt: 'r', category: 'im', title: 'alice', body: 'hi', count: 1, collapseKey: 'c:1', targetUserId: 'u',
    conv: 'c1', seq: 7, data: {}, ttlSeconds: 3600, ...over,
  });

  it('the push service verifies VAPID and decrypts; concurrent sends each reach their own subscription', async () => {
    const subs = Array.from({ length: 20 }, () => fake.subscribe());
    const results = await Promise.all(subs.map((sub, i) => provider.send(device(JSON.stringify(sub)), message({ body: `hi ${i}` }))));
    for (const r of results) assert.equal(r.outcome, 'ok', JSON.stringify(r));
    assert.deepEqual(fake.errors, []);
    subs.forEach((sub, i) => {
      const got = fake.received.items.find((x) => x.id === sub.endpoint.split('/').pop());
      assert.equal(got?.payload.body, `hi ${i}`);
      assert.equal(got?.headers.urgency, 'high');
      assert.equal(got?.headers.ttl, '3600');
      assert.equal(got?.vapid.k, vapid.publicKey);
    });
  });

  it('a key that is not a P-256 point or an endpoint that is not a URL: invalid_token; an oversized payload: bad_request', async () => {
    const sub = fake.subscribe();
    const badKey = await provider.send(device(JSON.stringify({ ...sub, keys: { ...sub.keys, p256dh: Buffer.alloc(65, 4).toString('base64url') } })), message());
    assert.equal(badKey.outcome, 'invalid_token');
    const badUrl = await provider.send(device(JSON.stringify({ ...sub, endpoint: 'not a url' })), message());
    assert.equal(badUrl.outcome, 'invalid_token');
    const big = await provider.send(device(JSON.stringify(sub)), message({ body: 'x'.repeat(MAX_PLAINTEXT) }));
    assert.equal(big.outcome, 'bad_request');
    assert.match(big.reason ?? '', /too large/);
  });
});
