import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createDecipheriv, createECDH, createHmac, createPublicKey, randomBytes, type ECDH } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { FailureScript, Inbox, readBody, verifyJwt } from './common.ts';

export interface WebPushReceived {
  id: string;
  /** The decrypted payload (JSON). */
  payload: Record<string, any>;
  headers: { ttl: string; urgency?: string; topic?: string };
  vapid: { sub: string; aud: string; exp: number; k: string };
  at: number;
}

interface Sub {
  ecdh: ECDH;
  auth: Buffer;
}

/**
 * A local Web Push service (RFC 8030) that plays the browser too: `subscribe()` makes a
 * subscription with its own P-256 key and auth secret, as PushManager.subscribe would.
 * A POST to the endpoint must carry `Authorization: vapid t=<JWT>, k=<key>` whose ES256
 * JWT verifies with k, has aud = this origin, exp within 24 h and a mailto:/https: sub
 * (RFC 8292), plus TTL and `Content-Encoding: aes128gcm`; the body is decrypted as RFC 8291
 * specifies (ECDH + HKDF with the auth secret, AES-128-GCM, padding delimiter 0x02).
 * Answers 201; 410 for unsubscribed endpoints; 401/403 for VAPID failures; 400 when the
 * payload does not decrypt; scripted 429/503 with Retry-After.
 */
export class FakeWebPush {
  readonly received = new Inbox<WebPushReceived>();
  readonly failures = new FailureScript<{ status: number; retryAfter?: number }>();
  readonly log: [string, number][] = [];
  readonly errors: string[] = [];
  private readonly subs = new Map<string, Sub>();
  private readonly verified = new Map<string, Record<string, unknown>>();
  /** When set, the VAPID key (k) must be this one (the server's public key). */
  expectedVapidKey: string | null = null;
  private server!: Server;
  url = '';
  delayMs = 0;

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** A new browser subscription, as the service worker would send to the server. */
  subscribe(): { endpoint: string; expirationTime: null; keys: { p256dh: string; auth: string } } {
    const id = randomBytes(12).toString('base64url');
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const auth = randomBytes(16);
    this.subs.set(id, { ecdh, auth });
    return { endpoint: `${this.url}/push/${id}`, expirationTime: null, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') } };
  }

  /** The browser unsubscribed (or the user revoked permission): the endpoint answers 410 from now on. */
  unsubscribe(endpoint: string): void {
    this.subs.delete(endpoint.split('/').pop()!);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    const id = /^\/push\/([\w-]+)$/.exec(req.url ?? '')?.[1] ?? '';
    const reply = (status: number, text = '', headers: Record<string, string> = {}) => {
      this.log.push([id, status]);
      if (status >= 400 && status !== 410 && status !== 429 && status !== 503) this.errors.push(`${status} ${text}`);
      res.writeHead(status, { 'content-type': 'text/plain', ...headers });
      res.end(text);
    };
    if (req.method !== 'POST') return reply(405, 'method');
    const sub = this.subs.get(id);
    if (!sub) return reply(410, 'push subscription has unsubscribed or expired.');
    // VAPID (RFC 8292)
    const m = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(String(req.headers.authorization ?? ''));
    if (!m) return reply(401, 'missing or malformed VAPID authorization');
    const [, jwt, k] = m as unknown as [string, string, string];
    let claims: Record<string, unknown>;
    try {
      // Push services verify a VAPID token once and cache it while it is valid.
      const cacheKey = `${jwt} ${k}`;
      claims = this.verified.get(cacheKey) ?? verifyJwt(jwt, rawP256ToKey(Buffer.from(k, 'base64url')), 'ES256').claims;
      this.verified.set(cacheKey, claims);
    } catch (err) {
      return reply(403, `VAPID JWT: ${(err as Error).message}`);
    }
    if (this.expectedVapidKey && k !== this.expectedVapidKey) return reply(403, 'VAPID key does not match the subscription');
    const now = Date.now() / 1000;
    if (claims.aud !== this.url) return reply(403, `VAPID aud ${String(claims.aud)} is not ${this.url}`);
    if (typeof claims.exp !== 'number' || claims.exp < now || claims.exp > now + 24 * 3600) return reply(403, 'VAPID exp must be within 24 hours');
    if (typeof claims.sub !== 'string' || !/^(mailto:|https:)/.test(claims.sub)) return reply(403, 'VAPID sub must be mailto: or https:');
    // Headers
    const ttl = req.headers.ttl;
    if (ttl === undefined || !/^\d+$/.test(String(ttl))) return reply(400, 'TTL header required');
    if (req.headers['content-encoding'] !== 'aes128gcm') return reply(415, 'Content-Encoding must be aes128gcm');
    if (body.length > 4096) return reply(413, 'payload too large');
    const topic = req.headers.topic as string | undefined;
    if (topic !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(topic)) return reply(400, 'bad Topic');
    // Scripted failures come after validation, as a real service would check first.
    const fail = this.failures.take(id);
    if (fail) return reply(fail.status, 'try again later', fail.retryAfter !== undefined ? { 'retry-after': String(fail.retryAfter) } : {});
    let payload: Record<string, any>;
    try {
      payload = JSON.parse(decryptAes128gcm(body, sub.ecdh, sub.auth).toString('utf8')) as Record<string, any>;
    } catch (err) {
      return reply(400, `payload does not decrypt: ${(err as Error).message}`);
    }
    reply(201, '', { location: `${this.url}/message/${randomBytes(6).toString('hex')}` });
    this.received.push({
      id,
      payload,
      headers: { ttl: String(ttl), ...(req.headers.urgency ? { urgency: String(req.headers.urgency) } : {}), ...(topic ? { topic } : {}) },
      vapid: { sub: String(claims.sub), aud: String(claims.aud), exp: Number(claims.exp), k },
      at: Date.now(),
    });
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

function rawP256ToKey(raw: Buffer) {
  if (raw.length !== 65 || raw[0] !== 4) throw new Error('k must be an uncompressed P-256 point');
  return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: raw.subarray(1, 33).toString('base64url'), y: raw.subarray(33).toString('base64url') }, format: 'jwk' });
}

