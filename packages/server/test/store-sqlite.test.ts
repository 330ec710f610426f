import Database from 'better-sqlite3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../src/store/sqlite-store.ts';
import { CONTRACT_RING_CAPACITY, runStoreContract } from './store-contract.ts';

runStoreContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'magpie-store-'));
  const path = join(dir, 'magpie.db');
  const store = new SqliteStore({ path, ringCapacity: CONTRACT_RING_CAPACITY });
  await store.migrate();
  // A second, read-only connection (WAL) to count rows.
  const reader = new Database(path, { readonly: true });
  return {
    store,
    countRows: async (table: string) => (reader.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n,
    cleanup: async () => {
      reader.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
