import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { migrate } from '../src/db/migrate.ts';
import { MIGRATIONS } from '../src/db/migrations/index.ts';
import { SqlReceiptStore } from '../src/receipts/sql-receipt-store.ts';
import { runReceiptStoreContract } from './receipt-store-contract.ts';

runReceiptStoreContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'magpie-receipts-'));
  const db = new SqliteEngine(join(dir, 'magpie.db'), { checkpointMs: 0 });
  await migrate(db, MIGRATIONS);
  return {
    store: new SqlReceiptStore(db),
    other: new SqlReceiptStore(db),
    cleanup: async () => {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
