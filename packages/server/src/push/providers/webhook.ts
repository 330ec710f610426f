import { createHmac } from 'node:crypto';
import { CATEGORY_FIELDS } from '../policy.ts';
import type { PushDevice, ProviderResult } from '../types.ts';
import { header, post } from './http.ts';
import { clientData, networkFailure, retryAfterMs, shortCollapseId, type ProviderMessage, type PushProviderAdapter } from './provider.ts';

export interface WebhookOptions {
  url: string;
  secret: string;
  timeoutMs: number;
}

/**
 * Generic HTTP webhook for phone makers' channels (Huawei, Xiaomi, OPPO, vivo, Honor): the
 * operator's relay turns this JSON into the vendor's API call. The body carries the
 * category already mapped to each vendor's fields, and is signed:
 * `X-Magpie-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.
 *
 * The relay answers 2xx (accepted, optional `{"id"}`), 404/410 or `{"error":"invalid_token"}`
 * (token dead: removed), 400/422 (bad request), 429/5xx (retried, Retry-After honoured).
 */
export class WebhookProvider implements PushProviderAdapter {
  readonly name = 'webhook' as const;

  constructor(private readonly opts: WebhookOptions) {}

  body(device: PushDevice, m: ProviderMessage): Record<string, unknown> {
    const vendor = device.vendor ?? 'huawei';
    return {
      vendor,
      token: device.token,
      pushId: m.pushId,
      category: m.category,
      vendorFields: CATEGORY_FIELDS[m.category].vendor[vendor],
      notification: { title: m.title, body: m.body, count: m.count },
      collapseKey: m.collapseKey ? shortCollapseId(m.collapseKey) : null,
      ttlSeconds: m.ttlSeconds,
      data: clientData(m),
    };
  }

  async send(device: PushDevice, m: ProviderMessage): Promise<ProviderResult> {
    const body = JSON.stringify(this.body(device, m));
    try {
      const res = await post(
        this.opts.url,
        { 'content-type': 'application/json', 'x-magpie-signature': `sha256=${createHmac('sha256', this.opts.secret).update(body).digest('hex')}` },
        body,
        this.opts.timeoutMs,
      );
      return classifyWebhook(res.status, res.text, header(res.headers, 'retry-after'));
    } catch (err) {
      return networkFailure(err);
    }
  }

  async close(): Promise<void> {}
}

export function classifyWebhook(status: number, text: string, retryAfter: string | null): ProviderResult {
  let parsed: { id?: string; error?: string } = {};
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    // plain text answer
  }
  if (status >= 200 && status < 300) return { outcome: 'ok', status, ...(parsed.id ? { providerId: String(parsed.id) } : {}) };
  const reason = parsed.error ?? (text.slice(0, 200) || `HTTP ${status}`);
  if (status === 404 || status === 410 || parsed.error === 'invalid_token') return { outcome: 'invalid_token', status, reason };
  if (status === 401 || status === 403) return { outcome: 'auth', status, reason };
  if (status === 429 || status >= 500) {
    const after = retryAfterMs(retryAfter);
    return { outcome: 'transient', status, reason, ...(after !== undefined ? { retryAfterMs: after } : {}) };
  }
  return { outcome: 'bad_request', status, reason };
}
