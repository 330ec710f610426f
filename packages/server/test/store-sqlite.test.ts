import Database from 'better-sqlite3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { openSqliteStore } from '../src/store/open.ts';
import { LEGACY_SCHEMA_SQL } from './legacy-schema.ts';
import { CONTRACT_RING_CAPACITY, LEGACY_ROWS_SQL, checkLegacyUpgrade, runStoreContract } from './store-contract.ts';

for (const writerThread of [false, true]) runStoreContract(writerThread ? 'sqlite, writer thread' : 'sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'magpie-store-'));
  const path = join(dir, 'magpie.db');
  // With the writer thread, appends and ACK flushes run on a second connection in a worker.
  const store = await openSqliteStore({ path, ringCapacity: CONTRACT_RING_CAPACITY, writerThread });
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

it('sqlite: a database from before groups is upgraded in place (columns added, rows kept)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'magpie-legacy-'));
  const path = join(dir, 'magpie.db');
  const old = new Database(path);
  old.exec(LEGACY_SCHEMA_SQL);
  old.exec(LEGACY_ROWS_SQL);
  old.close();
  const store = await openSqliteStore({ path, ringCapacity: CONTRACT_RING_CAPACITY });
  try {
    await checkLegacyUpgrade(store);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
