import webpush from 'web-push';
import { CATEGORY_FIELDS } from '../policy.ts';
import type { PushDevice, ProviderResult } from '../types.ts';
import { header, post } from './http.ts';
import { MAX_PLAINTEXT } from './rfc8291.ts';
import { createEncryptor, type WebPushEncryptor } from './encrypt-pool.ts';
import { clientData, networkFailure, retryAfterMs, shortCollapseId, type ProviderMessage, type PushProviderAdapter } from './provider.ts';

export interface WebPushOptions {
  subject: string;
  publicKey: string;
  privateKey: string;
  timeoutMs: number;
  /** Worker threads that encrypt payloads (0 = on the event loop). Default 1. */
  encryptThreads?: number;
  /** A worker failed (its work is then done on the event loop). */
  onEncryptorError?: (err: Error) => void;
  now?: () => number;
}

export interface WebPushSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

/** VAPID tokens may live up to 24 h; we sign one per push service origin for 12 h and reuse it. */
const VAPID_TTL_S = 12 * 3600;

/**
 * Web Push: the payload is encrypted for the browser (RFC 8291, aes128gcm) with Node's
 * native crypto (./rfc8291.ts; the `web-push` library's encryption cost twice as much per
 * message, see there) and the request signed with our VAPID key (RFC 8292) by the
 * `web-push` library, one token per push service origin; the request goes out on the
 * keep-alive HTTP client. 404/410 mean the subscription is gone (removed); 429/5xx are retried.
 */
export class WebPushProvider implements PushProviderAdapter {
  readonly name = 'webpush' as const;
  private readonly vapid = new Map<string, { header: string; exp: number }>();
  private readonly now: () => number;
  private readonly encryptor: WebPushEncryptor;

  constructor(private readonly opts: WebPushOptions) {
    this.now = opts.now ?? Date.now;
    this.encryptor = createEncryptor(opts.encryptThreads ?? 1, opts.onEncryptorError);
  }

  private vapidHeader(endpoint: string): string {
    const audience = new URL(endpoint).origin;
    const nowS = Math.floor(this.now() / 1000);
    const have = this.vapid.get(audience);
    if (have && have.exp - nowS > 3600) return have.header;
    const exp = nowS + VAPID_TTL_S;
    const h = webpush.getVapidHeaders(audience, this.opts.subject, this.opts.publicKey, this.opts.privateKey, 'aes128gcm', exp);
    this.vapid.set(audience, { header: h.Authorization, exp });
    return h.Authorization;
  }

  /** The JSON the service worker receives (decrypted) in its `push` event. */
  payload(m: ProviderMessage): Record<string, unknown> {
    return {
      title: m.title,
      body: m.body,
      tag: m.collapseKey ? shortCollapseId(m.collapseKey) : m.pushId,
      count: m.count,
      category: m.category,
      data: clientData(m),
    };
  }

  async send(device: PushDevice, m: ProviderMessage): Promise<ProviderResult> {
    let sub: WebPushSubscription;
    let authorization: string;
    let body: Buffer;
    try {
      sub = JSON.parse(device.token) as WebPushSubscription;
      if (typeof sub?.endpoint !== 'string' || typeof sub.keys?.p256dh !== 'string' || typeof sub.keys.auth !== 'string') throw new Error('subscription needs endpoint, keys.p256dh and keys.auth');
      authorization = this.vapidHeader(sub.endpoint); // throws on an endpoint that is not a URL
    } catch (err) {
      return { outcome: 'invalid_token', status: 0, reason: `bad subscription: ${(err as Error).message}`.slice(0, 200) };
    }
    const plaintext = JSON.stringify(this.payload(m));
    const size = Buffer.byteLength(plaintext);
    if (size > MAX_PLAINTEXT) return { outcome: 'bad_request', status: 0, reason: `payload too large: ${size} > ${MAX_PLAINTEXT} bytes` };
    try {
      body = await this.encryptor.encrypt(plaintext, sub.keys.p256dh, sub.keys.auth);
    } catch (err) {
      // Bad p256dh/auth keys: the subscription can never work.
      return { outcome: 'invalid_token', status: 0, reason: (err as Error).message.slice(0, 200) };
    }
    try {
      const headers: Record<string, string> = {
        authorization,
        ttl: String(Math.max(0, Math.floor(m.ttlSeconds))),
        'content-encoding': 'aes128gcm',
        'content-type': 'application/octet-stream',
        urgency: CATEGORY_FIELDS[m.category].webpush.urgency,
      };
      if (m.collapseKey) headers.topic = shortCollapseId(m.collapseKey);
      const res = await post(sub.endpoint, headers, body, this.opts.timeoutMs);
      return classifyWebPush(res.status, res.text, header(res.headers, 'retry-after'), header(res.headers, 'location'));
    } catch (err) {
      return networkFailure(err);
    }
  }

  async close(): Promise<void> {
    await this.encryptor.close();
  }
}

/** Push service answers (RFC 8030 + the services' docs) → outcome. */
export function classifyWebPush(status: number, text: string, retryAfter: string | null, location?: string | null): ProviderResult {
  if (status >= 200 && status < 300) return { outcome: 'ok', status, ...(location ? { providerId: location } : {}) };
  const reason = text.slice(0, 200) || `HTTP ${status}`;
  if (status === 404 || status === 410) return { outcome: 'invalid_token', status, reason };
  if (status === 401 || status === 403) return { outcome: 'auth', status, reason };
  if (status === 429 || status >= 500) {
    const after = retryAfterMs(retryAfter);
    return { outcome: 'transient', status, reason, ...(after !== undefined ? { retryAfterMs: after } : {}) };
  }
  return { outcome: 'bad_request', status, reason };
}

/** A subscription endpoint must be https on an allowed push-service host (no requests to arbitrary hosts). */
export function endpointAllowed(endpoint: string, allowedHosts: string[], allowInsecure: boolean): boolean {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    return false;
  }
  if (u.protocol !== 'https:' && !(allowInsecure && u.protocol === 'http:')) return false;
  if (u.username || u.password) return false;
  const host = u.hostname.toLowerCase();
  return allowedHosts.some((h) => {
    const p = h.toLowerCase();
    return p.startsWith('*.') ? host.endsWith(p.slice(1)) && host.length > p.length - 1 : host === p;
  });
}

export function generateVapidKeys(): { publicKey: string; privateKey: string } {
  return webpush.generateVAPIDKeys();
}
