import { it } from 'node:test';
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { pgPush } from './sql-engines.ts';
import { runPushStoreContract } from './push-store-contract.ts';

/**
 * The PushStore contract against PostgreSQL at MAGPIE_TEST_PG (default: local trust auth),
 * in a fresh schema dropped afterwards. Skips when PostgreSQL is not reachable, unless
 * MAGPIE_REQUIRE_SERVICES=1 (CI), where that is a failure.
 */
const url = process.env.MAGPIE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const shown = url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');

async function reachable(): Promise<string | null> {
  const sql = postgres(url, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`SELECT 1`;
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

const problem = await reachable();
if (problem === null) {
  runPushStoreContract('postgres', async () => {
    const schema = `magpie_push_test_${randomBytes(6).toString('hex')}`;
    const store = await pgPush(schema);
    return {
      store,
      cleanup: async () => {
        await store.close();
        const admin = postgres(url, { max: 1, onnotice: () => {} });
        try {
          await admin`DROP SCHEMA IF EXISTS ${admin(schema)} CASCADE`;
        } finally {
          await admin.end({ timeout: 5 });
        }
      },
    };
  });
} else if (process.env.MAGPIE_REQUIRE_SERVICES === '1') {
  it('PushStore contract: postgres', () => {
    throw new Error(`PostgreSQL not reachable at ${shown} (MAGPIE_REQUIRE_SERVICES=1): ${problem}`);
  });
} else {
  it('PushStore contract: postgres', { skip: `PostgreSQL not reachable at ${shown}: ${problem}` }, () => {});
}
