import { createCipheriv, createECDH, createHmac, randomFillSync, type ECDH } from 'node:crypto';

/**
 * Web Push message encryption (RFC 8291) in the aes128gcm content coding (RFC 8188), on
 * Node's native crypto.
 *
 * Why not the `web-push` library, which we still use for VAPID and key generation: its
 * `encrypt` (through `http_ece`) costs ≈ 277 µs per message on the benchmark machine and
 * made Web Push the one provider under the 2 000 pushes/s target (docs/benchmarks.md,
 * "Offline push"). Of that, ECDH (a new key object, key generation, the shared secret) is
 * ≈ 165 µs and the rest is JavaScript HKDF and buffer work. Here the ephemeral key pair is
 * regenerated in one reused ECDH object, the key schedule is five native HMAC-SHA-256 calls
 * and the record one native AES-128-GCM call: ≈ 130 µs, nearly all of it the unavoidable
 * P-256 scalar multiplication. Correctness is pinned by a test that reproduces RFC 8291
 * Appendix A byte for byte and by decrypting our output with `http_ece` (the library
 * `web-push` uses) and with the test push service's own decrypt.
 *
 * The output is one record (rs = 4096) with no padding beyond the 0x02 last-record
 * delimiter, exactly what `web-push` produced before.
 */

/** RFC 8188 record size we declare; one record carries the whole message. */
export const RECORD_SIZE = 4096;
/** salt (16) ‖ rs (4) ‖ idlen (1) ‖ keyid = the 65-byte uncompressed sender key. */
const HEADER_LENGTH = 16 + 4 + 1 + 65;
const TAG_LENGTH = 16;
/**
 * The largest plaintext we encrypt: push services take bodies up to 4 096 bytes
 * (RFC 8030 §7.2 lets them refuse more), so header + plaintext + delimiter + tag ≤ 4 096.
 */
export const MAX_PLAINTEXT = 4096 - HEADER_LENGTH - 1 - TAG_LENGTH;

const KEY_INFO_PREFIX = Buffer.from('WebPush: info\0', 'latin1');
const CEK_INFO = Buffer.from('Content-Encoding: aes128gcm\0\x01', 'latin1');
const NONCE_INFO = Buffer.from('Content-Encoding: nonce\0\x01', 'latin1');
const ONE = Buffer.from([1]);
const DELIMITER = Buffer.from([2]);

const hmac = (key: Buffer, ...data: Buffer[]): Buffer => {
  const h = createHmac('sha256', key);
  for (const d of data) h.update(d);
  return h.digest();
};

export interface EncryptOptions {
  /** Fixed sender (application server) private key, 32 bytes: tests only (RFC 8291 Appendix A). */
  senderPrivateKey?: Buffer;
  /** Fixed salt, 16 bytes: tests only. */
  salt?: Buffer;
}

/** Salts come from a pooled CSPRNG buffer: one RAND_bytes call per 256 messages instead of one each. */
const SALT_POOL = 16 * 256;
let saltPool = Buffer.alloc(0);
let saltAt = SALT_POOL;
function nextSalt(): Buffer {
  if (saltAt >= SALT_POOL) {
    saltPool = randomFillSync(Buffer.allocUnsafe(SALT_POOL));
    saltAt = 0;
  }
  return saltPool.subarray(saltAt, (saltAt += 16));
}

/** The one ECDH object whose key pair is regenerated for every message (saves a native object per push). */
let ephemeral: ECDH | null = null;

/**
 * Encrypt one push message for a subscription.
 * @param plaintext what the service worker receives
 * @param uaPublic the subscription's `p256dh` key: a 65-byte uncompressed P-256 point
 * @param authSecret the subscription's `auth` secret (16 bytes)
 * @returns the request body: RFC 8188 header (salt, rs, sender key) and the one record
 * @throws on a malformed subscription key or a plaintext over {@link MAX_PLAINTEXT}
 */
export function encryptAes128gcm(plaintext: Buffer, uaPublic: Buffer, authSecret: Buffer, opts: EncryptOptions = {}): Buffer {
  if (uaPublic.length !== 65 || uaPublic[0] !== 4) throw new Error('p256dh must be a 65-byte uncompressed P-256 point');
  if (authSecret.length < 16) throw new Error('auth secret must be at least 16 bytes');
  if (plaintext.length > MAX_PLAINTEXT) throw new Error(`payload too large: ${plaintext.length} > ${MAX_PLAINTEXT} bytes`);

  // A fresh sender key pair for every message (RFC 8291 §3.1, §5).
  let ecdh: ECDH;
  let asPublic: Buffer;
  if (opts.senderPrivateKey) {
    ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(opts.senderPrivateKey);
    asPublic = ecdh.getPublicKey();
  } else {
    ecdh = ephemeral ??= createECDH('prime256v1');
    asPublic = ecdh.generateKeys();
  }
  // Throws when uaPublic is not a point on the curve.
  const ecdhSecret = ecdh.computeSecret(uaPublic);

  // RFC 8291 §3.3–3.4. Every HKDF here produces one block (≤ 32 bytes), so each
  // HKDF = Extract (one HMAC) + Expand (one HMAC over info ‖ 0x01); two HMACs are cheaper
  // than crypto.hkdfSync, which builds key objects on every call (≈ 3× the cost).
  //   PRK_key = HMAC(auth_secret, ecdh_secret)
  //   IKM     = HMAC(PRK_key, "WebPush: info" ‖ 0x00 ‖ ua_public ‖ as_public ‖ 0x01)
  const prkKey = hmac(authSecret, ecdhSecret);
  const ikm = hmac(prkKey, KEY_INFO_PREFIX, uaPublic, asPublic, ONE);
  // RFC 8188 §2.2–2.3: PRK = HMAC(salt, IKM); CEK and NONCE expanded from it.
  const salt = opts.salt ?? nextSalt();
  if (salt.length !== 16) throw new Error('salt must be 16 bytes');
  const prk = hmac(salt, ikm);
  const cek = hmac(prk, CEK_INFO).subarray(0, 16);
  const nonce = hmac(prk, NONCE_INFO).subarray(0, 12);

  // The only record is the last: plaintext ‖ 0x02 (RFC 8188 §2: padding delimiter), no padding.
  const cipher = createCipheriv('aes-128-gcm', cek, nonce);
  const out = Buffer.allocUnsafe(HEADER_LENGTH + plaintext.length + 1 + TAG_LENGTH);
  salt.copy(out, 0);
  out.writeUInt32BE(RECORD_SIZE, 16);
  out[20] = 65;
  asPublic.copy(out, 21);
  let at = HEADER_LENGTH;
  at += cipher.update(plaintext).copy(out, at);
  at += cipher.update(DELIMITER).copy(out, at);
  at += cipher.final().copy(out, at);
  cipher.getAuthTag().copy(out, at);
  return out;
}
