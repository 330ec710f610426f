/* Magpie service worker: shows Web Push notifications, reports them displayed, and on a
 * click opens the exact conversation — but only when the account signed in here is the
 * account the push was for (the server checks it too: POST /api/push/click).
 *
 * It also keeps an offline app shell: the build's files (index.html, the hashed assets, the
 * icon) are cached on install, and a page load while offline gets the cached index.html, so
 * the app opens from IndexedDB and says it is offline instead of the browser's error page. */

/* The build replaces this list with the files of dist/ (packages/web/vite.config.ts); in
 * `vite dev` it stays empty and the shell is cached as pages and assets load. */
const PRECACHE = /*__MAGPIE_PRECACHE__*/ [];
const BUILD = /*__MAGPIE_BUILD__*/ 'dev';
const SHELL_CACHE = 'magpie-shell-' + BUILD;
/** Every client route answers with index.html: it is cached under this one key. */
const SHELL_KEY = '/';

self.addEventListener('install', (event) => {
  self.skipWaiting();
  event.waitUntil(precache());
});

self.addEventListener('activate', (event) =>
  event.waitUntil(
    (async () => {
      // A new build: drop the old build's files.
      for (const name of await caches.keys()) if (name.startsWith('magpie-shell-') && name !== SHELL_CACHE) await caches.delete(name);
      await self.clients.claim();
    })(),
  ),
);

async function precache() {
  try {
    const cache = await caches.open(SHELL_CACHE);
    await cache.addAll(PRECACHE);
  } catch {
    // Offline or a file is gone (a newer build is live): the shell fills in as pages load.
  }
}

function isShellPath(path) {
  return path.startsWith('/assets/') || PRECACHE.includes(path);
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith('/api/') || url.pathname === '/ws' || url.pathname === '/metrics') return;
  if (req.mode === 'navigate') event.respondWith(navigation(req));
  else if (isShellPath(url.pathname)) event.respondWith(cacheFirst(req, url.pathname));
});

/**
 * How long a page load waits for the network before it gets the cached shell. A network that
 * is down fails at once; one that swallows packets (a dead Wi-Fi, a server that stopped
 * answering) would hold the page on a blank screen until the browser gives up, minutes later.
 */
const NAVIGATION_TIMEOUT_MS = 3000;

/** Pages: the network first (a new build shows at once), the cached shell when it fails or is slow. */
async function navigation(req) {
  const network = fetch(req).then((res) => {
    if (res.ok && (res.headers.get('content-type') || '').startsWith('text/html')) {
      const copy = res.clone();
      caches.open(SHELL_CACHE).then((c) => c.put(SHELL_KEY, copy)).catch(() => undefined);
    }
    return res;
  });
  const shell = () => caches.open(SHELL_CACHE).then((c) => c.match(SHELL_KEY)).catch(() => undefined);
  let timer;
  const slow = new Promise((resolve) => (timer = setTimeout(resolve, NAVIGATION_TIMEOUT_MS)));
  try {
    const first = await Promise.race([network, slow.then(() => null)]);
    if (first) return first;
    // The network is slow: the cached shell now, if there is one (the response still refreshes the cache).
    network.catch(() => undefined);
    return (await shell()) || (await network);
  } catch (err) {
    const cached = await shell();
    if (cached) return cached;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Hashed assets never change under one name: the cache first, the network once. */
async function cacheFirst(req, path) {
  const cache = await caches.open(SHELL_CACHE);
  const hit = await cache.match(path);
  if (hit) return hit;
  const res = await fetch(req);
  if (res.ok) cache.put(path, res.clone()).catch(() => undefined);
  return res;
}

function readSession() {
  return new Promise((resolve) => {
    const open = indexedDB.open('magpie-session', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('kv');
    open.onerror = () => resolve(null);
    open.onsuccess = () => {
      const db = open.result;
      try {
        const r = db.transaction('kv').objectStore('kv').get('session');
        r.onsuccess = () => {
          resolve(r.result || null);
          db.close();
        };
        r.onerror = () => {
          resolve(null);
          db.close();
        };
      } catch {
        resolve(null);
        db.close();
      }
    };
  });
}

function post(path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = 'Bearer ' + token;
  return fetch(path, { method: 'POST', headers, body: JSON.stringify(body) });
}

self.addEventListener('push', (event) => {
  let p = {};
  try {
    p = event.data ? event.data.json() : {};
  } catch {
    p = { title: 'Magpie', body: event.data ? event.data.text() : '' };
  }
  const data = p.data || {};
  event.waitUntil(
    (async () => {
      await self.registration.showNotification(p.title || 'Magpie', {
        body: p.body || '',
        tag: p.tag || undefined,
        renotify: !!p.tag,
        icon: '/icon.svg',
        data,
      });
      if (data.r) await post('/api/push/receipts', { receipt: data.r, event: 'displayed' }).catch(() => undefined);
    })(),
  );
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  event.waitUntil(
    (async () => {
      const session = await readSession();
      let url = '/';
      if (data.r) {
        const res = await post('/api/push/click', { receipt: data.r }, session && session.token).catch(() => null);
        const r = res && res.ok ? await res.json().catch(() => null) : null;
        if (r && r.open && r.conv && session && session.userId === r.userId) url = '/c/' + encodeURIComponent(r.conv);
        else if (r && !r.open) url = '/?push=' + encodeURIComponent(r.reason || 'account_mismatch');
      } else if (data.conv && session && data.uid === session.userId) {
        url = '/c/' + encodeURIComponent(data.conv);
      } else if (data.uid && (!session || data.uid !== session.userId)) {
        url = '/?push=account_mismatch';
      }
      const wins = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      for (const w of wins) {
        if (new URL(w.url).origin !== self.location.origin) continue;
        await w.focus();
        w.postMessage({ type: 'magpie.open', url });
        return;
      }
      await self.clients.openWindow(url);
    })(),
  );
});
