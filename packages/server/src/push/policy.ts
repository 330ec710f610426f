import { messagePreview, type Message } from '@magpie/protocol';
import type { PushCategory, PushUserSettings } from './types.ts';

/**
 * Push policy that needs no I/O: how each category maps onto the providers' fields, quiet
 * hours in a device's time zone, notification text (with privacy mode), backoff.
 */

/** Per category, the providers' priority / channel / category fields. Documented in docs/architecture.md. */
export const CATEGORY_FIELDS = {
  im: {
    apns: { priority: 10, interruptionLevel: 'active', category: 'MAGPIE_IM' },
    fcm: { priority: 'HIGH', channelId: 'magpie_im', notificationPriority: 'PRIORITY_HIGH' },
    webpush: { urgency: 'high' },
    vendor: {
      huawei: { importance: 'NORMAL', category: 'IM' },
      xiaomi: { channelId: 'magpie_im', notifyLevel: 'high' },
      oppo: { category: 'IM', notifyLevel: 16 },
      vivo: { classification: 1, category: 'IM' },
      honor: { importance: 'NORMAL' },
    },
  },
  transaction: {
    apns: { priority: 10, interruptionLevel: 'time-sensitive', category: 'MAGPIE_TRANSACTION' },
    fcm: { priority: 'HIGH', channelId: 'magpie_transaction', notificationPriority: 'PRIORITY_HIGH' },
    webpush: { urgency: 'high' },
    vendor: {
      huawei: { importance: 'NORMAL', category: 'ACCOUNT' },
      xiaomi: { channelId: 'magpie_transaction', notifyLevel: 'high' },
      oppo: { category: 'ORDER', notifyLevel: 16 },
      vivo: { classification: 1, category: 'ORDER' },
      honor: { importance: 'NORMAL' },
    },
  },
  followed: {
    apns: { priority: 5, interruptionLevel: 'passive', category: 'MAGPIE_FOLLOWED' },
    fcm: { priority: 'NORMAL', channelId: 'magpie_followed', notificationPriority: 'PRIORITY_DEFAULT' },
    webpush: { urgency: 'normal' },
    vendor: {
      huawei: { importance: 'NORMAL', category: 'SUBSCRIPTION' },
      xiaomi: { channelId: 'magpie_followed', notifyLevel: 'normal' },
      oppo: { category: 'SUBSCRIPTION', notifyLevel: 2 },
      vivo: { classification: 1, category: 'SUBSCRIPTION' },
      honor: { importance: 'NORMAL' },
    },
  },
  marketing: {
    apns: { priority: 5, interruptionLevel: 'passive', category: 'MAGPIE_MARKETING' },
    fcm: { priority: 'NORMAL', channelId: 'magpie_marketing', notificationPriority: 'PRIORITY_LOW' },
    webpush: { urgency: 'low' },
    vendor: {
      huawei: { importance: 'LOW', category: 'MARKETING' },
      xiaomi: { channelId: 'magpie_marketing', notifyLevel: 'low' },
      oppo: { category: 'MARKETING', notifyLevel: 2 },
      vivo: { classification: 0, category: 'MARKETING' },
      honor: { importance: 'LOW' },
    },
  },
} as const satisfies Record<PushCategory, unknown>;

/** IM and transaction pushes carry private content: a click opens them only for the account they were for. */
export function requiresAccount(category: PushCategory): boolean {
  return category === 'im' || category === 'transaction';
}

// --- time zones and quiet hours ---

const formatters = new Map<string, Intl.DateTimeFormat>();

/** True when `tz` is an IANA time zone this runtime knows. */
export function isTimeZone(tz: string): boolean {
  try {
    formatter(tz);
    return true;
  } catch {
    return false;
  }
}

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    formatters.set(tz, f);
  }
  return f;
}

/** Seconds since local midnight at `now` in `tz`. */
export function localSecondOfDay(now: number, tz: string): number {
  let h = 0;
  let m = 0;
  let s = 0;
  for (const p of formatter(tz).formatToParts(new Date(now))) {
    if (p.type === 'hour') h = Number(p.value) % 24;
    else if (p.type === 'minute') m = Number(p.value);
    else if (p.type === 'second') s = Number(p.value);
  }
  return h * 3600 + m * 60 + s;
}

const toSec = (hhmm: string): number => {
  const [h, m] = hhmm.split(':').map(Number);
  return (h! * 60 + m!) * 60;
};

/** 0 outside the window; inside it, milliseconds until the window ends (the window may wrap midnight). */
export function quietDelayMs(now: number, tz: string, window: { start: string; end: string } | null): number {
  if (!window) return 0;
  const start = toSec(window.start);
  const end = toSec(window.end);
  if (start === end) return 0;
  const t = localSecondOfDay(now, tz);
  const inside = start < end ? t >= start && t < end : t >= start || t < end;
  if (!inside) return 0;
  const wait = (end - t + 86_400) % 86_400;
  return wait * 1000 - (now % 1000);
}

/** The quiet window for a user: their own, none ('off'), or the server default. */
export function quietWindowFor(settings: PushUserSettings, serverDefault: { start: string; end: string } | null): { start: string; end: string } | null {
  if (settings.quietHours === 'off') return null;
  return settings.quietHours ?? serverDefault;
}

/** UTC day "YYYY-MM-DD" (quota and statistics days). */
export function utcDay(now: number): string {
  return new Date(now).toISOString().slice(0, 10);
}

// --- notification text ---

const TEXT = {
  en: { one: 'New message', many: (n: number) => `${n} new messages`, more: (n: number) => `[${n}] ` },
  zh: { one: '你有一条新消息', many: (n: number) => `你有 ${n} 条新消息`, more: (n: number) => `[${n}条] ` },
} as const;

function lang(locale: string): keyof typeof TEXT {
  return locale.toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

/** A short preview of a message body: text as is; media as "[Image]", "[Voice] 0:12", … in the user's language. */
export function preview(message: Pick<Message, 'kind' | 'body'>, max = 120, locale = 'en'): string {
  const text = messagePreview(message.kind, message.body, locale).replace(/\s+/g, ' ').trim();
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * Title and body of an IM notification. Privacy mode ('hide') shows neither sender nor text:
 * only the app name and how many messages wait.
 */
export function imText(opts: { senderName: string; message: Pick<Message, 'kind' | 'body'>; count: number; hide: boolean; appName: string; locale: string }): { title: string; body: string } {
  const t = TEXT[lang(opts.locale)];
  if (opts.hide) return { title: opts.appName, body: opts.count > 1 ? t.many(opts.count) : t.one };
  return { title: opts.senderName, body: (opts.count > 1 ? t.more(opts.count) : '') + preview(opts.message, 120, opts.locale) };
}

/** Hidden text for a non-IM push under privacy mode. */
export function hiddenText(appName: string, locale: string): { title: string; body: string } {
  return { title: appName, body: TEXT[lang(locale)].one };
}

/** Exponential backoff with full jitter, at least the provider's Retry-After. */
export function backoffMs(attempt: number, base: number, max: number, retryAfterMs?: number, rand: () => number = Math.random): number {
  const cap = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  const jittered = cap / 2 + rand() * (cap / 2);
  return Math.max(Math.round(jittered), retryAfterMs ?? 0);
}
