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
