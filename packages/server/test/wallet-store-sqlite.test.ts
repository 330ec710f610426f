import Database from 'better-sqlite3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sqliteWallet } from './sql-engines.ts';
import { runWalletStoreContract } from './wallet-store-contract.ts';

runWalletStoreContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'magpie-wallet-'));
  const path = join(dir, 'magpie.db');
  const store = await sqliteWallet(path);
  const raw = new Database(path);
  return {
    store,
    exec: async (sql) => void raw.exec(sql),
    cleanup: async () => {
      raw.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
