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
