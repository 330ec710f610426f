import { useSyncExternalStore } from 'react';

/** A tiny router over the History API (the server answers every client path with index.html). */
const listeners = new Set<() => void>();

function notify(): void {
  for (const l of [...listeners]) l();
}

addEventListener('popstate', notify);

export function navigate(path: string, opts: { replace?: boolean } = {}): void {
  if (path === location.pathname + location.search) return;
  if (opts.replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  notify();
}

function subscribe(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

const snapshot = () => location.pathname + location.search;

export function usePath(): string {
  return useSyncExternalStore(subscribe, snapshot);
}

export type Route =
  | { name: 'chats' }
  | { name: 'chat'; conv: string }
  /** A merged-forward card opened: message `seq` of `conv`; `path` indexes nested bundles inside it. */
  | { name: 'bundle'; conv: string; seq: number; path: number[] }
  | { name: 'dm'; peer: string }
  | { name: 'group'; conv: string }
  | { name: 'newGroup' }
  | { name: 'contacts' }
  | { name: 'search' }
  | { name: 'settings' }
  | { name: 'wallet' }
  | { name: 'notifications' }
  | { name: 'login' }
  | { name: 'register' };

export function parseRoute(path: string): Route {
  const p = path.split('?')[0]!.split('/').filter(Boolean).map(decodeURIComponent);
  switch (p[0]) {
    case 'c':
      if (p[1] && p[2] === 'bundle' && /^\d+$/.test(p[3] ?? '')) return { name: 'bundle', conv: p[1], seq: Number(p[3]), path: bundleIndexes(path) };
      return p[1] ? { name: 'chat', conv: p[1] } : { name: 'chats' };
    case 'dm':
      return p[1] ? { name: 'dm', peer: p[1] } : { name: 'chats' };
    case 'g':
      return p[1] ? { name: 'group', conv: p[1] } : { name: 'chats' };
    case 'new-group':
      return { name: 'newGroup' };
    case 'contacts':
      return { name: 'contacts' };
    case 'search':
      return { name: 'search' };
    case 'settings':
      return { name: 'settings' };
    case 'wallet':
      return { name: 'wallet' };
    case 'notifications':
      return { name: 'notifications' };
    case 'login':
      return { name: 'login' };
    case 'register':
      return { name: 'register' };
    default:
      return { name: 'chats' };
  }
}

export const chatPath = (conv: string) => `/c/${encodeURIComponent(conv)}`;
/** A chat opened at one message (a search hit): `?seq=N`. */
export const messagePath = (conv: string, seq: number) => `${chatPath(conv)}?seq=${seq}`;
export const groupPath = (conv: string) => `/g/${encodeURIComponent(conv)}`;

/** The nested-bundle indexes of a bundle path's `?in=0.2` (bad parts are dropped). */
function bundleIndexes(path: string): number[] {
  const q = new URLSearchParams(path.split('?')[1] ?? '').get('in');
  if (!q) return [];
  return q
    .split('.')
    .filter((x) => /^\d+$/.test(x))
    .map(Number);
}

/** A merged-forward card of message `seq`, opened; `path`: the indexes of the nested cards opened inside it. */
export const bundlePath = (conv: string, seq: number, path: readonly number[] = []) => `${chatPath(conv)}/bundle/${seq}${path.length > 0 ? `?in=${path.join('.')}` : ''}`;
