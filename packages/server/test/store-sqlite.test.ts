import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../src/store/sqlite-store.ts';
import { CONTRACT_RING_CAPACITY, runStoreContract } from './store-contract.ts';

runStoreContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'magpie-store-'));
  const store = new SqliteStore({ path: join(dir, 'magpie.db'), ringCapacity: CONTRACT_RING_CAPACITY });
  await store.migrate();
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
