import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { migrate } from '../src/db/migrate.ts';
import { MIGRATIONS } from '../src/db/migrations/index.ts';
import { messageTables, runSearchContract } from './search-contract.ts';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { SqlSearchStore } from '../src/search/search-store.ts';
import { SearchService } from '../src/search/search-service.ts';
import { searchableText } from '../src/search/extract.ts';
import { openSqliteStore } from '../src/store/open.ts';

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

describe('sqlite: the search index in a file of its own (search/sqlite-search-db.ts, migration 0025-search-file)', () => {
  it('a new search file merges 16 segments at a time (what migration 0021 set in the main file)', async () => {
    const fx = await openSqlite();
    try {
      new SqlSearchStore(fx.db); // attaches (and creates) the search file on the engine's connection
      assert.equal((await fx.db.get<{ v: number }>("SELECT v FROM search.search_fts_config WHERE k = 'automerge'"))?.v, 16);
      assert.equal(await fx.db.get("SELECT 1 FROM main.sqlite_master WHERE name IN ('search_docs', 'search_fts', 'search_progress')"), undefined, 'nothing of the index in the main file');
      assert.ok(existsSync(join(dirname(fx.db.path), 'magpie.search.db')));
    } finally {
      await fx.cleanup();
    }
  });

  it('an old database with the index in the main file migrates: its index tables go, and the new file re-indexes every message', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'magpie-search-'));
    const db = new SqliteEngine(join(dir, 'magpie.db'), { checkpointMs: 0 });
    try {
      const before = MIGRATIONS.findIndex((m) => m.name === '0025-search-file');
      assert.ok(before > 0);
      await migrate(db, MIGRATIONS.slice(0, before));
      // As 0022's indexer left it: documents and point in the main file.
      await db.run('INSERT INTO members (conv_id, user_id, joined_at, joined_seq) VALUES (?, ?, 0, 0)', ['d:a:b', 'a']);
      for (let i = 1; i <= 40; i++) {
        await db.run('INSERT INTO messages (conv_id, seq, id, sender_id, client_msg_id, kind, body, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', ['d:a:b', i, `old${i}`, 'a', `old${i}`, 'text', JSON.stringify({ text: `document number ${i} about magpies` }), i]);
        await db.run('INSERT INTO search_docs (conv_id, seq, sender_id, kind, time, body) VALUES (?, ?, ?, ?, ?, ?)', ['d:a:b', i, 'a', 'text', i, `document number ${i} about magpies`]);
      }
      await db.run('UPDATE search_progress SET msg_rowid = (SELECT MAX(rowid) FROM messages)');
      await migrate(db, MIGRATIONS);
      assert.equal(await db.get("SELECT 1 FROM main.sqlite_master WHERE name IN ('search_docs', 'search_fts', 'search_progress', 'search_docs_ai')"), undefined, 'the old index is gone from the main file');
      await db.close();
      // The server's store: its index thread re-indexes from rowid 0 into the new file.
      const store = await openSqliteStore({ path: join(dir, 'magpie.db'), ringCapacity: 100, writerThread: true, checkpointMs: 0, searchText: searchableText, searchIndexDelayMs: 60_000 });
      try {
        const svc = new SearchService(new SqlSearchStore(store.db, { index: store.searchIndex! }), { syncIndex: () => store.syncSearchIndex() });
        assert.equal((await svc.search('a', { query: 'magpies', limit: 100 })).hits.length, 40);
        assert.equal(Number((await store.searchIndex!.reader.get<{ n: number }>('SELECT COUNT(*) AS n FROM search.search_docs'))?.n), 40);
      } finally {
        await store.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
