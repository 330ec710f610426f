/* Magpie service worker: shows Web Push notifications, reports them displayed, and on a
 * click opens the exact conversation — but only when the account signed in here is the
 * account the push was for (the server checks it too: POST /api/push/click). */
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

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
