import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { randomBytes } from 'node:crypto';
import { PG_URL, pgUnavailable } from './pg-test-helpers.ts';
import { api, startServer, registerAndLogin, RawClient, type ServerProcess, type Account } from './harness.ts';

/**
 * Issue 15, PostgreSQL connection budget: a node whose pools are larger than what the
 * database grants (a role with CONNECTION LIMIT) answers `hello` and `send` — it waits
 * briefly for a connection and, failing that, says `unavailable` (retryable), never `internal`.
 * Needs PostgreSQL (creates and drops its own database and role).
 */
const skip = await pgUnavailable();

describe('a small PostgreSQL connection budget', { skip: skip ?? false }, () => {
  const suffix = randomBytes(4).toString('hex');
  const dbName = `magpie_i15p_${suffix}`;
  const role = `magpie_i15_small_${suffix}`;
  const admin = postgres(PG_URL, { max: 1, onnotice: () => {} });
  let dbUrl: URL;
  before(async () => {
    await admin.unsafe(`CREATE DATABASE "${dbName}"`);
    await admin.unsafe(`CREATE ROLE "${role}" LOGIN CONNECTION LIMIT 8`);
    await admin.unsafe(`ALTER DATABASE "${dbName}" OWNER TO "${role}"`);
    dbUrl = new URL(PG_URL);
    dbUrl.pathname = `/${dbName}`;
    dbUrl.username = role;
  });
  after(async () => {
    await admin.unsafe(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await admin.unsafe(`DROP ROLE IF EXISTS "${role}"`);
    await admin.end({ timeout: 2 });
  });

  async function load(srv: ServerProcess, accounts: Account[], peer: Account): Promise<{ ok: number; codes: Record<string, number> }> {
    const codes: Record<string, number> = {};
    let ok = 0;
    await Promise.all(
      accounts.map(async (a, i) => {
        let c: RawClient;
        try {
          c = (await RawClient.connect(srv.wsUrl, a.token)).client;
        } catch (err) {
          const code = (err as { frame?: { code: string } }).frame?.code ?? 'socket';
          codes[`hello:${code}`] = (codes[`hello:${code}`] ?? 0) + 1;
          return;
        }
        await Promise.all(
          Array.from({ length: 8 }, async (_, k) => {
            try {
              await c.request({ type: 'send', clientMsgId: `c${i}-${k}`, to: peer.userId, kind: 'text', body: { text: 'x' } }, 15_000);
              ok++;
            } catch (err) {
              const code = (err as { frame?: { code: string } }).frame?.code ?? 'timeout';
              codes[`send:${code}`] = (codes[`send:${code}`] ?? 0) + 1;
            }
          }),
        );
        c.close();
      }),
    );
    return { ok, codes };
  }

  /** Setup, as a client does it: a retryable `unavailable` (the budget is exhausted) is retried. */
  async function registerRetrying(url: string): Promise<Awaited<ReturnType<typeof registerAndLogin>>> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await registerAndLogin(url);
      } catch (err) {
        if (attempt >= 20 || !/"unavailable"/.test((err as Error).message)) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  it('pools larger than the budget: hello and send wait, then succeed or answer unavailable — never internal', async () => {
    const srv = await startServer({ env: { MAGPIE_STORE: dbUrl.toString(), MAGPIE_USER_RATE: '1000', MAGPIE_USER_BURST: '1000', MAGPIE_IP_RATE: '10000', MAGPIE_IP_BURST: '10000' } });
    try {
      const peer = await registerRetrying(srv.url);
      const accounts = await Promise.all(Array.from({ length: 24 }, () => registerRetrying(srv.url)));
      const { ok, codes } = await load(srv, accounts, peer);
      const bad = Object.keys(codes).filter((k) => !k.endsWith(':unavailable'));
      assert.deepEqual(bad, [], `only retryable unavailable errors, got ${JSON.stringify(codes)}`);
      assert.ok(ok > 0, 'most sends go through');
    } finally {
      await srv.stop();
    }
  });

  it('pools sized to the budget (MAGPIE_PG_POOL_*): everything goes through', async () => {
    const env = {
      MAGPIE_STORE: dbUrl.toString(),
      MAGPIE_USER_RATE: '1000',
      MAGPIE_USER_BURST: '1000',
      MAGPIE_IP_RATE: '10000',
      MAGPIE_IP_BURST: '10000',
      MAGPIE_PG_POOL_WALLET: '1',
      MAGPIE_PG_POOL_PUSH: '1',
      MAGPIE_PG_POOL_SHARED: '3',
    };
    const srv = await startServer({ env });
    try {
      const peer = await registerAndLogin(srv.url);
      const accounts = await Promise.all(Array.from({ length: 24 }, () => registerAndLogin(srv.url)));
      const { ok, codes } = await load(srv, accounts, peer);
      assert.deepEqual(codes, {});
      assert.equal(ok, 24 * 8);
      // The node's connections right after the load (idle ones close only after 30 s): at most
      // the sum of its pools — the messaging store has no pool of its own (issue 16).
      const [{ n }] = (await admin`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${dbName}`) as unknown as [{ n: number }];
      assert.ok(n >= 1 && n <= 3, `connections of the node: ${n} (one pool of 3; the wallet and push settings open nothing)`);
    } finally {
      await srv.stop();
    }
  });

  it('one pool per node: messages, wallet, push, social and instructions share it (connections counted under load)', async () => {
    const admin2 = 'pool-test-admin-token-0123456789abcdef';
    const env = {
      MAGPIE_STORE: dbUrl.toString(),
      MAGPIE_ADMIN_TOKEN: admin2,
      MAGPIE_USER_RATE: '1000',
      MAGPIE_USER_BURST: '1000',
      MAGPIE_IP_RATE: '10000',
      MAGPIE_IP_BURST: '10000',
      MAGPIE_PG_POOL_MESSAGES: '3',
      MAGPIE_PG_POOL_SHARED: '2',
      // Settings of releases before issue 16: accepted, no longer opening pools of their own.
      MAGPIE_PG_POOL_WALLET: '10',
      MAGPIE_PG_POOL_PUSH: '10',
    };
    const srv = await startServer({ env });
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [row] = await admin<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${dbName}`;
        peak = Math.max(peak, row!.n);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    try {
      const peer = await registerAndLogin(srv.url);
      const accounts = await Promise.all(Array.from({ length: 16 }, () => registerAndLogin(srv.url)));
      // Messages (appends, ACKs, push policy reads) and wallet writes at once, all on the one pool.
      const wallet = Promise.all(
        accounts.map(async (a, i) => {
          for (let k = 0; k < 4; k++) {
            const r = await api(srv.url, 'POST', '/api/admin/wallet/topup', { userId: a.userId, amount: 100, reference: `pool-${i}-${k}` }, admin2);
            assert.equal(r.status, 200, JSON.stringify(r.body));
          }
        }),
      );
      const [{ ok, codes }] = await Promise.all([load(srv, accounts, peer), wallet]);
      assert.deepEqual(codes, {});
      assert.equal(ok, 16 * 8);
      const devices = await api(srv.url, 'GET', '/api/push/devices', undefined, peer.token);
      assert.equal(devices.status, 200);
    } finally {
      sampling = false;
      await sampler;
      await srv.stop();
    }
    console.log(`# PostgreSQL connections of one node under load: peak ${peak} (one pool of 2; the old messages/wallet/push settings are ignored)`);
    assert.ok(peak >= 1, `the sampler saw the node's connections (${peak})`);
    assert.ok(peak <= 2, `at most the one pool's 2 connections, saw ${peak}`);
  });
});

/**
 * Issue 15: the default pool. postgres.js hands each statement to the connection idle the
 * longest, so every connection a node opened stays in use and each statement wakes a backend
 * that has idled for (pool size × the gap between statements): on a shared 2-core host a woken
 * backend costs ~1–2 ms of CPU even for `SELECT 1` (bench/pg-wake.mjs). A default node opens
 * (warm-up included) at most 4 connections.
 */
describe('the default PostgreSQL pool', { skip: skip ?? false }, () => {
  const dbName = `magpie_i15d_${randomBytes(4).toString('hex')}`;
  const admin = postgres(PG_URL, { max: 1, onnotice: () => {} });
  before(async () => {
    await admin.unsafe(`CREATE DATABASE "${dbName}"`);
  });
  after(async () => {
    await admin.unsafe(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await admin.end({ timeout: 2 });
  });

  it('a node with default settings holds at most 4 connections after its warm-up and a burst of sends', async () => {
    const url = new URL(PG_URL);
    url.pathname = `/${dbName}`;
    const env: Record<string, string> = { MAGPIE_STORE: url.toString(), MAGPIE_USER_RATE: '1000', MAGPIE_USER_BURST: '1000', MAGPIE_IP_RATE: '10000', MAGPIE_IP_BURST: '10000' };
    const srv = await startServer({ env });
    try {
      const count = async (): Promise<number> => ((await admin`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${dbName}`) as unknown as [{ n: number }])[0].n;
      const afterStart = await count();
      const peer = await registerAndLogin(srv.url);
      const a = await registerAndLogin(srv.url);
      const { client } = await RawClient.connect(srv.wsUrl, a.token);
      let peak = afterStart;
      await Promise.all([
        ...Array.from({ length: 64 }, (_, k) => client.request({ type: 'send', clientMsgId: `d${k}`, to: peer.userId, kind: 'text', body: { text: 'x' } }, 15_000)),
        (async () => {
          for (let i = 0; i < 20; i++) {
            peak = Math.max(peak, await count());
            await new Promise((r) => setTimeout(r, 10));
          }
        })(),
      ]);
      client.close();
      console.log(`# default node: ${afterStart} PostgreSQL connections after start, peak ${peak} under a burst of 64 sends`);
      assert.ok(afterStart >= 1 && afterStart <= 4, `connections after start: ${afterStart}`);
      assert.ok(peak <= 4, `connections under load: ${peak}`);
    } finally {
      await srv.stop();
    }
  });
});
