import { describe, it } from 'node:test';
import { SCHEMA_SQL } from '../src/store/schema.ts';
import { PostgresSocialStore } from '../src/social/postgres-social-store.ts';
import { runSocialStoreContract } from './social-store-contract.ts';
import { PG_URL, freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

const skip = await pgUnavailable();
if (skip) {
  describe('SocialStore contract: postgres', () => {
    it(`skipped: ${skip}`, { skip }, () => {});
  });
} else {
  runSocialStoreContract('postgres', async ({ changeLogCapacity }) => {
    const schema = freshSchemaName('social_contract');
    const raw = rawClient(schema);
    // The messaging Store's tables (its `users` table above all) exist before the social store migrates.
    await raw.sql.unsafe(`CREATE SCHEMA "${schema}"`);
    await raw.sql.unsafe(SCHEMA_SQL);
    const store = new PostgresSocialStore({ url: PG_URL, schema, changeLogCapacity });
    return {
      store,
      addUser: async (id, username, nickname) => {
        await raw.sql`INSERT INTO users (id, username, password_hash, nickname, created_at) VALUES (${id}, ${username}, 'x', ${nickname}, ${Date.now()})`;
      },
      count: async (table) => Number((await raw.sql.unsafe(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n),
      explainSearch: () => store.explainNicknameSearch(),
      cleanup: async () => {
        await store.close();
        await raw.drop();
      },
    };
  });
}
