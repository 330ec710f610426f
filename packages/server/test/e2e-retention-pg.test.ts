/**
 * Retention end to end on PostgreSQL (the real server processes), plus the lease with two
 * nodes on one database: both are asked to purge at once; exactly one runs (the other answers
 * `busy` while the lease is live), and every old message is purged once.
 * Skips with a message when PostgreSQL is unreachable (fails with MAGPIE_REQUIRE_SERVICES=1).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { numberedPlaceholders } from '../src/db/engine.ts';
import { pgUnavailable, testDatabase } from './pg-test-helpers.ts';
import { api, registerAndLogin, startServer, type ServerProcess } from './harness.ts';
import { RETENTION_ADMIN, RETENTION_ENV, retentionSuite } from './retention-e2e-suite.ts';

const skip = await pgUnavailable();
const DAY = 24 * 3600 * 1000;

describe('retention end to end (PostgreSQL)', { skip: skip ?? false }, () => {
  const db = testDatabase('magpie_ret');
  let sql: postgres.Sql;
  let srv: ServerProcess;
  let url: string;
  before(async () => {
    url = await db.create();
    srv = await startServer({ env: { ...RETENTION_ENV, MAGPIE_STORE: url, MAGPIE_NODE_ID: 'node-1' } });
    sql = postgres(url, { max: 2, onnotice: () => {} });
  });
  after(async () => {
    await srv?.stop();
    await sql?.end({ timeout: 2 });
    await db.drop();
  });
  retentionSuite(() => ({ srv, sql: (q, params = []) => sql.unsafe(numberedPlaceholders(q), params as postgres.ParameterOrJSON<never>[]) as unknown as Promise<Record<string, unknown>[]> }));

  it('two nodes: one purges at a time (the lease), the other answers busy; each message is purged once', async () => {
    // A slower purge on both nodes: batches of 5 with 150 ms pauses.
    const slow = { ...RETENTION_ENV, MAGPIE_STORE: url, MAGPIE_RETENTION_BATCH_SIZE: '5', MAGPIE_RETENTION_PAUSE_MS: '150' };
    await srv.stop();
    srv = await startServer({ env: { ...slow, MAGPIE_NODE_ID: 'node-1' } });
    const other = await startServer({ env: { ...slow, MAGPIE_NODE_ID: 'node-2' } });
    try {
      const a = await registerAndLogin(srv.url);
      const b = await registerAndLogin(other.url);
      let conv = '';
      for (let i = 0; i < 40; i++) {
        const r = await api(srv.url, 'POST', '/api/messages', { clientMsgId: `lease-${i}`, to: b.userId, kind: 'text', body: { text: `old ${i}` } }, a.token);
        conv = r.body.message.conv;
      }
      await sql.unsafe('UPDATE messages SET time = time - $1 WHERE conv_id = $2', [40 * DAY, conv]);
      const run = (s: ServerProcess) => api(s.url, 'POST', '/api/admin/retention/run', undefined, RETENTION_ADMIN);
      const first = run(srv);
      // node-1 holds the lease while it works through 8 batches (~1 s of pauses).
      let holder = null;
      for (let i = 0; i < 40 && !holder; i++) {
        holder = (await api(other.url, 'GET', '/api/admin/retention', undefined, RETENTION_ADMIN)).body.lease;
        if (!holder) await new Promise((r) => setTimeout(r, 25));
      }
      assert.equal(holder?.holder, 'node-1', 'node-2 sees node-1 holding the lease');
      const second = await run(other);
      assert.equal(second.body.outcome, 'busy');
      const done = await first;
      assert.deepEqual([done.body.outcome, done.body.messages, done.body.node], ['done', 40, 'node-1']);
      assert.equal(done.body.batches, 8);
      // Afterwards node-2 may run: nothing is left.
      const again = await run(other);
      assert.deepEqual([again.body.outcome, again.body.messages], ['done', 0]);
      const counted = await sql.unsafe('SELECT COUNT(*)::int AS n FROM messages WHERE conv_id = $1', [conv]);
      assert.equal(Number(counted[0]!.n), 0);
      const purge = await sql.unsafe('SELECT purged_seq FROM conv_purge WHERE conv_id = $1', [conv]);
      assert.equal(Number(purge[0]!.purged_seq), 40);
      const runs = (await api(other.url, 'GET', '/api/admin/retention', undefined, RETENTION_ADMIN)).body.runs.map((r: any) => [r.node, r.outcome]);
      assert.deepEqual(runs.slice(0, 2), [
        ['node-2', 'done'],
        ['node-1', 'done'],
      ]);
      assert.ok(!runs.some((r: string[]) => r[1] === 'busy'), 'a busy answer records no run');
    } finally {
      await other.stop();
    }
  });
});
