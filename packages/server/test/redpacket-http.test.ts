/**
 * Red packets through the real HTTP API of a server started in-process
 * (createMagpieServer, port 0, SQLite): 2 000 concurrent clients grab
 * and open one 200-share packet → exactly 200 claims, sum exact, every wallet credited, the
 * admin reconciliation endpoint and the reconcile CLI both report OK. Plus the operator
 * API's authentication and the HTTP shape of refusals.
 *
 * Users and sessions are written through the Store (no scrypt per user); the group is made
 * through the groups API (2 001 members: a super group).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Message, OpenResult } from '@magpie/protocol';
import { loadConfig } from '../src/config/config.ts';
import { createMagpieServer, type MagpieServer } from '../src/app.ts';
import { hashToken, newToken } from '../src/util/ids.ts';

const CLIENTS = 2000;
const SHARES = 200;
const TOTAL = 200_000;
const ADMIN = 'test-admin-token-0123456789abcdef';

interface User {
  id: string;
  token: string;
  /** Each client keeps its own persistent connection, like a phone would. */
  agent: http.Agent;
}

describe('red packets over HTTP: 2 000 concurrent clients, one 200-share packet', () => {
  let dir: string;
  let server: MagpieServer;
  let base: string;
  let sender: User;
  let clients: User[];
  let outsider: User;
  let CONV: string;

  const call = <T = any>(method: string, path: string, token?: string, body?: unknown, agent?: http.Agent): Promise<{ status: number; body: T }> =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(
        base + path,
        {
          method,
          agent: agent ?? false,
          headers: { ...(payload !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: (text ? JSON.parse(text) : undefined) as T }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  const as = (u: User) => ({
    call: <T = any>(method: string, path: string, body?: unknown) => call<T>(method, path, u.token, body, u.agent),
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'magpie-rp-http-'));
    const config = loadConfig(
      {},
      {
        host: '127.0.0.1',
        port: 0,
        dataDir: dir,
        // Seeding 2 000 users and sessions one commit each would take ~9 s of fsyncs here;
        // the concurrency under test does not depend on fsync (the bench runs with FULL).
        sqliteSynchronous: 'normal',
        logLevel: 'warn',
        adminToken: ADMIN,
        // The payment PIN is tested in payments-*.test.ts and e2e-wallet-sdk.test.ts; here the packet mechanics.
        payments: { pinRequired: false },
        // 2 000 keep-alive clients from one address: above the default per-IP connection cap (1 000).
        limits: { ipRate: 1_000_000, ipBurst: 1_000_000, userRate: 1_000_000, userBurst: 1_000_000, maxConnectionsPerIp: 0 },
      },
    );
    server = await createMagpieServer(config);
    base = (await server.start()).replace('localhost', '127.0.0.1');

    const now = Date.now();
    const mkUser = async (name: string): Promise<User> => {
      const id = `u-${name}`;
      await server.store.createUser({ id, username: name, passwordHash: 'x', nickname: name, createdAt: now });
      const token = newToken();
      await server.store.createSession({ tokenHash: hashToken(token), userId: id, deviceId: 'd1', platform: 'web', appVersion: '1', createdAt: now, expiresAt: now + 3600_000 });
      return { id, token, agent: new http.Agent({ keepAlive: true, maxSockets: 1 }) };
    };
    sender = await mkUser('boss');
    outsider = await mkUser('outsider');
    clients = [];
    for (let i = 0; i < CLIENTS; i++) clients.push(await mkUser(`member${i}`));
    const made = await call('POST', '/api/groups', sender.token, { name: 'New year', members: clients.slice(0, 999).map((c) => c.id), joinPolicy: 'approval' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    CONV = made.body.group.conv;
    for (let i = 999; i < clients.length; i += 1000) {
      const inv = await call('POST', `/api/groups/${encodeURIComponent(CONV)}/invite`, sender.token, { users: clients.slice(i, i + 1000).map((c) => c.id) });
      assert.equal(inv.status, 200, JSON.stringify(inv.body));
    }
    // Connect every client first (200 at a time, as phones that are already online), so the
    // race below is 2 000 concurrent requests, not 2 000 simultaneous TCP handshakes.
    for (let i = 0; i < clients.length; i += 200) await Promise.all(clients.slice(i, i + 200).map((c) => as(c).call('GET', '/api/health')));
  });

  after(async () => {
    for (const c of clients ?? []) c.agent.destroy();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('the operator API needs the admin token', async () => {
    const body = { userId: sender.id, amount: TOTAL, reference: 'bank-001' };
    assert.equal((await call('POST', '/api/admin/wallet/topup', undefined, body)).status, 401);
    assert.equal((await call('POST', '/api/admin/wallet/topup', 'wrong-token-wrong-token', body)).status, 401);
    assert.equal((await call('POST', '/api/admin/wallet/topup', sender.token, body)).status, 401, 'a user token is not an admin token');
    assert.equal((await call('GET', '/api/admin/reconcile', clients[0]!.token)).status, 401);
    const ok = await call('POST', '/api/admin/wallet/topup', ADMIN, body);
    assert.equal(ok.status, 200);
    assert.equal(ok.body.balance, TOTAL);
    const again = await call('POST', '/api/admin/wallet/topup', ADMIN, body);
    assert.equal(again.body.duplicate, true, 'idempotent per reference');
    assert.equal((await call('GET', '/api/wallet', sender.token)).body.balance, TOTAL);
    assert.equal((await call('POST', '/api/admin/wallet/topup', ADMIN, { ...body, amount: 0, reference: 'z' })).status, 400);
    assert.equal((await call('POST', '/api/admin/wallet/topup', ADMIN, { ...body, userId: 'nobody', reference: 'n' })).status, 404);
  });

  it('refusals come back as typed errors', async () => {
    const send = (b: Record<string, unknown>, token = sender.token) => call('POST', '/api/redpackets', token, { clientMsgId: `r${Math.random()}`, conv: CONV, split: 'random', total: 1000, count: 10, ...b });
    for (const bad of [{ total: 0 }, { total: -1 }, { count: 0 }, { total: 1.5 }]) {
      const r = await send(bad);
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.equal(r.body.error.code, 'invalid');
    }
    const over = await send({ count: 201, total: 10_000 });
    assert.equal(over.status, 400);
    assert.equal(over.body.error.details.reason, 'count_above_limit');
    const below = await send({ count: 200, total: 199 });
    assert.equal(below.status, 400);
    assert.equal(below.body.error.details.reason, 'total_below_count');
    const poor = await send({ total: 1000 }, clients[0]!.token);
    assert.equal(poor.status, 403);
    assert.equal(poor.body.error.details.reason, 'insufficient_balance');
    const stranger = await send({}, outsider.token);
    assert.equal(stranger.status, 403);
    assert.equal((await call('POST', '/api/redpackets', undefined, {})).status, 401);
    assert.equal((await call('GET', '/api/wallet', sender.token)).body.balance, TOTAL, 'nothing was debited');
  });

  it('2 000 clients grab and open concurrently: exactly 200 claims, sum exact, wallets credited, reconciled', async () => {
    const sent = await call('POST', '/api/redpackets', sender.token, { clientMsgId: 'cny-2026', conv: CONV, split: 'random', total: TOTAL, count: SHARES, greeting: '恭喜发财' });
    assert.equal(sent.status, 201, JSON.stringify(sent.body));
    const packetId: string = sent.body.packet.id;
    assert.equal(sent.body.message.kind, 'redpacket');
    assert.equal((await call('GET', '/api/wallet', sender.token)).body.balance, 0);

    const nonMember = await call('POST', `/api/redpackets/${packetId}/grab`, outsider.token);
    assert.equal(nonMember.status, 403);
    assert.equal(nonMember.body.error.details.reason, 'not_member');

    const started = Date.now();
    const results = await Promise.all(
      clients.map(async (c): Promise<OpenResult> => {
        const g = await as(c).call('POST', `/api/redpackets/${packetId}/grab`);
        assert.equal(g.status, 200, JSON.stringify(g.body));
        if (g.body.result === 'all_claimed') return { result: 'all_claimed' };
        for (;;) {
          const o = await as(c).call<OpenResult>('POST', `/api/redpackets/${packetId}/open`);
          assert.equal(o.status, 200, JSON.stringify(o.body));
          if (o.body.result !== 'busy') return o.body;
          // A phone that was told "busy" tries again a moment later (not in a tight loop).
          await new Promise((r) => setTimeout(r, Math.min(o.body.result === 'busy' ? o.body.retryAfterMs : 0, 500 + Math.random() * 500)));
        }
      }),
    );
    const elapsed = Date.now() - started;
    console.log(`# HTTP: ${CLIENTS} clients grabbed and opened in ${elapsed} ms`);

    const claimed = results.map((r, i) => ({ r, c: clients[i]! })).filter((x) => x.r.result === 'claimed');
    assert.equal(claimed.length, SHARES, 'exactly 200 claims');
    assert.equal(results.filter((r) => r.result === 'all_claimed').length, CLIENTS - SHARES);
    const amountOf = (r: OpenResult): number => (r.result === 'claimed' ? r.amount : 0);
    assert.equal(
      claimed.reduce((s, x) => s + amountOf(x.r), 0),
      TOTAL,
      'sum exact',
    );
    const balances = await Promise.all(claimed.map((x) => as(x.c).call('GET', '/api/wallet')));
    balances.forEach((b, k) => assert.equal(b.body.balance, amountOf(claimed[k]!.r), 'credited in the open transaction'));

    const second = await call('POST', `/api/redpackets/${packetId}/open`, claimed[0]!.c.token);
    assert.equal(second.status, 409);
    assert.equal(second.body.error.details.reason, 'already_opened');

    const details = await call('GET', `/api/redpackets/${packetId}`, clients[1999]!.token);
    assert.equal(details.status, 200);
    assert.equal(details.body.packet.status, 'finished');
    assert.equal(details.body.claims.length, SHARES);
    const best = details.body.bestLuck;
    const max = Math.max(...details.body.claims.map((c: { amount: number }) => c.amount));
    assert.equal(best.amount, max);
    assert.equal(best.seq, details.body.claims.find((c: { amount: number }) => c.amount === max).seq, 'ties to the earliest');
    assert.equal((await call('GET', `/api/redpackets/${packetId}`, outsider.token)).status, 403);

    const report = await call('GET', '/api/admin/reconcile', ADMIN);
    assert.equal(report.status, 200);
    assert.equal(report.body.ok, true, JSON.stringify(report.body.checks));
    assert.equal(report.body.totals.deposits, TOTAL);
    assert.equal(report.body.totals.claims, SHARES);

    // The conversation shows the packet and, once all is claimed, its status.
    // The status is posted after the last claim commits, on the server's path (a loaded CI
    // machine may take seconds): wait for it up to 10 s rather than a fixed 50 × 20 ms.
    let kinds: string[] = [];
    for (const deadline = Date.now() + 10_000; Date.now() < deadline && !kinds.includes('redpacket.status'); ) {
      const h = await call<{ messages: Message[] }>('GET', `/api/conversations/${encodeURIComponent(CONV)}/messages?limit=10`, clients[5]!.token);
      kinds = h.body.messages.map((m) => m.kind);
      if (!kinds.includes('redpacket.status')) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(kinds.includes('redpacket'), `history: ${kinds}`);
    assert.ok(kinds.includes('redpacket.status'), `history: ${kinds}`);

    // The command-line check reads the same file while the server runs.
    const root = new URL('../../../', import.meta.url).pathname;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'packages/server/src/wallet/reconcile-cli.ts'], {
      cwd: root,
      env: { ...process.env, MAGPIE_DATA_DIR: dir, MAGPIE_STORE: 'sqlite', MAGPIE_CONFIG: '' },
    });
    const cli = JSON.parse(stdout) as { ok: boolean; totals: { claims: number } };
    assert.equal(cli.ok, true);
    assert.equal(cli.totals.claims, SHARES);
  });
});
