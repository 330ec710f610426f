import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { createHash, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { CATEGORY_FIELDS } from '../policy.ts';
import type { PushDevice, ProviderResult } from '../types.ts';
import { clientData, networkFailure, shortCollapseId, type ProviderMessage, type PushProviderAdapter } from './provider.ts';

export interface ApnsOptions {
  teamId: string;
  keyId: string;
  /** The .p8 key (PEM, ES256). */
  key: string | KeyObject;
  /** Bundle id (apns-topic). */
  topic: string;
  url: string;
  sandboxUrl: string;
  /** Extra trusted CA (PEM) for a relay or a test server. */
  ca?: string | Buffer;
  timeoutMs: number;
  now?: () => number;
}

/** Apple asks for a new provider token at most every 20 minutes and at least every 60. */
const TOKEN_REFRESH_MS = 50 * 60 * 1000;

/**
 * APNs over HTTP/2 with token-based auth (ES256 JWT), one multiplexed connection per
 * environment. Answers are mapped as Apple documents them: 410 Unregistered and 400
 * BadDeviceToken / DeviceTokenNotForTopic remove the token; 403 ExpiredProviderToken makes
 * a new JWT; 429/500/503 are retried.
 */
export class ApnsProvider implements PushProviderAdapter {
  readonly name = 'apns' as const;
  private readonly key: KeyObject;
  private readonly sessions = new Map<string, ClientHttp2Session>();
  private jwt: { token: string; at: number } | null = null;
  private readonly now: () => number;

  constructor(private readonly opts: ApnsOptions) {
    this.key = typeof opts.key === 'string' ? createPrivateKey(opts.key) : opts.key;
    this.now = opts.now ?? Date.now;
  }

  /** The provider token (cached; `force` after Apple refused it). */
  providerToken(force = false): string {
    const now = this.now();
    if (!force && this.jwt && now - this.jwt.at < TOKEN_REFRESH_MS) return this.jwt.token;
    const header = b64url({ alg: 'ES256', kid: this.opts.keyId });
    const claims = b64url({ iss: this.opts.teamId, iat: Math.floor(now / 1000) });
    const sig = sign('sha256', Buffer.from(`${header}.${claims}`), { key: this.key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    this.jwt = { token: `${header}.${claims}.${sig}`, at: now };
    return this.jwt.token;
  }

  private session(url: string): ClientHttp2Session {
    const have = this.sessions.get(url);
    if (have && !have.closed && !have.destroyed) return have;
    const s = connect(url, this.opts.ca ? { ca: this.opts.ca } : {});
    const forget = () => {
      if (this.sessions.get(url) === s) this.sessions.delete(url);
    };
    s.on('error', forget);
    s.on('goaway', forget);
    s.on('close', forget);
    s.unref();
    this.sessions.set(url, s);
    return s;
  }

  payload(m: ProviderMessage): Record<string, unknown> {
    const f = CATEGORY_FIELDS[m.category].apns;
    return {
      aps: {
        alert: { title: m.title, body: m.body },
        sound: 'default',
        'mutable-content': 1,
        category: f.category,
        'interruption-level': f.interruptionLevel,
        ...(m.conv ? { 'thread-id': m.conv } : {}),
      },
      magpie: clientData(m),
    };
  }

  async send(device: PushDevice, m: ProviderMessage): Promise<ProviderResult> {
    const first = await this.post(device, m, false);
    if (first.outcome === 'auth' && (first.reason === 'ExpiredProviderToken' || first.reason === 'InvalidProviderToken')) return this.post(device, m, true);
    return first;
  }

  private post(device: PushDevice, m: ProviderMessage, forceToken: boolean): Promise<ProviderResult> {
    const f = CATEGORY_FIELDS[m.category].apns;
    const body = Buffer.from(JSON.stringify(this.payload(m)));
    const headers: Record<string, string | number> = {
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: `/3/device/${encodeURIComponent(device.token)}`,
      authorization: `bearer ${this.providerToken(forceToken)}`,
      'apns-topic': this.opts.topic,
      'apns-push-type': 'alert',
      'apns-priority': String(f.priority),
      'apns-expiration': String(Math.floor(this.now() / 1000) + m.ttlSeconds),
      'apns-id': uuidOf(m.pushId),
      'content-type': 'application/json',
      'content-length': body.length,
    };
    if (m.collapseKey) headers['apns-collapse-id'] = shortCollapseId(m.collapseKey);
    return new Promise<ProviderResult>((resolve) => {
      let req;
      try {
        req = this.session(device.sandbox ? this.opts.sandboxUrl : this.opts.url).request(headers);
      } catch (err) {
        resolve(networkFailure(err));
        return;
      }
      let status = 0;
      let apnsId: string | undefined;
      const chunks: Buffer[] = [];
      req.setTimeout(this.opts.timeoutMs, () => {
        req.close(constants.NGHTTP2_CANCEL);
        resolve({ outcome: 'transient', status: 0, reason: 'timeout' });
      });
      req.on('response', (h) => {
        status = Number(h[constants.HTTP2_HEADER_STATUS]);
        apnsId = h['apns-id'] as string | undefined;
      });
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(classifyApns(status, Buffer.concat(chunks).toString('utf8'), apnsId)));
      req.on('error', (err) => resolve(networkFailure(err)));
      req.end(body);
    });
  }

  async close(): Promise<void> {
    for (const s of this.sessions.values()) s.close();
    this.sessions.clear();
  }
}

/** APNs status + reason → outcome (developer.apple.com "Handling notification responses from APNs"). */
export function classifyApns(status: number, text: string, apnsId?: string): ProviderResult {
  if (status === 200) return { outcome: 'ok', status, ...(apnsId ? { providerId: apnsId } : {}) };
  let reason = '';
  try {
    reason = String((JSON.parse(text) as { reason?: string }).reason ?? '');
  } catch {
    reason = text.slice(0, 100);
  }
  if (status === 410) return { outcome: 'invalid_token', status, reason: reason || 'Unregistered' };
  if (status === 400 && (reason === 'BadDeviceToken' || reason === 'DeviceTokenNotForTopic')) return { outcome: 'invalid_token', status, reason };
  if (status === 403) return { outcome: 'auth', status, reason };
  if (status === 429 || status >= 500) return { outcome: 'transient', status, reason };
  return { outcome: 'bad_request', status, reason };
}

function b64url(o: unknown): string {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}

/** apns-id must be a UUID; derive one from our push id so retries of one job carry the same id. */
function uuidOf(id: string): string {
  const h = createHash('sha256').update(id).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
