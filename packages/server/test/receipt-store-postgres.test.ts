import { PostgresEngine } from '../src/db/postgres-engine.ts';
import { migrate } from '../src/db/migrate.ts';
import { MIGRATIONS } from '../src/db/migrations/index.ts';
import { SqlReceiptStore } from '../src/receipts/sql-receipt-store.ts';
import { runReceiptStoreContract } from './receipt-store-contract.ts';
import { PG_URL, freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

// Needs PostgreSQL at 127.0.0.1:5432; skips with a message when absent.
const skip = await pgUnavailable();
if (skip) console.log(`# ReceiptStore on postgres skipped: ${skip}`);
runReceiptStoreContract('postgres', async () => {
  if (skip) return null;
  const schema = freshSchemaName('receipts_contract');
  const db = await PostgresEngine.open({ url: PG_URL, schema, max: 4 });
  // A second pool: another node on the same database.
  const db2 = await PostgresEngine.open({ url: PG_URL, schema, max: 4 });
  await migrate(db, MIGRATIONS);
  return {
    store: new SqlReceiptStore(db),
    other: new SqlReceiptStore(db2),
    cleanup: async () => {
      await db.close();
      await db2.close();
      await rawClient(schema).drop();
    },
  };
});
