/**
 * Web Push on this device: the service worker, the permission prompt (only after a click,
 * at a moment the user cares — after their first message), and the subscription the
 * server sends pushes to (`PUT /api/push/device`). Logout removes the binding.
 */
import { t } from './i18n/index.ts';

export type PushStatus =
  /** The browser has no service workers, Push API or notifications (or this is not a secure context). */
  | 'unsupported'
  /** The server has Web Push turned off. */
  | 'unavailable'
  /** Not asked yet. */
  | 'default'
  /** The user blocked notifications for this site: only the browser's site settings can undo it. */
  | 'denied'
  /** Allowed and subscribed: pushes arrive while Magpie is closed. */
  | 'on'
  /** Allowed, but the subscription could not be made (no push service reachable). */
  | 'failed';

const DISMISS_KEY = 'magpie.push.dismissedAt';
const ASK_AGAIN_MS = 7 * 86_400_000;

export function pushSupported(): boolean {
  return typeof window !== 'undefined' && window.isSecureContext && 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
}

let registration: Promise<ServiceWorkerRegistration | null> | null = null;

/** Register /sw.js once (it shows pushes and reports displayed/clicked). */
export function registerServiceWorker(): Promise<ServiceWorkerRegistration | null> {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return Promise.resolve(null);
  registration ??= navigator.serviceWorker.register('/sw.js', { scope: '/' }).catch((err: unknown) => {
    console.warn('[magpie] service worker not registered:', err);
    return null;
  });
  return registration;
}

interface PushConfig {
  providers: string[];
  vapidPublicKey: string | null;
}

let config: Promise<PushConfig | null> | null = null;
function pushConfig(): Promise<PushConfig | null> {
  config ??= fetch('/api/push/config')
    .then((r) => (r.ok ? (r.json() as Promise<PushConfig>) : null))
    .catch(() => null);
  return config;
}

/** Where this device stands (no prompt). */
export async function pushStatus(): Promise<PushStatus> {
  if (!pushSupported()) return 'unsupported';
  const cfg = await pushConfig();
  if (!cfg?.vapidPublicKey || !cfg.providers.includes('webpush')) return 'unavailable';
  if (Notification.permission === 'denied') return 'denied';
  if (Notification.permission === 'default') return 'default';
  const reg = await registerServiceWorker();
  const sub = await reg?.pushManager.getSubscription().catch(() => null);
  return sub ? 'on' : 'failed';
}

/** Ask for permission (call from a click) and subscribe; returns the new status. */
export async function enablePush(token: string): Promise<PushStatus> {
  if (!pushSupported()) return 'unsupported';
  const cfg = await pushConfig();
  if (!cfg?.vapidPublicKey) return 'unavailable';
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') {
    if (permission === 'denied') localStorage.setItem(DISMISS_KEY, String(Date.now()));
    return permission === 'denied' ? 'denied' : 'default';
  }
  try {
    const reg = await registerServiceWorker();
    if (!reg) return 'failed';
    await navigator.serviceWorker.ready;
    const sub = (await reg.pushManager.getSubscription()) ?? (await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: base64UrlToBytes(cfg.vapidPublicKey) }));
    const res = await fetch('/api/push/device', {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        provider: 'webpush',
        subscription: sub.toJSON(),
        platform: 'web',
        permission: 'granted',
        locale: navigator.language.slice(0, 35),
        timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone,
      }),
    });
    return res.ok ? 'on' : 'failed';
  } catch (err) {
    console.warn('[magpie] push subscription failed:', err);
    return 'failed';
  }
}

/** The in-app prompt shows after the user's first message here, unless dismissed in the last week. */
export function shouldOfferPush(status: PushStatus, sentHere: boolean): boolean {
  if (status !== 'default' || !sentHere) return false;
  const at = Number(localStorage.getItem(DISMISS_KEY) ?? 0);
  return Date.now() - at > ASK_AGAIN_MS;
}

export function dismissPushOffer(): void {
  localStorage.setItem(DISMISS_KEY, String(Date.now()));
}

/** How to undo a block, per browser family. */
export function unblockHelp(): string {
  const ua = navigator.userAgent;
  if (/Firefox\//.test(ua)) return t('push.helpFirefox');
  if (/Safari\//.test(ua) && !/Chrom/.test(ua)) return t('push.helpSafari');
  return t('push.helpChrome');
}

function base64UrlToBytes(s: string): Uint8Array<ArrayBuffer> {
  const b64 = (s + '='.repeat((4 - (s.length % 4)) % 4)).replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64);
  const out = new Uint8Array(new ArrayBuffer(bin.length));
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
