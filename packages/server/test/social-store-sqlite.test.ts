import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { migrate } from '../src/db/migrate.ts';
import { MIGRATIONS } from '../src/db/migrations/index.ts';
import { NICK_SEARCH, SqlSocialStore, nickParams } from '../src/social/sql-social-store.ts';
import { runSocialStoreContract } from './social-store-contract.ts';

runSocialStoreContract('sqlite', async ({ changeLogCapacity }) => {
  const dir = await mkdtemp(join(tmpdir(), 'magpie-social-'));
  const db = new SqliteEngine(join(dir, 'magpie.db'), { checkpointMs: 0 });
  await migrate(db, MIGRATIONS);
  const store = new SqlSocialStore(db, { changeLogCapacity });
  return {
    store,
    addUser: async (id, username, nickname) => {
      await db.run('INSERT INTO users (id, username, password_hash, nickname, created_at) VALUES (?, ?, ?, ?, ?)', [id, username, 'x', nickname, Date.now()]);
    },
    count: async (table) => Number((await db.get<{ n: number }>(`SELECT count(*) AS n FROM ${table}`))!.n),
    explainSearch: async () =>
      (await db.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${NICK_SEARCH.sqlite}`, nickParams('sqlite', 'ab', null, 10))).map((r) => r.detail).join('\n'),
    cleanup: async () => {
      await store.close();
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
