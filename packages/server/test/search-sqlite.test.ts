import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { migrate } from '../src/db/migrate.ts';
import { MIGRATIONS } from '../src/db/migrations/index.ts';
import { messageTables, runSearchContract } from './search-contract.ts';

const openSqlite = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'magpie-search-'));
  const db = new SqliteEngine(join(dir, 'magpie.db'), { checkpointMs: 0 });
  await migrate(db, MIGRATIONS);
  await messageTables(db);
  return {
    db,
    cleanup: async () => {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
};

// Small scopes are scanned with LIKE, large ones use the FTS5 trigram index: both paths.
runSearchContract('sqlite, trigram index', openSqlite, { scanLimit: -1 });
runSearchContract('sqlite, scan of small scopes', openSqlite);

describe('sqlite: the trigram index merges 16 segments at a time (migration 0021-search-automerge)', () => {
  const automerge = async (db: SqliteEngine) => (await db.get<{ v: number }>("SELECT v FROM search_fts_config WHERE k = 'automerge'"))?.v;
  it('on a new database', async () => {
    const fx = await openSqlite();
    try {
      assert.equal(await automerge(fx.db), 16);
    } finally {
      await fx.cleanup();
    }
  });
  it('on a database migrated before it, whose documents are all still found', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'magpie-search-'));
    const db = new SqliteEngine(join(dir, 'magpie.db'), { checkpointMs: 0 });
    try {
      const before = MIGRATIONS.findIndex((m) => m.name === '0021-search-automerge');
      assert.ok(before > 0);
      await migrate(db, MIGRATIONS.slice(0, before));
      for (let i = 1; i <= 40; i++) await db.run('INSERT INTO search_docs (conv_id, seq, sender_id, kind, time, body) VALUES (?, ?, ?, ?, ?, ?)', ['d:a:b', i, 'a', 'text', i, `document number ${i} about magpies`]);
      assert.equal(await automerge(db), undefined, 'FTS5 default (4), not stored');
      await migrate(db, MIGRATIONS);
      assert.equal(await automerge(db), 16);
      const hits = await db.all<{ rowid: number }>("SELECT rowid FROM search_fts WHERE search_fts MATCH '\"magpies\"'");
      assert.equal(hits.length, 40);
      assert.equal((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM search_docs'))?.n, 40);
    } finally {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
