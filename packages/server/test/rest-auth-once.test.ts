/**
 * Issue 16: an authenticated REST request is authenticated once. The route's onRequest hook
 * (session read and per-user rate limit) and everything after it share one session read
 * (http/rest.ts RestApi): exactly one session read (`getSession` or `getSessionAndUser`, which
 * authentication uses since the hello's reads were merged) per request, for JSON routes, raw
 * (tus) routes and a refused token alike.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.ts';
import { createMagpieServer, type MagpieServer } from '../src/app.ts';

describe('one authentication per REST request', () => {
  let dir: string;
  let server: MagpieServer;
  let reads = 0;
  let token: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'magpie-sdksplit-auth-once-'));
    server = await createMagpieServer(loadConfig({}, { dataDir: dir, logLevel: 'silent', adminToken: 'a'.repeat(32), payments: { pinRequired: false } }));
    await server.http.ready();
    const store = server.store;
    const getSession = store.getSession.bind(store);
    store.getSession = (hash, now) => {
      reads++;
      return getSession(hash, now);
    };
    const getSessionAndUser = store.getSessionAndUser.bind(store);
    store.getSessionAndUser = (hash, now) => {
      reads++;
      return getSessionAndUser(hash, now);
    };
    const reg = await server.http.inject({ method: 'POST', url: '/api/register', payload: { username: 'once_alice', password: 'correct horse battery' } });
    assert.ok(reg.statusCode === 200 || reg.statusCode === 201, reg.body);
    const login = await server.http.inject({ method: 'POST', url: '/api/login', payload: { username: 'once_alice', password: 'correct horse battery', deviceId: 'd1', platform: 'web' } });
    assert.equal(login.statusCode, 200, login.body);
    token = login.json().token;
  });

  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function readsOf(req: { method: 'GET' | 'POST' | 'HEAD'; url: string; payload?: object; headers?: Record<string, string> }, auth = token): Promise<{ status: number; reads: number }> {
    const before = reads;
    const res = await server.http.inject({ method: req.method, url: req.url, headers: { authorization: `Bearer ${auth}`, ...req.headers }, ...(req.payload !== undefined ? { payload: req.payload } : {}) });
    return { status: res.statusCode, reads: reads - before };
  }

  it('a JSON route with auth `user` reads the session once (GET and POST)', async () => {
    assert.deepEqual(await readsOf({ method: 'GET', url: '/api/me' }), { status: 200, reads: 1 });
    assert.deepEqual(await readsOf({ method: 'GET', url: '/api/conversations' }), { status: 200, reads: 1 });
    const created = await readsOf({ method: 'POST', url: '/api/groups', payload: { name: 'Once' } });
    assert.equal(created.reads, 1);
    assert.ok(created.status === 200 || created.status === 201, String(created.status));
  });

  it('a raw (tus) route reads the session once', async () => {
    const r = await readsOf({
      method: 'POST',
      url: '/api/uploads',
      headers: { 'tus-resumable': '1.0.0', 'upload-length': '5', 'upload-metadata': `kind ${Buffer.from('file').toString('base64')}` },
    });
    assert.equal(r.status, 201);
    assert.equal(r.reads, 1);
  });

  it('a refused token is read once and answered unauthorized', async () => {
    assert.deepEqual(await readsOf({ method: 'GET', url: '/api/me' }, 'not-a-live-token'), { status: 401, reads: 1 });
  });

  it('a request without a token reads no session', async () => {
    const before = reads;
    const res = await server.http.inject({ method: 'GET', url: '/api/me' });
    assert.equal(res.statusCode, 401);
    assert.equal(reads - before, 0);
  });

  it('console and retention routes (their own console token) read no user session', async () => {
    // A console session token is not a user session: these routes authenticate it themselves,
    // and the per-user rate limit must not look it up as one (it used to, and failed, per request).
    const consoleToken = 'c'.repeat(43);
    for (const url of ['/api/console/me', '/api/console/retention', '/api/console/admins']) {
      const r = await readsOf({ method: 'GET', url }, consoleToken);
      assert.equal(r.status, 401, url);
      assert.equal(r.reads, 0, url);
    }
    // Operator routes (the admin token) neither.
    assert.deepEqual(await readsOf({ method: 'GET', url: '/api/admin/reconcile' }, 'a'.repeat(32)), { status: 200, reads: 0 });
  });
});
