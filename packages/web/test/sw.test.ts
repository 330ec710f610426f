/**
 * The service worker (packages/web/public/sw.js) in a sandbox with fake `self`, IndexedDB,
 * fetch and clients: a push is shown and reported displayed; a click opens the exact
 * conversation only when the account signed in here is the push's target (and the server
 * agrees), otherwise the app opens with a notice and no conversation.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const SOURCE = readFileSync(new URL('../public/sw.js', import.meta.url), 'utf8');

interface Env {
  handlers: Record<string, (e: unknown) => void>;
  fetches: { path: string; body: unknown; auth: string | undefined }[];
  shown: { title: string; opts: { body: string; data: Record<string, string> } }[];
  opened: string[];
  posted: unknown[];
}

function load(opts: { session: { token: string; userId: string } | null; click?: Record<string, unknown>; windows?: string[] }): Env {
  const env: Env = { handlers: {}, fetches: [], shown: [], opened: [], posted: [] };
  const fakeIdb = {
    open() {
      const req: Record<string, unknown> = {};
      queueMicrotask(() => {
        const db = {
          close() {},
          transaction: () => ({
            objectStore: () => ({
              get() {
                const r: Record<string, unknown> = {};
                queueMicrotask(() => {
                  r.result = opts.session ?? undefined;
                  (r.onsuccess as () => void)();
                });
                return r;
              },
            }),
          }),
        };
        req.result = db;
        (req.onsuccess as () => void)();
      });
      return req;
    },
  };
  const self = {
    location: { origin: 'https://im.example' },
    addEventListener: (type: string, fn: (e: unknown) => void) => (env.handlers[type] = fn),
    skipWaiting() {},
    registration: {
      showNotification: async (title: string, o: Env['shown'][number]['opts']) => void env.shown.push({ title, opts: o }),
    },
    clients: {
      claim: async () => undefined,
      matchAll: async () =>
        (opts.windows ?? []).map((url) => ({
          url,
          focus: async () => undefined,
          postMessage: (m: unknown) => env.posted.push(m),
        })),
      openWindow: async (url: string) => void env.opened.push(url),
    },
  };
  const fetch = async (path: string, init: { body: string; headers: Record<string, string> }) => {
    env.fetches.push({ path, body: JSON.parse(init.body), auth: init.headers.authorization });
    const body = path === '/api/push/click' ? opts.click : { ok: 1, ignored: 0 };
    return { ok: true, json: async () => body };
  };
  vm.runInNewContext(SOURCE, { self, indexedDB: fakeIdb, fetch, URL, JSON, encodeURIComponent, queueMicrotask });
  return env;
}

async function dispatch(env: Env, type: string, event: Record<string, unknown>): Promise<void> {
  let waiting: Promise<unknown> = Promise.resolve();
  env.handlers[type]!({ ...event, waitUntil: (p: Promise<unknown>) => (waiting = p) });
  await waiting;
}

const click = (data: Record<string, string>) => ({ notification: { data, close() {} } });

describe('service worker', () => {
  it('shows a push and reports it displayed with its receipt', async () => {
    const env = load({ session: null });
    const payload = { title: 'Ann', body: 'hi', tag: 'c1', data: { r: 'job1.sig', uid: 'u1', conv: 'd:u1:u2', seq: '3' } };
    await dispatch(env, 'push', { data: { json: () => payload, text: () => JSON.stringify(payload) } });
    assert.equal(env.shown[0]?.title, 'Ann');
    assert.equal(env.shown[0]?.opts.data.conv, 'd:u1:u2');
    assert.deepEqual(env.fetches, [{ path: '/api/push/receipts', body: { receipt: 'job1.sig', event: 'displayed' }, auth: undefined }]);
  });

  it('a click for the signed-in account opens the exact conversation (asking the server with the session)', async () => {
    const env = load({ session: { token: 'tok-u1', userId: 'u1' }, click: { open: true, userId: 'u1', conv: 'g:42', seq: 7 } });
    await dispatch(env, 'notificationclick', click({ r: 'job2.sig', uid: 'u1', conv: 'g:42' }));
    assert.deepEqual(env.fetches[0], { path: '/api/push/click', body: { receipt: 'job2.sig' }, auth: 'Bearer tok-u1' });
    assert.deepEqual(env.opened, ['/c/g%3A42']);
  });

  it('a click while another account is signed in opens no conversation', async () => {
    const env = load({ session: { token: 'tok-u9', userId: 'u9' }, click: { open: false, reason: 'account_mismatch', userId: 'u1', conv: 'g:42' } });
    await dispatch(env, 'notificationclick', click({ r: 'job3.sig', uid: 'u1', conv: 'g:42' }));
    assert.deepEqual(env.opened, ['/?push=account_mismatch']);
  });

  it('even if the server said open, a different local account keeps the conversation closed', async () => {
    const env = load({ session: { token: 'tok-u9', userId: 'u9' }, click: { open: true, userId: 'u1', conv: 'g:42' } });
    await dispatch(env, 'notificationclick', click({ r: 'job4.sig', uid: 'u1', conv: 'g:42' }));
    assert.deepEqual(env.opened, ['/']);
  });

  it('signed out: no conversation; an open window is focused and told where to go', async () => {
    const env = load({ session: null, click: { open: false, reason: 'signed_out', userId: 'u1', conv: 'g:1' }, windows: ['https://im.example/contacts'] });
    await dispatch(env, 'notificationclick', click({ r: 'job5.sig', uid: 'u1', conv: 'g:1' }));
    assert.equal(env.fetches[0]?.auth, undefined);
    assert.deepEqual(env.opened, []);
    assert.deepEqual(JSON.parse(JSON.stringify(env.posted)), [{ type: 'magpie.open', url: '/?push=signed_out' }]);
  });
});
