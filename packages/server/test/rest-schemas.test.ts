/**
 * The REST schemas in @magpie/protocol (rest/) are the API's one source (issue 16): every
 * /api route is in the OpenAPI document served at /api/docs/openapi.json, converted routes
 * there carry request and reply schemas, and real answers validate against their reply schemas.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ErrorBodySchema,
  accountRoutes,
  adminUserRoutes,
  docsRoutes,
  groupRoutes,
  instructionRoutes,
  mediaReadRoutes,
  mediaRoutes,
  pushAdminRoutes,
  pushRoutes,
  searchRoutes,
  socialRoutes,
  uploadRoutes,
  walletRoutes,
  type RawRestRoute,
  type RestRoute,
} from '@magpie/protocol';
import { loadConfig } from '../src/config/config.ts';
import { createMagpieServer, type MagpieServer } from '../src/app.ts';

const converted: RestRoute[] = [
  ...Object.values(accountRoutes),
  ...Object.values(groupRoutes),
  ...Object.values(socialRoutes),
  ...Object.values(walletRoutes),
  ...Object.values(searchRoutes),
  ...Object.values(mediaRoutes),
  ...Object.values(docsRoutes),
  ...Object.values(pushRoutes),
  ...Object.values(pushAdminRoutes),
  ...Object.values(instructionRoutes),
  ...Object.values(adminUserRoutes),
];

type Doc = { paths: Record<string, Record<string, { requestBody?: unknown; parameters?: { name: string; in: string }[]; responses: Record<string, unknown>; 'x-magpie-unschematized'?: boolean }>> };

describe('REST schemas: OpenAPI document and real answers', () => {
  let dir: string;
  let server: MagpieServer;
  let doc: Doc;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'magpie-rest-schemas-'));
    server = await createMagpieServer(loadConfig({}, { dataDir: dir, logLevel: 'silent', adminToken: 'a'.repeat(32), payments: { pinRequired: false } }));
    await server.http.ready();
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Call a route and check the answer against the route's reply schema (or the error shape). */
  async function call<R extends RestRoute>(r: R, opts: { token?: string; params?: Record<string, string>; query?: Record<string, string>; body?: unknown } = {}): Promise<{ status: number; json: any }> {
    const url = r.url.replace(/:([A-Za-z0-9_]+)/g, (_, k: string) => encodeURIComponent(opts.params?.[k] ?? ''));
    const res = await server.http.inject({
      method: r.method,
      url,
      ...(opts.query && { query: opts.query }),
      ...(opts.body !== undefined && { payload: opts.body as object }),
      headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {},
    });
    const json = res.json();
    if (res.statusCode >= 400) {
      ErrorBodySchema.parse(json);
      assert.fail(`${r.method} ${r.url} → ${res.statusCode} ${res.body}`);
    }
    const schema = r.reply[res.statusCode as 200 | 201];
    assert.ok(schema, `${r.method} ${r.url}: no reply schema for ${res.statusCode}`);
    const v = schema.safeParse(json);
    assert.ok(v.success, `${r.method} ${r.url}: answer fails its schema: ${JSON.stringify(v.error?.issues)}\n${res.body}`);
    return { status: res.statusCode, json };
  }

  it('serves the OpenAPI document at /api/docs/openapi.json and /api/docs', async () => {
    doc = (await call(docsRoutes.openapi)).json as Doc;
    assert.equal((doc as unknown as { openapi: string }).openapi, '3.1.0');
    assert.deepEqual((await call(docsRoutes.docs)).json, doc);
  });

  it('lists every /api route; converted routes have request and reply schemas', () => {
    const api = server.routes.filter((r) => r.url.startsWith('/api/'));
    for (const r of api) {
      const op = doc.paths[r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')]?.[r.method.toLowerCase()];
      assert.ok(op, `${r.method} ${r.url} missing from the OpenAPI document`);
      assert.ok(!op['x-magpie-unschematized'], `${r.method} ${r.url} has no schemas`);
      assert.ok(Object.keys(op.responses).some((s) => /^[23]/.test(s)), `${r.method} ${r.url}: no success answer described`);
    }
    for (const r of converted) {
      assert.ok(api.some((a) => a.method === r.method && a.url === r.url), `${r.method} ${r.url} is not registered`);
      const op = doc.paths[r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')]![r.method.toLowerCase()]!;
      assert.ok(!op['x-magpie-unschematized']);
      const status = r.reply[201] ? '201' : '200';
      assert.ok((op.responses[status] as { content?: unknown } | undefined)?.content, `${r.method} ${r.url}: no reply schema`);
      assert.ok(op.responses['4XX'], `${r.method} ${r.url}: no error schema`);
      if (r.body) assert.ok(op.requestBody, `${r.method} ${r.url}: no request schema`);
      for (const k of r.url.match(/:([A-Za-z0-9_]+)/g) ?? []) assert.ok(op.parameters?.some((p) => p.in === 'path' && p.name === k.slice(1)), `${r.url}: path parameter ${k}`);
    }
  });

  it('validation failures answer the documented invalid error; authentication comes first', async () => {
    const bad = await server.http.inject({ method: 'POST', url: '/api/register', payload: { username: 'x', password: 'short' } });
    assert.equal(bad.statusCode, 400);
    const body = ErrorBodySchema.parse(bad.json());
    assert.equal(body.error.code, 'invalid');
    assert.ok(Array.isArray(body.error.details));
    const anon = await server.http.inject({ method: 'POST', url: '/api/groups', payload: { nope: 1 } });
    assert.equal(anon.statusCode, 401);
    assert.equal(ErrorBodySchema.parse(anon.json()).error.code, 'unauthorized');
    const q = await server.http.inject({ method: 'GET', url: '/api/conversations?limit=abc', headers: { authorization: 'Bearer nope' } });
    assert.equal(q.statusCode, 401);
  });

  it('real answers of the main routes validate against their reply schemas', async () => {
    const A = accountRoutes;
    const password = 'correct horse battery staple 42';
    const alice = (await call(A.register, { body: { username: 'alice_rs', password, nickname: 'Alice' } })).json.user;
    const bob = (await call(A.register, { body: { username: 'bob_rs', password } })).json.user;
    const login = async (username: string) => (await call(A.login, { body: { username, password, deviceId: 'd1', platform: 'web' } })).json.token as string;
    const ta = await login('alice_rs');
    const tb = await login('bob_rs');
    await call(A.health);
    await call(A.me, { token: ta });
    await call(A.user, { token: ta, params: { id: bob.id } });
    const cfg = (await call(mediaRoutes.clientConfig, { token: ta })).json;
    assert.ok(cfg.media.mapUrlTemplate.includes('{lat}'));

    const S = socialRoutes;
    await call(S.profile, { token: ta });
    await call(S.updateProfile, { token: ta, body: { nickname: 'Alice A', extra: { x: 1 } } });
    await call(S.search, { token: ta, query: { q: 'bob' } });
    await call(S.userProfile, { token: ta, params: { userId: bob.id } });
    await call(S.request, { token: ta, body: { to: bob.id, greeting: 'hi' } });
    await call(S.requests, { token: tb, query: { direction: 'incoming' } });
    await call(S.accept, { token: tb, params: { userId: alice.id } });
    await call(S.friends, { token: ta });
    await call(S.changes, { token: ta, query: { since: '0' } });
    await call(S.blocks, { token: ta });

    const sent = (await call(A.send, { token: ta, body: { clientMsgId: 'c1', to: bob.id, kind: 'text', body: { text: 'hello' } } })).json;
    const conv = sent.message.conv as string;
    await call(A.conversations, { token: tb });
    await call(A.history, { token: tb, params: { conv } });
    await call(A.read, { token: tb, params: { conv }, body: { seq: sent.message.seq } });
    await call(A.updateEntry, { token: tb, params: { conv }, body: { pinned: true, draft: 'x' } });
    await call(searchRoutes.search, { token: tb, query: { q: 'hello', limit: '5' } });
    await call(searchRoutes.subject, { token: tb, params: { conv } });
    await call(searchRoutes.attachSubject, { token: 'a'.repeat(32), body: { users: [alice.id, bob.id], type: 'item', id: 'i-1', title: 'An item' } });

    const G = groupRoutes;
    const group = (await call(G.create, { token: ta, body: { name: 'Rest schemas', members: [bob.id], joinPolicy: 'open' } })).json.group;
    await call(G.info, { token: tb, params: { conv: group.conv } });
    await call(G.search, { token: tb, query: { query: 'Rest' } });
    await call(G.members, { token: tb, params: { conv: group.conv } });
    await call(G.update, { token: ta, params: { conv: group.conv }, body: { announcement: 'hello' } });
    await call(G.requests, { token: ta, params: { conv: group.conv } });
    await call(G.role, { token: ta, params: { conv: group.conv }, body: { user: bob.id, role: 'admin' } });
    await call(G.mute, { token: ta, params: { conv: group.conv }, body: { user: bob.id, durationMs: 0 } });
    await call(G.leave, { token: tb, params: { conv: group.conv } });
    await call(G.join, { token: tb, params: { conv: group.conv }, body: {} });
    await call(G.kick, { token: ta, params: { conv: group.conv }, body: { users: [bob.id] } });
    await call(G.invite, { token: ta, params: { conv: group.conv }, body: { users: [bob.id] } });
    await call(G.transfer, { token: ta, params: { conv: group.conv }, body: { to: bob.id } });

    const W = walletRoutes;
    const topup = await server.http.inject({ method: 'POST', url: '/api/admin/wallet/topup', headers: { authorization: `Bearer ${'a'.repeat(32)}` }, payload: { userId: alice.id, amount: 1000, reference: 'rs-1' } });
    assert.equal(topup.statusCode, 200, topup.body);
    await call(W.balance, { token: ta });
    await call(W.entries, { token: ta, query: { limit: '10' } });
    const sentPacket = await call(W.sendPacket, { token: ta, body: { clientMsgId: 'rp1', conv: group.conv, split: 'fixed', amount: 10, count: 2, greeting: 'gl' } });
    assert.equal(sentPacket.status, 201);
    assert.equal((await call(W.sendPacket, { token: ta, body: { clientMsgId: 'rp1', conv: group.conv, split: 'fixed', amount: 10, count: 2, greeting: 'gl' } })).status, 200);
    const id = sentPacket.json.packet.id as string;
    await call(W.grab, { token: tb, params: { id } });
    await call(W.open, { token: tb, params: { id } });
    await call(W.grab, { token: tb, params: { id } });
    await call(W.packet, { token: tb, params: { id } });
    await call(G.dismiss, { token: tb, params: { conv: group.conv } });

    await call(S.remove, { token: ta, params: { userId: bob.id } });
    await call(S.block, { token: ta, params: { userId: bob.id } });
    await call(S.unblock, { token: ta, params: { userId: bob.id } });
    await call(A.password, { token: ta, body: { currentPassword: password, newPassword: `${password}!` } });
    await call(A.logoutAll, { token: tb });
  });

  it('push, instruction, operator and media answers validate; raw routes are described', async () => {
    const admin = 'a'.repeat(32);
    const password = 'correct horse battery staple 42';
    const carol = (await call(accountRoutes.register, { body: { username: 'carol_rs', password } })).json.user;
    const tc = (await call(accountRoutes.login, { body: { username: 'carol_rs', password, deviceId: 'd1', platform: 'web' } })).json.token as string;
    const P = pushRoutes;
    await call(P.config);
    await call(P.devices, { token: tc });
    await call(P.settings, { token: tc });
    const put = await call(P.putSettings, { token: tc, body: { privacy: 'hide', quietHours: 'off' } });
    assert.deepEqual(put.json.settings, { privacy: 'hide', disabled: [], quietHours: 'off' });
    await call(pushAdminRoutes.report, { token: admin, query: { from: '2026-01-01', to: '2026-01-02' } });
    await call(pushAdminRoutes.notify, { token: admin, body: { userIds: [carol.id], title: 't', body: 'b' } });
    await call(pushAdminRoutes.user, { token: admin, params: { id: carol.id } });
    const issued = await call(instructionRoutes.issue, { token: admin, body: { userId: carol.id, kind: 'force_full_sync' } });
    assert.equal(issued.status, 201);
    assert.equal((await call(instructionRoutes.audit, { token: admin, query: { userId: carol.id } })).json.instructions.length, 1);
    await call(adminUserRoutes.revokeSessions, { token: admin, params: { id: carol.id } });
    await call(adminUserRoutes.disable, { token: admin, params: { id: carol.id } });
    await call(adminUserRoutes.enable, { token: admin, params: { id: carol.id } });
    const bad = await server.http.inject({ method: 'POST', url: '/api/admin/instructions', headers: { authorization: `Bearer ${admin}` }, payload: { userId: carol.id, kind: 'nope' } });
    assert.equal(ErrorBodySchema.parse(bad.json()).error.code, 'invalid');

    // A tus upload through the raw routes, then its JSON routes.
    const td = (await call(accountRoutes.login, { body: { username: 'carol_rs', password, deviceId: 'd2', platform: 'web' } })).json.token as string;
    const tus = { authorization: `Bearer ${td}`, 'tus-resumable': '1.0.0' };
    const created = await server.http.inject({ method: 'POST', url: '/api/uploads', headers: { ...tus, 'upload-length': '5', 'upload-metadata': `kind ${Buffer.from('file').toString('base64')}` } });
    assert.equal(created.statusCode, 201, created.body);
    const id = String(created.headers.location).split('/').pop()!;
    const head = await server.http.inject({ method: 'HEAD', url: `/api/uploads/${id}`, headers: tus });
    assert.equal(head.headers['upload-offset'], '0');
    const patched = await server.http.inject({ method: 'PATCH', url: `/api/uploads/${id}`, headers: { ...tus, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }, payload: Buffer.from('hello') });
    assert.equal(patched.statusCode, 204, patched.body);
    const info = await call(mediaRoutes.upload, { token: td, params: { id } });
    assert.equal(info.json.upload.state, 'ready');
    const signed = (await call(mediaRoutes.signedUrl, { token: td, params: { id } })).json;
    const bytes = await server.http.inject({ method: 'GET', url: signed.url });
    assert.equal(bytes.body, 'hello');

    for (const r of [...Object.values(uploadRoutes), ...Object.values(mediaReadRoutes)] as RawRestRoute[]) {
      const op = doc.paths[r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')]![r.method.toLowerCase()]!;
      assert.ok(op, `${r.method} ${r.url} missing`);
      assert.ok(!op['x-magpie-unschematized']);
      for (const status of Object.keys(r.replies)) assert.ok(op.responses[status], `${r.method} ${r.url}: answer ${status}`);
      for (const h of Object.keys(r.headers ?? {})) assert.ok(op.parameters?.some((p) => p.in === 'header' && p.name === h), `${r.method} ${r.url}: header ${h}`);
    }
    assert.ok(doc.paths['/api/uploads/{id}']!.patch!.requestBody, 'PATCH /api/uploads/:id describes its body');
  });
});
