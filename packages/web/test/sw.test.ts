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

/** The worker's page loads, with a network that answers after `networkMs` (never, with Infinity) or fails. */
function loadNavigation(network: { ms: number; fail?: boolean }, cachedShell: string | null) {
  const handlers: Record<string, (e: unknown) => void> = {};
  const self = { location: { origin: 'https://im.example' }, addEventListener: (type: string, fn: (e: unknown) => void) => (handlers[type] = fn), skipWaiting() {}, clients: {} };
  const timers: ReturnType<typeof setTimeout>[] = [];
  const fetch = () =>
    new Promise((resolve, reject) => {
      if (network.ms === Infinity) return;
      timers.push(setTimeout(() => (network.fail ? reject(new TypeError('Failed to fetch')) : resolve({ ok: true, headers: { get: () => 'text/html' }, clone: () => 'network copy', body: 'network' })), network.ms));
    });
  const caches = {
    open: async () => ({ match: async () => (cachedShell === null ? undefined : { body: cachedShell }), put: async () => undefined, addAll: async () => undefined }),
    keys: async () => [],
  };
  vm.runInNewContext(SOURCE, { self, fetch, caches, URL, setTimeout, clearTimeout, Promise });
  return {
    async navigate(path: string): Promise<{ body: string; ms: number }> {
      const t0 = Date.now();
      const answer: { p?: Promise<{ body: string }> } = {};
      handlers.fetch!({ request: { method: 'GET', url: `https://im.example${path}`, mode: 'navigate' }, respondWith: (p: Promise<{ body: string }>) => (answer.p = p) });
      assert.ok(answer.p, 'the worker answers page loads');
      const res = await answer.p;
      return { body: res.body, ms: Date.now() - t0 };
    },
    stop: () => timers.forEach(clearTimeout),
  };
}

describe('service worker: page loads', () => {
  it('a network that hangs: the cached shell comes after a bounded wait, not when the browser gives up', async () => {
    const w = loadNavigation({ ms: Infinity }, 'shell');
    const r = await w.navigate('/settings');
    assert.equal(r.body, 'shell');
    assert.ok(r.ms >= 2500 && r.ms < 6000, `waited ${r.ms} ms`);
  });

  it('a network that fails: the cached shell at once; one that answers: the network page', async () => {
    const down = loadNavigation({ ms: 10, fail: true }, 'shell');
    const r = await down.navigate('/');
    assert.equal(r.body, 'shell');
    assert.ok(r.ms < 1000, `waited ${r.ms} ms`);
    const up = loadNavigation({ ms: 10 }, 'shell');
    assert.equal((await up.navigate('/')).body, 'network');
  });

  it('a slow network and no cached shell: the page waits for the network', async () => {
    const w = loadNavigation({ ms: 3500 }, null);
    const r = await w.navigate('/');
    assert.equal(r.body, 'network');
    w.stop();
  });
});
