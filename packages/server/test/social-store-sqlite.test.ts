import Database from 'better-sqlite3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SCHEMA_SQL } from '../src/store/schema.ts';
import { SqliteSocialStore } from '../src/social/sqlite-social-store.ts';
import { runSocialStoreContract } from './social-store-contract.ts';

runSocialStoreContract('sqlite', async ({ changeLogCapacity }) => {
  const dir = await mkdtemp(join(tmpdir(), 'magpie-social-'));
  const path = join(dir, 'magpie.db');
  // The messaging Store's tables (its `users` table above all) exist before the social store opens.
  const raw = new Database(path);
  raw.pragma('journal_mode = WAL');
  raw.exec(SCHEMA_SQL);
  const store = new SqliteSocialStore({ path, changeLogCapacity });
  return {
    store,
    addUser: async (id, username, nickname) => {
      raw.prepare('INSERT INTO users (id, username, password_hash, nickname, created_at) VALUES (?, ?, ?, ?, ?)').run(id, username, 'x', nickname, Date.now());
    },
    count: async (table) => Number((raw.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n),
    explainSearch: async () => store.explainNicknameSearch(),
    cleanup: async () => {
      raw.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
