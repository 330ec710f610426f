import { pgWallet } from './sql-engines.ts';
import { runWalletStoreContract } from './wallet-store-contract.ts';
import { freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';
import { describe, it } from 'node:test';

const skip = await pgUnavailable();
if (skip) {
  describe('WalletStore contract: postgres', () => {
    it(`skipped: ${skip}`, { skip }, () => {});
  });
} else {
  runWalletStoreContract('postgres', async () => {
    const schema = freshSchemaName('wallet_contract');
    const store = await pgWallet(schema);
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
