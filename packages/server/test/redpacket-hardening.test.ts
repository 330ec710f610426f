/**
 * Issue 13, "Money": regression tests for what an outside probe found.
 * - Latecomers were told `busy` (retry in ~10 s) although the packet was empty 100 ms later;
 *   three holders who never open kept a fourth member off for ~70 s.
 * - A muted member's red packet took the money, answered 503 and refunded 10 minutes later.
 * - Balances and amounts had no upper bound; a replayed request id with another body was a
 *   `duplicate`; settling a settled withdrawal answered ok; `npm run reconcile` on a missing
 *   data directory created an empty database and reported success.
 * Server in-process (createMagpieServer, SQLite in a temp dir, fastify inject).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { GrabResult, OpenResult } from '@magpie/protocol';
import { loadConfig } from '../src/config/config.ts';
import { createMagpieServer, type MagpieServer } from '../src/app.ts';
import { hashToken, newToken } from '../src/util/ids.ts';
import type { SqlWalletStore } from '../src/wallet/sql-wallet-store.ts';
import { sqliteWallet } from './sql-engines.ts';
import { ManualClock, makeService, principal } from './redpacket-helpers.ts';

const ADMIN = 'test-admin-token-0123456789abcdef';

describe('red packets: latecomers learn the outcome, holds lapse for good', () => {
  let wallet: SqlWalletStore;
  before(async () => {
    wallet = await sqliteWallet();
  });
  after(async () => {
    await wallet.close();
  });

  for (const flow of ['open', 'grab then open'] as const) {
    it(`300 concurrent openers of a 10-share packet (${flow}): 10 claimed, every other answer all_claimed, none busy`, async () => {
      const { members, service } = makeService(wallet, { grabWaitMs: 2000 });
      const users = Array.from({ length: 300 }, (_, i) => `late-${flow.length}-${i}`);
      const conv = `g:late-${flow.length}`;
      members.group(conv, ['boss', ...users]);
      await wallet.topUp({ reference: `seed-${flow}`, userId: 'boss', amount: 10_000, now: Date.now() });
      const { packet } = await service.send(principal('boss'), { clientMsgId: `late-${flow}`, conv, split: 'random', total: 10_000, count: 10 });
      const answers: (GrabResult | OpenResult)[] = await Promise.all(
        users.map(async (u) => {
          if (flow === 'grab then open') {
            const g = await service.grab(u, packet.id);
            if (g.result !== 'admitted') return g;
          }
          return service.open(u, packet.id);
        }),
      );
      const by = (r: string) => answers.filter((a) => a.result === r).length;
      assert.equal(by('busy'), 0, 'nobody is sent away to retry while the outcome is settling');
      assert.equal(by('claimed'), 10);
      assert.equal(by('all_claimed'), 290);
      await service.stop();
    });
  }

  it('three holders who never open and grab again the moment their holds lapse keep a fourth off for one hold period at most', async () => {
    const clock = new ManualClock();
    const HOLD = 10_000;
    const { members, service } = makeService(wallet, { grabHoldMs: HOLD, overAdmitMin: 2, overAdmitRatio: 0.1 }, clock);
    const ghosts = ['g1', 'g2', 'g3'];
    members.group('g:ghosts', ['boss', ...ghosts, 'fourth']);
    await wallet.topUp({ reference: 'seed-ghosts', userId: 'boss', amount: 100, now: clock.now() });
    const { packet } = await service.send(principal('boss'), { clientMsgId: 'ghosts', conv: 'g:ghosts', split: 'random', total: 100, count: 1 });
    // 1 share + overAdmitMin 2: three places, all taken by ghosts.
    for (const g of ghosts) assert.equal((await service.grab(g, packet.id)).result, 'admitted');
    const first = await service.grab('fourth', packet.id);
    assert.equal(first.result, 'busy');
    const turnedAwayAt = clock.now();
    let admittedAt: number | null = null;
    // The ghosts poll every 100 ms and always ask before the fourth does.
    for (let step = 0; step < 1000 && admittedAt === null; step++) {
      clock.advance(100);
      for (const g of ghosts) await service.grab(g, packet.id);
      const r = await service.grab('fourth', packet.id);
      if (r.result === 'admitted') admittedAt = clock.now();
    }
    assert.ok(admittedAt !== null, 'the fourth member got a place');
    assert.ok(admittedAt - turnedAwayAt <= HOLD, `admitted ${admittedAt - turnedAwayAt} ms after being turned away (hold period ${HOLD} ms)`);
    assert.equal((await service.open('fourth', packet.id)).result, 'claimed');
    await service.stop();
  });
});

describe('red packets and wallets over HTTP: preconditions before money, limits, conflicts', () => {
  let dir: string;
  let server: MagpieServer;
  const tokens = new Map<string, string>();

  const call = async (method: 'GET' | 'POST' | 'PUT' | 'PATCH', url: string, who?: string, payload?: unknown) => {
    const token = who === 'admin' ? ADMIN : who ? tokens.get(who) : undefined;
    const r = await server.http.inject({ method, url, headers: token ? { authorization: `Bearer ${token}` } : {}, ...(payload !== undefined ? { payload: payload as object } : {}) });
    return { status: r.statusCode, body: r.body ? r.json() : undefined };
  };
  const balance = async (who: string) => (await call('GET', '/api/wallet', who)).body.balance as number;
  const entries = async (who: string) => ((await call('GET', '/api/wallet/entries', who)).body.entries as unknown[]).length;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'magpie-rp-hard-'));
    server = await createMagpieServer(
      loadConfig({}, { host: '127.0.0.1', port: 0, dataDir: dir, logLevel: 'silent', adminToken: ADMIN, wallet: { maxAmount: 1_000_000, maxBalance: 5_000_000 }, payments: { pinRequired: false } }),
    );
    await server.http.ready();
    const now = Date.now();
    for (const name of ['owner', 'admin2', 'member', 'outsider', 'peer']) {
      await server.store.createUser({ id: name, username: name, passwordHash: 'x', nickname: name, createdAt: now });
      const token = newToken();
      await server.store.createSession({ tokenHash: hashToken(token), userId: name, deviceId: 'd1', platform: 'web', appVersion: '1', createdAt: now, expiresAt: now + 3600_000 });
      tokens.set(name, token);
    }
    for (const u of ['owner', 'member']) assert.equal((await call('POST', '/api/admin/wallet/topup', 'admin', { userId: u, amount: 100_000, reference: `seed-${u}` })).status, 200);
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const group = async (name: string) => {
    const r = await call('POST', '/api/groups', 'owner', { name, members: ['admin2', 'member'] });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.group.conv as string;
  };
  const sendPacket = (who: string, body: Record<string, unknown>) =>
    call('POST', '/api/redpackets', who, { clientMsgId: `c-${Math.random()}`, split: 'random', total: 500, count: 2, ...body });

  /** The refusal comes before the debit: nothing taken, no ledger entry, no packet. */
  async function refusedBeforeMoney(who: string, body: Record<string, unknown>, status: number, code: string) {
    const before = { balance: await balance(who), entries: await entries(who) };
    const r = await sendPacket(who, body);
    assert.equal(r.status, status, JSON.stringify(r.body));
    assert.equal(r.body.error.code, code);
    assert.deepEqual({ balance: await balance(who), entries: await entries(who) }, before, 'no money moved');
  }

  it('a muted member is refused with 403 muted before any money is taken', async () => {
    const conv = await group('mute');
    assert.equal((await call('POST', `/api/groups/${conv}/mute`, 'owner', { user: 'member', durationMs: 60_000 })).status, 200);
    await refusedBeforeMoney('member', { conv }, 403, 'muted');
    const report = (await call('GET', '/api/admin/reconcile', 'admin')).body;
    assert.equal(report.totals.activePackets, 0, 'no packet is left waiting for a refund');
  });

  it('mute-all (only admins may send), a dismissed group, a non-member, a block in 1:1: refused before the debit', async () => {
    const conv = await group('rules');
    assert.equal((await call('PATCH', `/api/groups/${conv}`, 'owner', { muteAll: true })).status, 200);
    await refusedBeforeMoney('member', { conv }, 403, 'muted');
    assert.equal((await sendPacket('owner', { conv })).status, 201, 'the owner may still send under mute-all');
    await refusedBeforeMoney('owner', { conv: 'g:nope' }, 404, 'not_found');
    const other = await group('other');
    assert.equal((await call('POST', `/api/groups/${other}/dismiss`, 'owner')).status, 200);
    await refusedBeforeMoney('owner', { conv: other }, 403, 'forbidden');
    assert.equal((await call('POST', `/api/groups/${conv}/kick`, 'owner', { users: ['member'] })).status, 200);
    await refusedBeforeMoney('member', { conv }, 403, 'forbidden');
    assert.equal((await call('PUT', '/api/blocks/member', 'peer')).status, 200);
    await refusedBeforeMoney('member', { to: 'peer', count: 1 }, 403, 'forbidden');
  });

  it('the same clientMsgId with another body is a 409 idempotency_conflict; the same body returns the first packet', async () => {
    const conv = await group('idem');
    const body = { clientMsgId: 'idem-1', conv, total: 300, count: 3, greeting: 'hi' };
    const first = await sendPacket('owner', body);
    assert.equal(first.status, 201);
    const again = await sendPacket('owner', body);
    assert.equal(again.status, 200);
    assert.equal(again.body.duplicate, true);
    assert.equal(again.body.packet.id, first.body.packet.id);
    for (const change of [{ greeting: 'other' }, { total: 301 }, { split: 'fixed', amount: 100, total: undefined }, { count: 2 }]) {
      const r = await sendPacket('owner', { ...body, ...change });
      assert.equal(r.status, 409, JSON.stringify(change));
      assert.equal(r.body.error.details.reason, 'idempotency_conflict');
    }
    const topUp = { userId: 'owner', amount: 100, reference: 'idem-bank' };
    assert.equal((await call('POST', '/api/admin/wallet/topup', 'admin', topUp)).status, 200);
    assert.equal((await call('POST', '/api/admin/wallet/topup', 'admin', topUp)).body.duplicate, true);
    const other = await call('POST', '/api/admin/wallet/topup', 'admin', { ...topUp, amount: 101 });
    assert.equal(other.status, 409);
    assert.equal(other.body.error.details.reason, 'idempotency_conflict');
  });

  it('amounts and balances are capped: 2^53−1 fen, a top-up above maxAmount, a balance above maxBalance', async () => {
    const before = await balance('peer');
    for (const amount of [Number.MAX_SAFE_INTEGER, 2 ** 53, 1_000_001]) {
      const r = await call('POST', '/api/admin/wallet/topup', 'admin', { userId: 'peer', amount, reference: `big-${amount}` });
      assert.equal(r.status, 400, String(amount));
      assert.equal(r.body.error.code, 'invalid');
    }
    const big = await call('POST', '/api/admin/wallet/topup', 'admin', { userId: 'peer', amount: 1_000_001, reference: 'big-x' });
    assert.equal(big.body.error.details.reason, 'amount_above_limit');
    for (let i = 0; i < 5; i++) assert.equal((await call('POST', '/api/admin/wallet/topup', 'admin', { userId: 'peer', amount: 1_000_000, reference: `fill-${i}` })).status, 200);
    const over = await call('POST', '/api/admin/wallet/topup', 'admin', { userId: 'peer', amount: 1, reference: 'fill-over' });
    assert.equal(over.status, 403);
    assert.equal(over.body.error.details.reason, 'balance_limit');
    assert.equal(await balance('peer'), before + 5_000_000);
    const w = await call('POST', '/api/admin/wallet/withdraw', 'admin', { userId: 'peer', amount: 1_000_001, reference: 'w-big' });
    assert.equal(w.body.error.details.reason, 'amount_above_limit');
    // A claim that would pass the cap is refused; the share stays for someone else.
    const conv = (await call('POST', '/api/groups', 'owner', { name: 'cap', members: ['peer', 'member'] })).body.group.conv;
    const sent = await sendPacket('owner', { conv, total: 200, count: 2 });
    const refused = await call('POST', `/api/redpackets/${sent.body.packet.id}/open`, 'peer');
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.details.reason, 'balance_limit');
    assert.equal((await call('POST', `/api/redpackets/${sent.body.packet.id}/open`, 'member')).body.result, 'claimed');
    assert.equal((await call('GET', '/api/admin/reconcile', 'admin')).body.ok, true);
  });

  it('settling a settled withdrawal is a 409 already_settled with its status', async () => {
    assert.equal((await call('POST', '/api/admin/wallet/withdraw', 'admin', { userId: 'member', amount: 10, reference: 'w-1' })).body.status, 'paid');
    for (const result of ['paid', 'reversed']) {
      const r = await call('POST', '/api/admin/wallet/withdrawals/w-1/settle', 'admin', { result });
      assert.equal(r.status, 409, result);
      assert.equal(r.body.error.code, 'conflict');
      assert.deepEqual(r.body.error.details, { reason: 'already_settled', status: 'paid' });
    }
  });

  it('npm run reconcile on a missing data directory fails and creates nothing', async () => {
    const missing = join(dir, 'no-such-dir');
    const cli = new URL('../src/wallet/reconcile-cli.ts', import.meta.url).pathname;
    const run = promisify(execFile)(process.execPath, ['--import', 'tsx', cli], { env: { ...process.env, MAGPIE_DATA_DIR: missing, MAGPIE_STORE: 'sqlite', MAGPIE_CONFIG: '' } });
    const err = await run.then(
      () => assert.fail('reconcile succeeded on a missing database'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(err.code, 2);
    assert.match(err.stderr, /no database at/);
    assert.equal(existsSync(missing), false, 'nothing was created');
  });
});
