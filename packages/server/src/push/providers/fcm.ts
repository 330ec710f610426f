import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { CATEGORY_FIELDS } from '../policy.ts';
import type { PushDevice, ProviderResult } from '../types.ts';
import { header, post } from './http.ts';
import { clientData, networkFailure, retryAfterMs, shortCollapseId, type ProviderMessage, type PushProviderAdapter } from './provider.ts';

export interface ServiceAccount {
  client_email: string;
  private_key: string;
  private_key_id?: string;
  token_uri?: string;
}

export interface FcmOptions {
  projectId: string;
  serviceAccount: ServiceAccount;
  /** https://fcm.googleapis.com, or a test server. */
  endpoint: string;
  /** OAuth2 token endpoint; default: the service account's token_uri. */
  tokenUrl?: string;
  timeoutMs: number;
  now?: () => number;
}

const SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';

/**
 * FCM HTTP v1 (`projects/{id}/messages:send`) with fetch, authenticated by an OAuth2
 * access token obtained from a service-account JWT (RS256, jwt-bearer grant) and cached
 * until shortly before it expires.
 *
 * IM pushes go out as data messages with high priority, so the app renders the
 * notification itself and can report delivered/displayed; iOS devices on FCM get an alert.
 */
export class FcmProvider implements PushProviderAdapter {
  readonly name = 'fcm' as const;
  private readonly key: KeyObject;
  private readonly tokenUrl: string;
  private readonly sendUrl: URL;
  private token: { value: string; expiresAt: number } | null = null;
  private refreshing: Promise<string> | null = null;
  private readonly now: () => number;

  constructor(private readonly opts: FcmOptions) {
    this.key = createPrivateKey(opts.serviceAccount.private_key);
    this.tokenUrl = opts.tokenUrl ?? opts.serviceAccount.token_uri ?? 'https://oauth2.googleapis.com/token';
    this.sendUrl = new URL(`${opts.endpoint.replace(/\/$/, '')}/v1/projects/${encodeURIComponent(opts.projectId)}/messages:send`);
    this.now = opts.now ?? Date.now;
  }

  /** A valid access token (single flight: concurrent sends share one refresh). */
  async accessToken(force = false): Promise<string> {
    if (!force && this.token && this.token.expiresAt - 60_000 > this.now()) return this.token.value;
    if (this.refreshing) return this.refreshing;
    this.refreshing = this.fetchToken().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async fetchToken(): Promise<string> {
    const iat = Math.floor(this.now() / 1000);
    const header = b64url({ alg: 'RS256', typ: 'JWT', ...(this.opts.serviceAccount.private_key_id ? { kid: this.opts.serviceAccount.private_key_id } : {}) });
    const claims = b64url({ iss: this.opts.serviceAccount.client_email, scope: SCOPE, aud: this.tokenUrl, iat, exp: iat + 3600 });
    const sig = sign('sha256', Buffer.from(`${header}.${claims}`), this.key).toString('base64url');
    const res = await fetch(this.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: `${header}.${claims}.${sig}` }).toString(),
      signal: AbortSignal.timeout(this.opts.timeoutMs),
    });
    const body = (await res.json().catch(() => ({}))) as { access_token?: string; expires_in?: number; error?: string };
    if (!res.ok || !body.access_token) throw new Error(`FCM token endpoint answered ${res.status} ${body.error ?? ''}`.trim());
    this.token = { value: body.access_token, expiresAt: this.now() + (body.expires_in ?? 3600) * 1000 };
    return body.access_token;
  }

  message(device: PushDevice, m: ProviderMessage): Record<string, unknown> {
    const f = CATEGORY_FIELDS[m.category].fcm;
    const collapse = m.collapseKey ? shortCollapseId(m.collapseKey) : undefined;
    const data = { ...clientData(m), title: m.title, body: m.body, channel: f.channelId };
    const msg: Record<string, unknown> = {
      token: device.token,
      data,
      android: {
        priority: f.priority,
        ttl: `${m.ttlSeconds}s`,
        ...(collapse ? { collapse_key: collapse } : {}),
      },
    };
    if (device.platform === 'ios') {
      msg.apns = {
        headers: { 'apns-priority': String(CATEGORY_FIELDS[m.category].apns.priority), ...(collapse ? { 'apns-collapse-id': collapse } : {}) },
        payload: { aps: { alert: { title: m.title, body: m.body }, sound: 'default', 'mutable-content': 1, ...(m.conv ? { 'thread-id': m.conv } : {}) } },
      };
    }
    return { message: msg };
  }

  async send(device: PushDevice, m: ProviderMessage): Promise<ProviderResult> {
    const first = await this.post(device, m, false);
    if (first.outcome === 'auth' && first.status === 401) return this.post(device, m, true);
    return first;
  }

  private async post(device: PushDevice, m: ProviderMessage, forceToken: boolean): Promise<ProviderResult> {
    let token: string;
    try {
      token = await this.accessToken(forceToken);
    } catch (err) {
      return { outcome: 'auth', status: 0, reason: (err as Error).message.slice(0, 200) };
    }
    try {
      const res = await post(this.sendUrl, { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, JSON.stringify(this.message(device, m)), this.opts.timeoutMs);
      return classifyFcm(res.status, res.text, header(res.headers, 'retry-after'));
    } catch (err) {
      return networkFailure(err);
    }
  }

  async close(): Promise<void> {}
}

interface FcmErrorBody {
  error?: {
    code?: number;
    message?: string;
    status?: string;
    details?: { '@type'?: string; errorCode?: string; fieldViolations?: { field?: string; description?: string }[] }[];
  };
}

/**
 * FCM v1 answers → outcome (firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode).
 * UNREGISTERED and SENDER_ID_MISMATCH remove the token; INVALID_ARGUMENT removes it only when
 * the token is the field at fault (otherwise our payload was wrong); UNAVAILABLE, INTERNAL
 * and QUOTA_EXCEEDED are retried, honouring Retry-After.
 */
export function classifyFcm(status: number, text: string, retryAfter: string | null): ProviderResult {
  let body: FcmErrorBody & { name?: string } = {};
  try {
    body = JSON.parse(text) as FcmErrorBody & { name?: string };
  } catch {
    // keep the HTTP status only
  }
  if (status === 200) return { outcome: 'ok', status, ...(body.name ? { providerId: body.name } : {}) };
  const details = body.error?.details ?? [];
  const code = details.find((d) => d.errorCode)?.errorCode ?? body.error?.status ?? `HTTP_${status}`;
  const after = retryAfterMs(retryAfter);
  if (code === 'UNREGISTERED' || code === 'SENDER_ID_MISMATCH') return { outcome: 'invalid_token', status, reason: code };
  if (code === 'INVALID_ARGUMENT') {
    const tokenAtFault =
      details.some((d) => d.fieldViolations?.some((v) => v.field === 'message.token')) || /registration token/i.test(body.error?.message ?? '');
    return { outcome: tokenAtFault ? 'invalid_token' : 'bad_request', status, reason: code };
  }
  if (code === 'UNAVAILABLE' || code === 'INTERNAL' || code === 'QUOTA_EXCEEDED' || status === 429 || status >= 500) {
    return { outcome: 'transient', status, reason: code, ...(after !== undefined ? { retryAfterMs: after } : {}) };
  }
  if (status === 401 || code === 'THIRD_PARTY_AUTH_ERROR' || code === 'UNAUTHENTICATED' || status === 403) return { outcome: 'auth', status, reason: code };
  return { outcome: 'bad_request', status, reason: code };
}

function b64url(o: unknown): string {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}
