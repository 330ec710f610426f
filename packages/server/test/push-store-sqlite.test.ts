import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sqlitePush } from './sql-engines.ts';
import { runPushStoreContract } from './push-store-contract.ts';

runPushStoreContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'magpie-pushstore-'));
  const store = await sqlitePush(join(dir, 'magpie.db'));
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
