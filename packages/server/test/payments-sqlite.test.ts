import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { migrate } from '../src/db/migrate.ts';
import { MIGRATIONS } from '../src/db/migrations/index.ts';
import { SqlWalletStore } from '../src/wallet/sql-wallet-store.ts';
import { SqlPaymentsStore } from '../src/wallet/payments/sql-payments-store.ts';
import { runPaymentsContract } from './payments-contract.ts';

runPaymentsContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'magpie-payments-'));
  const db = new SqliteEngine(join(dir, 'magpie.db'));
  await migrate(db, MIGRATIONS);
  // The wallet store on the same database (it does not own the connection: its close is a no-op here).
  const wallet = new SqlWalletStore(db);
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
