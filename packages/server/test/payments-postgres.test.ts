import { describe, it } from 'node:test';
import { PostgresEngine } from '../src/db/postgres-engine.ts';
import { migrate } from '../src/db/migrate.ts';
import { MIGRATIONS } from '../src/db/migrations/index.ts';
import { SqlWalletStore } from '../src/wallet/sql-wallet-store.ts';
import { SqlPaymentsStore } from '../src/wallet/payments/sql-payments-store.ts';
import { runPaymentsContract } from './payments-contract.ts';
import { PG_URL, freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

const skip = await pgUnavailable();
if (skip) {
  describe('payments: postgres', () => {
    it(`skipped: ${skip}`, { skip }, () => {});
  });
} else {
  runPaymentsContract('postgres', async () => {
    const schema = freshSchemaName('payments');
    const db = await PostgresEngine.open({ url: PG_URL, schema, max: 4 });
    await migrate(db, MIGRATIONS);
    const wallet = new SqlWalletStore(db);
    return {
      store: new SqlPaymentsStore(db),
      wallet,
      cleanup: async () => {
        await wallet.close();
        await db.close();
        await rawClient(schema).drop();
      },
    };
  });
}
