import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { migrate } from '../src/db/migrate.ts';
import { MIGRATIONS } from '../src/db/migrations/index.ts';
import { messageTables, runSearchContract } from './search-contract.ts';

runSearchContract('sqlite', async () => {
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
});
