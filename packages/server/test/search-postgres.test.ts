import { describe, it } from 'node:test';
import { PostgresEngine } from '../src/db/postgres-engine.ts';
import { migrate } from '../src/db/migrate.ts';
import { MIGRATIONS } from '../src/db/migrations/index.ts';
import { messageTables, runSearchContract } from './search-contract.ts';
import { PG_URL, freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

const skip = await pgUnavailable();
if (skip) {
  describe('search semantics: postgres', () => {
    it(`skipped: ${skip}`, { skip }, () => {});
  });
} else {
  runSearchContract('postgres', async () => {
    const schema = freshSchemaName('search');
    const db = await PostgresEngine.open({ url: PG_URL, schema, max: 4 });
    await migrate(db, MIGRATIONS);
    await messageTables(db);
    return {
      db,
      cleanup: async () => {
        await db.close();
        await rawClient(schema).drop();
      },
    };
  });
}
