/**
 * The shared SQL engine and versioned migrations, on SQLite and on PostgreSQL (skipped with a
 * message when PostgreSQL is not running, unless MAGPIE_REQUIRE_SERVICES=1).
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { numberedPlaceholders, type SqlEngine } from '../src/db/engine.ts';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { PostgresEngine } from '../src/db/postgres-engine.ts';
import { migrate, schemaVersion, SchemaTooNewError, type Migration } from '../src/db/migrate.ts';
import { PG_URL, freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

test('? placeholders become $n outside quoted text', () => {
  assert.equal(numberedPlaceholders("SELECT ?, '?', \"a?\", ? FROM t WHERE x = ?"), "SELECT $1, '?', \"a?\", $2 FROM t WHERE x = $3");
});

interface Engines {
  name: string;
  open(): Promise<SqlEngine>;
  cleanup(): Promise<void>;
}

function sqliteEngines(): Engines {
  const dir = mkdtempSync(join(tmpdir(), 'magpie-db-'));
  let n = 0;
  return {
    name: 'sqlite',
    open: async () => new SqliteEngine(join(dir, `db${n++}.sqlite`), { checkpointMs: 0 }),
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

function postgresEngines(): Engines {
  const schemas: string[] = [];
  return {
    name: 'postgres',
    open: async () => {
      const schema = freshSchemaName('dbengine');
      schemas.push(schema);
      return PostgresEngine.open({ url: PG_URL, schema, max: 4 });
    },
    cleanup: async () => {
      for (const s of schemas) await rawClient(s).drop();
    },
  };
}

const migrations: Migration[] = [
  { name: '0001-a', up: (db) => db.exec('CREATE TABLE a (id TEXT PRIMARY KEY, n BIGINT NOT NULL)') },
  { name: '0002-b', up: (db) => db.exec('ALTER TABLE a ADD COLUMN note TEXT') },
];

for (const make of [sqliteEngines, postgresEngines]) {
  const engines = make();
  describe(`SqlEngine on ${engines.name}`, async () => {
    const skip = engines.name === 'postgres' ? await pgUnavailable() : null;
    after(() => engines.cleanup());

    test('statements, RETURNING, upserts and text lists', { skip: skip ?? false }, async () => {
      const db = await engines.open();
      await migrate(db, migrations);
      assert.equal(await db.run('INSERT INTO a (id, n) VALUES (?, ?), (?, ?)', ['x', 1, 'y', 2]), 2);
      const up = await db.all<{ id: string; n: number | string }>('INSERT INTO a (id, n) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET n = a.n + excluded.n RETURNING id, n', ['x', 10]);
      assert.deepEqual(up.map((r) => [r.id, Number(r.n)]), [['x', 11]]);
      const list = db.textList(['y', 'nope', "it's"]);
      const rows = await db.all<{ id: string }>(`SELECT id FROM a WHERE id IN ${list.sql} ORDER BY id`, [list.param]);
      assert.deepEqual(rows.map((r) => r.id), ['y']);
      assert.equal(Number((await db.get<{ n: number | string }>('SELECT n FROM a WHERE id = ?', ['y']))!.n), 2);
      assert.equal(await db.get('SELECT n FROM a WHERE id = ?', ['none']), undefined);
      // Large BIGINT values survive the round trip (timestamps in ms, amounts in fen).
      await db.run('INSERT INTO a (id, n) VALUES (?, ?)', ['big', 9_007_199_254_740_991]);
      assert.equal(Number((await db.get<{ n: number | string }>('SELECT n FROM a WHERE id = ?', ['big']))!.n), 9_007_199_254_740_991);
      await db.close();
    });

    test('values: rows as arrays in the statement\'s column order, inside and outside a transaction', { skip: skip ?? false }, async () => {
      const db = await engines.open();
      await migrate(db, migrations);
      await db.run('INSERT INTO a (id, n, note) VALUES (?, ?, ?), (?, ?, ?)', ['x', 1, 'one', 'y', 2, null]);
      // Columns in SELECT order (not the table's), a computed column, a NULL, and an empty result.
      const rows = await db.values<[string, string | null, number | string, number | string]>('SELECT id, note, n, n * 10 AS "2" FROM a ORDER BY id');
      assert.deepEqual(rows.map((r) => [r[0], r[1], Number(r[2]), Number(r[3])]), [['x', 'one', 1, 10], ['y', null, 2, 20]]);
      assert.deepEqual(await db.values('SELECT id FROM a WHERE id = ?', ['none']), []);
      // The same text through all() still gives objects (the raw statement is a separate one).
      assert.deepEqual((await db.all<{ id: string }>('SELECT id FROM a ORDER BY id')).map((r) => r.id), ['x', 'y']);
      const inTx = await db.transaction((tx) => tx.values<[string]>('SELECT id FROM a ORDER BY id DESC'));
      assert.deepEqual(inTx, [['y'], ['x']]);
      await db.close();
    });

    test('a transaction commits when its function resolves and rolls back entirely when it throws', { skip: skip ?? false }, async () => {
      const db = await engines.open();
      await migrate(db, migrations);
      await db.transaction(async (tx) => {
        await tx.run('INSERT INTO a (id, n) VALUES (?, ?)', ['kept', 1]);
      });
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.run('INSERT INTO a (id, n) VALUES (?, ?)', ['gone', 1]);
          await tx.run('UPDATE a SET n = 99 WHERE id = ?', ['kept']);
          throw new Error('boom');
        }),
        /boom/,
      );
      const rows = await db.all<{ id: string; n: number | string }>('SELECT id, n FROM a ORDER BY id');
      assert.deepEqual(rows.map((r) => [r.id, Number(r.n)]), [['kept', 1]]);
      await db.close();
    });

    test("another caller's statement never runs inside an open transaction", { skip: skip ?? false }, async () => {
      const db = await engines.open();
      await migrate(db, migrations);
      const inTx = db.transaction(async (tx) => {
        await tx.run('INSERT INTO a (id, n) VALUES (?, ?)', ['tx', 1]);
        await sleep(50); // the event loop runs other work meanwhile
        throw new Error('roll back');
      });
      await sleep(10);
      // Issued while the transaction is open: it must not be rolled back with it.
      const outside = db.run('INSERT INTO a (id, n) VALUES (?, ?)', ['outside', 1]);
      await assert.rejects(inTx, /roll back/);
      assert.equal(await outside, 1);
      const rows = await db.all<{ id: string }>('SELECT id FROM a ORDER BY id');
      assert.deepEqual(rows.map((r) => r.id), ['outside']);
      await db.close();
    });

    test('migrations apply once, in order, and record the schema version', { skip: skip ?? false }, async () => {
      const db = await engines.open();
      assert.equal(await schemaVersion(db), null);
      assert.deepEqual((await migrate(db, migrations.slice(0, 1))).applied, ['0001-a']);
      assert.equal(await schemaVersion(db), '0001-a');
      // An upgrade applies only what is new.
      assert.deepEqual((await migrate(db, migrations)).applied, ['0002-b']);
      assert.deepEqual((await migrate(db, migrations)).applied, []);
      assert.equal(await schemaVersion(db), '0002-b');
      await db.run('INSERT INTO a (id, n, note) VALUES (?, ?, ?)', ['z', 1, 'has the new column']);
      await db.close();
    });

    test('nodes starting at once migrate one after another: each migration runs exactly once', { skip: skip ?? false }, async () => {
      const db = await engines.open();
      let runs = 0;
      const counted: Migration[] = [{ name: '0001-a', up: async (q) => (runs++, await q.exec('CREATE TABLE a (id TEXT PRIMARY KEY)')) }];
      const results = await Promise.all([migrate(db, counted), migrate(db, counted), migrate(db, counted)]);
      assert.equal(runs, 1);
      assert.deepEqual(results.map((r) => r.applied.length).sort(), [0, 0, 1]);
      await db.close();
    });

    test('a failing migration leaves the database as it was, and a newer schema is refused', { skip: skip ?? false }, async () => {
      const db = await engines.open();
      await migrate(db, migrations.slice(0, 1));
      const broken: Migration[] = [...migrations, { name: '0003-broken', up: (q) => q.exec('ALTER TABLE no_such_table ADD COLUMN x TEXT') }];
      await assert.rejects(migrate(db, broken));
      assert.equal(await schemaVersion(db), '0001-a'); // 0002 rolled back with 0003
      await assert.rejects(db.run('INSERT INTO a (id, n, note) VALUES (?, ?, ?)', ['q', 1, 'x']));
      await migrate(db, migrations);
      // An older server (knowing only 0001) refuses the database a newer one migrated.
      await assert.rejects(migrate(db, migrations.slice(0, 1)), SchemaTooNewError);
      await db.close();
    });
  });
}

test('one PostgreSQL pool per process: engines on the same URL share it', async (t) => {
  const skip = await pgUnavailable();
  if (skip) return t.skip(skip);
  const schema = freshSchemaName('dbpool');
  const a = await PostgresEngine.open({ url: PG_URL, schema, max: 3 });
  const b = await PostgresEngine.open({ url: PG_URL, schema, max: 3 });
  const { drop } = rawClient(schema);
  try {
    const rows = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).get<{ pid: number }>('SELECT pg_backend_pid() AS pid, pg_sleep(0.02)')));
    const pids = new Set(rows.map((r) => r!.pid));
    assert.ok(pids.size <= 3, `20 concurrent queries through two engines used the one pool's ≤ 3 connections (saw ${pids.size})`);
    await a.close();
    // Still open for b.
    assert.equal((await b.all('SELECT 1 AS one')).length, 1);
  } finally {
    await b.close();
    await drop();
  }
});

test("PostgreSQL connections carry the node's application_name (pg_stat_activity tells the nodes' connections apart)", async (t) => {
  const skip = await pgUnavailable();
  if (skip) return t.skip(skip);
  const schema = freshSchemaName('dbapp');
  const db = await PostgresEngine.open({ url: PG_URL, schema, max: 2, applicationName: 'magpie node-a' });
  const { drop } = rawClient(schema);
  try {
    const row = await db.get<{ app: string }>("SELECT current_setting('application_name') AS app");
    assert.equal(row!.app, process.env.PGAPPNAME || 'magpie node-a', 'the engine names its connections (PGAPPNAME, when set, wins)');
    const inTx = await db.transaction((tx) => tx.get<{ app: string }>("SELECT current_setting('application_name') AS app"));
    assert.equal(inTx!.app, row!.app, 'a transaction\'s connection carries it too');
  } finally {
    await db.close();
    await drop();
  }
});

test('sqlite: a relaxedSync transaction commits with synchronous NORMAL, then the connection is FULL again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'magpie-db-relaxed-'));
  const db = new SqliteEngine(join(dir, 'db.sqlite'), { checkpointMs: 0 });
  try {
    await db.exec('CREATE TABLE t (x INTEGER)');
    assert.equal(db.synchronous, 'full');
    const inside = await db.transaction(async (tx) => {
      await tx.run('INSERT INTO t (x) VALUES (?)', [1]);
      return (await tx.get<{ synchronous: number }>('PRAGMA synchronous'))?.synchronous;
    }, { relaxedSync: true });
    assert.equal(inside, 1, 'NORMAL inside the relaxed transaction');
    assert.equal(db.synchronous, 'full');
    // A relaxed transaction that fails restores the level too.
    await assert.rejects(db.transaction(async () => {
      throw new Error('boom');
    }, { relaxedSync: true }));
    assert.equal(db.synchronous, 'full');
    const plain = await db.transaction(async (tx) => (await tx.get<{ synchronous: number }>('PRAGMA synchronous'))?.synchronous);
    assert.equal(plain, 2, 'FULL in an ordinary transaction');
    assert.deepEqual(await db.all('SELECT x FROM t'), [{ x: 1 }]);
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: the connection\'s page cache is the one asked for when it is opened, and can be changed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'magpie-db-cache-'));
  try {
    const db = new SqliteEngine(join(dir, 'c.sqlite'), { checkpointMs: 0, cacheKib: 8_192 });
    const cacheSize = async () => (await db.get<{ cache_size: number }>('PRAGMA cache_size'))!.cache_size;
    assert.equal(await cacheSize(), -8_192);
    db.cacheKib = 65_536;
    assert.equal(await cacheSize(), -65_536);
    await db.run('CREATE TABLE t (x TEXT)');
    assert.ok(db.sizeBytes > 0 && db.sizeBytes % 4096 === 0, `size ${db.sizeBytes}`);
    await db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
