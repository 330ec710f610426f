/**
 * Scheduled broadcasts are sent exactly once across kill -9: the real server process is killed
 * while it holds a schedule's lease in the middle of a large segment fan-out; after the lease
 * runs out the schedule is sent once (by the restarted node on SQLite, by the other node of a
 * two-node PostgreSQL cluster, which the killed node then rejoins without sending it again).
 * Checked in the database: one broadcast per schedule, one ring slot per recipient.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, api, sleep, type ServerProcess } from './harness.ts';
import { pgUnavailable, testDatabase } from './pg-test-helpers.ts';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { PostgresEngine } from '../src/db/postgres-engine.ts';
import type { SqlEngine } from '../src/db/index.ts';

const ADMIN = 'admin-token-schedules-0123456789';
const LEASE_MS = 1500;

/** Users made directly in the database (registering 20 000 through the API would hash 20 000 passwords). */
async function seedCohort(db: SqlEngine, cohort: string, n: number): Promise<void> {
  const now = Date.now();
  for (let i = 0; i < n; i += 1000) {
    await db.transaction(async (tx) => {
      for (let j = i; j < Math.min(n, i + 1000); j++) {
        const id = `${cohort}-${String(j).padStart(6, '0')}`;
        await tx.run(`INSERT INTO users (id, username, password_hash, nickname, created_at) VALUES (?, ?, 'x', ?, ?)`, [id, id, id, now]);
        await tx.run(`INSERT INTO user_attributes (user_id, key, value) VALUES (?, 'cohort', ?)`, [id, cohort]);
      }
    });
  }
}

const one = async (db: SqlEngine, sql: string, params: unknown[]) => Number(Object.values((await db.get<Record<string, unknown>>(sql, params))!)[0]);

async function schedule(srv: ServerProcess, cohort: string, title: string, inMs: number): Promise<string> {
  const s = await api(srv.url, 'POST', '/api/admin/services', { name: `Svc ${title}` }, ADMIN);
  const r = await api(srv.url, 'POST', `/api/admin/services/${s.body.service.id}/schedules`, { audience: { kind: 'segment', attributes: { cohort } }, title, sendAt: Date.now() + inMs }, ADMIN);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.schedule.id;
}

/** Wait until a node holds the schedule's lease (fan-out under way), answer the owner. */
async function leased(db: SqlEngine, id: string): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const r = await db.get<{ lease_owner: string | null; status: string }>(`SELECT lease_owner, status FROM notif_schedules WHERE id = ?`, [id]);
    if (r?.lease_owner && r.status === 'pending') return r.lease_owner;
    assert.notEqual(r?.status, 'sent', 'sent before the test could kill the node: raise the cohort size');
    await sleep(5);
  }
  throw new Error('the schedule was never leased');
}

async function sentOnce(db: SqlEngine, id: string, recipients: number): Promise<{ attempts: number }> {
  let row: { status: string; attempts: number | string } | undefined;
  for (let i = 0; i < 300; i++) {
    row = await db.get(`SELECT status, attempts FROM notif_schedules WHERE id = ?`, [id]);
    if (row?.status === 'sent') break;
    await sleep(100);
  }
  assert.equal(row?.status, 'sent');
  assert.equal(await one(db, `SELECT COUNT(*) FROM notif_broadcasts WHERE schedule_id = ?`, [id]), 1, 'one broadcast');
  const b = (await db.get<{ id: string; recipients: number | string }>(`SELECT id, recipients FROM notif_broadcasts WHERE schedule_id = ?`, [id]))!;
  assert.equal(Number(b.recipients), recipients);
  assert.equal(await one(db, `SELECT COUNT(*) FROM notif_slots WHERE broadcast_id = ?`, [b.id]), recipients, 'one slot per recipient');
  assert.equal(await one(db, `SELECT COUNT(DISTINCT user_id) FROM notif_slots WHERE broadcast_id = ?`, [b.id]), recipients);
  return { attempts: Number(row!.attempts) };
}

const env = { MAGPIE_ADMIN_TOKEN: ADMIN, MAGPIE_SERVICES_SCHEDULE_POLL_MS: '50', MAGPIE_SERVICES_SCHEDULE_LEASE_MS: String(LEASE_MS), MAGPIE_SERVICES_CAPACITY: '50' };

describe('scheduled broadcasts exactly once across kill -9: SQLite', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'magpie-sched-'));
  let srv: ServerProcess;
  let db: SqlEngine;
  before(async () => {
    srv = await startServer({ dataDir, env });
    db = new SqliteEngine(join(dataDir, 'magpie.db'));
    await seedCohort(db, 'k9', 20_000);
  });
  after(async () => {
    await srv?.stop();
    await db?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('killed mid fan-out, restarted: the schedule goes out once to all 20 000', async () => {
    const id = await schedule(srv, 'k9', 'k9 sqlite', 300);
    const later = await schedule(srv, 'k9', 'k9 sqlite later', 4000);
    await leased(db, id);
    await srv.kill('SIGKILL');
    assert.equal(await one(db, `SELECT COUNT(*) FROM notif_broadcasts WHERE schedule_id = ?`, [id]), 0, 'the killed transaction left nothing');
    srv = await startServer({ dataDir, env });
    const { attempts } = await sentOnce(db, id, 20_000);
    assert.ok(attempts >= 2, `leased again after the kill (attempts ${attempts})`);
    await sentOnce(db, later, 20_000);
  });
});

const pgSkip = await pgUnavailable();
describe('scheduled broadcasts exactly once across kill -9: PostgreSQL, two nodes', { skip: pgSkip ?? false }, () => {
  const pgDb = testDatabase('magpie_sched');
  let url: string;
  let a: ServerProcess;
  let b: ServerProcess;
  let db: SqlEngine;
  before(async () => {
    url = await pgDb.create();
    a = await startServer({ env: { ...env, MAGPIE_STORE: url, MAGPIE_NODE_ID: 'node-a' } });
    b = await startServer({ env: { ...env, MAGPIE_STORE: url, MAGPIE_NODE_ID: 'node-b' } });
    db = await PostgresEngine.open({ url, max: 2 });
    await seedCohort(db, 'pg9', 20_000);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await db?.close();
    await pgDb.drop();
  });

  it('the node holding the lease is killed mid fan-out: the other sends it once; the killed one rejoins and does not resend', async () => {
    const id = await schedule(a, 'pg9', 'pg9', 300);
    const owner = await leased(db, id);
    const holder = owner.startsWith('node-a/') ? 'a' : 'b';
    await (holder === 'a' ? a : b).kill('SIGKILL');
    const { attempts } = await sentOnce(db, id, 20_000);
    assert.ok(attempts >= 2, `leased again after the kill (attempts ${attempts})`);
    const sentBy = (await db.get<{ lease_owner: string }>(`SELECT lease_owner FROM notif_schedules WHERE id = ?`, [id]))!.lease_owner;
    assert.notEqual(sentBy, owner, 'sent by the surviving node');
    const restarted = await startServer({ env: { ...env, MAGPIE_STORE: url, MAGPIE_NODE_ID: holder === 'a' ? 'node-a' : 'node-b' } });
    if (holder === 'a') a = restarted;
    else b = restarted;
    await sleep(LEASE_MS + 500);
    await sentOnce(db, id, 20_000);
    // Several due at once across both nodes: each exactly once.
    const ids = await Promise.all([1, 2, 3].map((i) => schedule(i % 2 ? a : b, 'pg9', `pg9 batch ${i}`, 200)));
    for (const s of ids) await sentOnce(db, s, 20_000);
  });
});