const hmac = (key: Buffer, data: Buffer): Buffer => createHmac('sha256', key).update(data).digest();

/** RFC 8291 §3.4 + RFC 8188: decrypt one aes128gcm message as the user agent does. */
export function decryptAes128gcm(msg: Buffer, ua: ECDH, authSecret: Buffer): Buffer {
  if (msg.length < 21) throw new Error('too short');
  const salt = msg.subarray(0, 16);
  const rs = msg.readUInt32BE(16);
  const idlen = msg[20]!;
  const asPublic = msg.subarray(21, 21 + idlen);
  if (idlen !== 65) throw new Error(`keyid must be the 65-byte sender key, got ${idlen}`);
  const records = msg.subarray(21 + idlen);
  if (records.length > rs) throw new Error('more than one record');
  const uaPublic = ua.getPublicKey();
  const ecdhSecret = ua.computeSecret(asPublic);
  // IKM = HKDF(auth_secret, ecdh_secret, "WebPush: info" || 0x00 || ua_public || as_public, 32)
  const prkKey = hmac(authSecret, ecdhSecret);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), uaPublic, asPublic, Buffer.from([1])]);
  const ikm = hmac(prkKey, keyInfo);
  // PRK = HKDF-Extract(salt, IKM); CEK and NONCE per RFC 8188
  const prk = hmac(salt, ikm);
  const cek = hmac(prk, Buffer.from('Content-Encoding: aes128gcm\0\x01', 'binary')).subarray(0, 16);
  const nonce = hmac(prk, Buffer.from('Content-Encoding: nonce\0\x01', 'binary')).subarray(0, 12);
  const tag = records.subarray(records.length - 16);
  const d = createDecipheriv('aes-128-gcm', cek, nonce);
  d.setAuthTag(tag);
  const plain = Buffer.concat([d.update(records.subarray(0, records.length - 16)), d.final()]);
  // Strip padding: the last record ends with 0x02 followed by zero bytes.
  let end = plain.length - 1;
  while (end >= 0 && plain[end] === 0) end--;
  if (end < 0 || plain[end] !== 2) throw new Error('missing padding delimiter 0x02 (last record)');
  return plain.subarray(0, end);
}
