/** Retention end to end on SQLite (the real server process; see retention-e2e-suite.ts). */
import { describe, before, after } from 'node:test';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startServer, type ServerProcess } from './harness.ts';
import { RETENTION_ENV, retentionSuite } from './retention-e2e-suite.ts';

describe('retention end to end (SQLite)', () => {
  let srv: ServerProcess;
  let db: Database.Database;
  before(async () => {
    srv = await startServer({ env: RETENTION_ENV });
    // A second connection to the server's database file (WAL), to age messages and count rows.
    db = new Database(join(srv.dataDir, 'magpie.db'));
    db.pragma('busy_timeout = 5000');
    // The search index's own file (search/sqlite-search-db.ts): `search_docs` resolves to it.
    db.prepare('ATTACH DATABASE ? AS search').run(join(srv.dataDir, 'magpie.search.db'));
  });
  after(async () => {
    db?.close();
    await srv?.stop();
  });
  retentionSuite(() => ({
    srv,
    sql: async (q, params = []) => {
      const st = db.prepare(q);
      return st.reader ? (st.all(...params) as Record<string, unknown>[]) : (st.run(...params), []);
    },
  }));
});
