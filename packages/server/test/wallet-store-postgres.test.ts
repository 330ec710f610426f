import { PostgresWalletStore } from '../src/wallet/postgres-wallet-store.ts';
import { runWalletStoreContract } from './wallet-store-contract.ts';
import { PG_URL, freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';
import { describe, it } from 'node:test';

const skip = await pgUnavailable();
if (skip) {
  describe('WalletStore contract: postgres', () => {
    it(`skipped: ${skip}`, { skip }, () => {});
  });
} else {
  runWalletStoreContract('postgres', async () => {
    const schema = freshSchemaName('wallet_contract');
    const store = new PostgresWalletStore({ url: PG_URL, schema });
    await store.migrate();
    const raw = rawClient(schema);
    return {
      store,
      exec: async (q) => void (await raw.sql.unsafe(q)),
      cleanup: async () => {
        await store.close();
        await raw.drop();
      },
    };
  });
}
