import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqlitePushStore } from '../src/push/sqlite-push-store.ts';
import { runPushStoreContract } from './push-store-contract.ts';

runPushStoreContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'magpie-pushstore-'));
  const store = new SqlitePushStore({ path: join(dir, 'magpie.db') });
  await store.migrate();
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
