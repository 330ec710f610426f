import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { migrate } from '../src/db/migrate.ts';
import { MIGRATIONS } from '../src/db/migrations/index.ts';
import { SqliteWalletStore } from '../src/wallet/sqlite-wallet-store.ts';
import { SqlPaymentsStore } from '../src/wallet/payments/sql-payments-store.ts';
import { runPaymentsContract } from './payments-contract.ts';

runPaymentsContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'magpie-payments-'));
  const db = new SqliteEngine(join(dir, 'magpie.db'));
  await migrate(db, MIGRATIONS);
  const wallet = new SqliteWalletStore({ path: join(dir, 'magpie.db') });
  return {
    store: new SqlPaymentsStore(db),
    wallet,
    cleanup: async () => {
      await wallet.close();
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
