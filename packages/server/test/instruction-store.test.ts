/** The one InstructionStore implementation, on both engines (PostgreSQL skipped when absent). */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { PostgresEngine } from '../src/db/postgres-engine.ts';
import { migrate, schemaVersion } from '../src/db/migrate.ts';
import { MIGRATIONS } from '../src/db/migrations/index.ts';
import type { SqlEngine } from '../src/db/engine.ts';
import { SqlInstructionStore } from '../src/instructions/sql-instruction-store.ts';
import { SqlStore } from '../src/store/sql-store.ts';
import { PG_URL, freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

/** The tables as the release before versioned migrations created them (CREATE … IF NOT EXISTS in the store). */
const PRE_MIGRATION_SCHEMA = `
CREATE TABLE IF NOT EXISTS instructions (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL, created_at BIGINT NOT NULL, issued_by TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS instructions_user ON instructions (user_id, created_at);
CREATE TABLE IF NOT EXISTS instruction_targets (instruction_id TEXT NOT NULL, user_id TEXT NOT NULL, device_id TEXT NOT NULL, status TEXT NOT NULL, delivered_at BIGINT, completed_at BIGINT, result TEXT, PRIMARY KEY (instruction_id, device_id));
CREATE INDEX IF NOT EXISTS instruction_targets_device ON instruction_targets (user_id, device_id, status);`;

const dir = mkdtempSync(join(tmpdir(), 'magpie-instr-'));
const schemas: string[] = [];
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  for (const s of schemas) await rawClient(s).drop();
});
let n = 0;
const engines: { name: string; open: () => Promise<SqlEngine>; skip: () => Promise<string | null> }[] = [
  { name: 'sqlite', open: async () => new SqliteEngine(join(dir, `i${n++}.db`), { checkpointMs: 0 }), skip: async () => null },
  {
    name: 'postgres',
    open: async () => {
      const schema = freshSchemaName('instr');
      schemas.push(schema);
      return PostgresEngine.open({ url: PG_URL, schema, max: 3 });
    },
    skip: pgUnavailable,
  },
];

for (const e of engines) {
  describe(`InstructionStore on ${e.name}`, async () => {
    const skip = await e.skip();

    test('targets move forward only; pending, complete and audit', { skip: skip ?? false }, async () => {
      const db = await e.open();
      await migrate(db, MIGRATIONS);
      const store = new SqlInstructionStore(db);
      await store.create({ id: 'i1', userId: 'u1', kind: 'force_full_sync', payload: { why: 'test' }, createdAt: 1000, issuedBy: 'ops' }, ['d1', 'd2', 'd1']);
      await store.create({ id: 'i2', userId: 'u1', kind: 'clear_cache', payload: null, createdAt: 2000, issuedBy: 'ops' }, ['d1']);
      assert.deepEqual((await store.pendingFor('u1', 'd1')).map((i) => i.id), ['i1', 'i2']);
      await store.markDelivered('i1', 'u1', 'd1', 1500);
      assert.equal(await store.complete('i1', 'u1', 'd1', true, { cleared: 3 }, 1600), true);
      assert.equal(await store.complete('i1', 'u1', 'd1', false, null, 1700), false, 'a completed target does not move again');
      assert.equal(await store.complete('i1', 'u1', 'nope', true, null, 1700), false);
      assert.deepEqual((await store.pendingFor('u1', 'd1')).map((i) => i.id), ['i2']);
      // Store.helloState reads the same table: does the device have anything pending (or delivered, not done)?
      const core = new SqlStore(db, { ringCapacity: 100 });
      assert.equal((await core.helloState('u1', 'd1', 'th', 0)).pendingInstructions, true);
      assert.equal((await core.helloState('u1', 'd2', 'th', 0)).pendingInstructions, true);
      assert.equal((await core.helloState('u1', 'd3', 'th', 0)).pendingInstructions, false);
      assert.equal((await core.helloState('u2', 'd1', 'th', 0)).pendingInstructions, false);
      const audit = await store.audit('u1', 10);
      assert.deepEqual(audit.map((a) => a.id), ['i2', 'i1']);
      const i1 = audit[1]!;
      assert.deepEqual(i1.payload, { why: 'test' });
      assert.deepEqual(
        i1.targets.map((t) => [t.deviceId, t.status, t.deliveredAt, t.completedAt, t.result]),
        [
          ['d1', 'done', 1500, 1600, { cleared: 3 }],
          ['d2', 'pending', null, null, null],
        ],
      );
      await db.close();
    });

    test('a database of the release before migrations upgrades in place and keeps every row', { skip: skip ?? false }, async () => {
      const db = await e.open();
      await db.exec(PRE_MIGRATION_SCHEMA);
      await db.run("INSERT INTO instructions (id, user_id, kind, payload, created_at, issued_by) VALUES ('old', 'u9', 'upload_diagnostics', '{\"a\":1}', 5, 'ops')");
      await db.run("INSERT INTO instruction_targets (instruction_id, user_id, device_id, status) VALUES ('old', 'u9', 'phone', 'pending')");
      assert.equal(await schemaVersion(db), null);
      await migrate(db, MIGRATIONS);
      assert.equal(await schemaVersion(db), MIGRATIONS.at(-1)!.name);
      const store = new SqlInstructionStore(db);
      const [old] = await store.pendingFor('u9', 'phone');
      assert.deepEqual(old, { id: 'old', userId: 'u9', kind: 'upload_diagnostics', payload: { a: 1 }, createdAt: 5, issuedBy: 'ops' });
      await db.close();
    });
  });
}
