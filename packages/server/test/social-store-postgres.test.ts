import { describe, it } from 'node:test';
import { PostgresEngine } from '../src/db/postgres-engine.ts';
import { migrate } from '../src/db/migrate.ts';
import { MIGRATIONS } from '../src/db/migrations/index.ts';
import { SqlSocialStore } from '../src/social/sql-social-store.ts';
import { runSocialStoreContract } from './social-store-contract.ts';
import { PG_URL, freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

const skip = await pgUnavailable();
if (skip) {
  describe('SocialStore contract: postgres', () => {
    it(`skipped: ${skip}`, { skip }, () => {});
  });
} else {
  runSocialStoreContract('postgres', async ({ changeLogCapacity }) => {
    const schema = freshSchemaName('social_contract');
    const db = await PostgresEngine.open({ url: PG_URL, schema, max: 4 });
    await migrate(db, MIGRATIONS);
    const store = new SqlSocialStore(db, { changeLogCapacity });
    return {
      store,
      addUser: async (id, username, nickname) => {
        await db.run('INSERT INTO users (id, username, password_hash, nickname, created_at) VALUES (?, ?, ?, ?, ?)', [id, username, 'x', nickname, Date.now()]);
      },
      count: async (table) => Number((await db.get<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))!.n),
      // The plan with sequential scans off: the index can serve the search.
      explainSearch: () =>
        db.transaction(async (tx) => {
          await tx.exec('SET LOCAL enable_seqscan = off');
          const rows = await tx.all<{ 'QUERY PLAN': string }>(
            `EXPLAIN SELECT u.id FROM users u
             WHERE lower(u.nickname) ~>=~ lower('ab') AND lower(u.nickname) ~<~ (lower('ab') || chr(1114111)) AND starts_with(lower(u.nickname), lower('ab'))
             ORDER BY lower(u.nickname) USING ~<~, u.id LIMIT 10`,
          );
          return rows.map((r) => r['QUERY PLAN']).join('\n');
        }),
      cleanup: async () => {
        await store.close();
        await db.close();
        await rawClient(schema).drop();
      },
    };
  });
}
