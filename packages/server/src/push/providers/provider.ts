import { createHash } from 'node:crypto';
import type { PushCategory, PushDevice, PushProviderName, ProviderResult } from '../types.ts';

/** What every provider adapter is given for one notification to one device. */
export interface ProviderMessage {
  pushId: string;
  /** Signed receipt the device sends back with delivered / displayed / clicked reports. */
  receipt: string;
  category: PushCategory;
  title: string;
  body: string;
  count: number;
  /** Replaces an earlier notification with the same key on the device (apns-collapse-id, FCM tag, Web Push Topic). */
  collapseKey: string | null;
  /** The account this push is for: a client opens the conversation only when this account is signed in. */
  targetUserId: string;
  conv: string | null;
  seq: number;
  data: Record<string, string>;
  ttlSeconds: number;
}

/** One push interface; one adapter per provider. `send` never throws: every outcome is a ProviderResult. */
export interface PushProviderAdapter {
  readonly name: PushProviderName;
  send(device: PushDevice, m: ProviderMessage): Promise<ProviderResult>;
  close(): Promise<void>;
}

/**
 * The data block every client gets, as flat strings (FCM data must be strings):
 * pid push id, r receipt, uid target account, cat category, conv/seq the conversation to
 * open, n the count, plus the push's own data.
 */
export function clientData(m: ProviderMessage): Record<string, string> {
  return {
    ...m.data,
    pid: m.pushId,
    r: m.receipt,
    uid: m.targetUserId,
    cat: m.category,
    n: String(m.count),
    ...(m.conv ? { conv: m.conv, seq: String(m.seq) } : {}),
  };
}

/** Network failures and timeouts are transient: the job is retried. */
export function networkFailure(err: unknown): ProviderResult {
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string } };
  const reason = e.name === 'TimeoutError' || e.name === 'AbortError' ? 'timeout' : (e.cause?.code ?? e.code ?? e.message ?? 'network_error');
  return { outcome: 'transient', status: 0, reason: String(reason).slice(0, 200) };
}

/** Retry-After in seconds or as an HTTP date, as milliseconds. */
export function retryAfterMs(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const s = Number(value);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const t = Date.parse(value);
  return Number.isFinite(t) ? Math.max(0, t - now) : undefined;
}

/** A collapse key that fits every provider: ≤ 32 URL-safe characters (Web Push Topic is the tightest). */
export function shortCollapseId(key: string): string {
  if (/^[A-Za-z0-9_-]{1,32}$/.test(key)) return key;
  return createHash('sha256').update(key).digest().toString('base64url').slice(0, 32);
}
