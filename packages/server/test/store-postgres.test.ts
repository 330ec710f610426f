import { it } from 'node:test';
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { openPostgresStore } from '../src/store/open.ts';
import type { SqlStore } from '../src/store/sql-store.ts';
import { LEGACY_SCHEMA_SQL } from './legacy-schema.ts';
import { CONTRACT_RING_CAPACITY, LEGACY_ROWS_SQL, checkLegacyUpgrade, runStoreContract } from './store-contract.ts';

/**
 * Runs the Store contract against PostgreSQL at MAGPIE_TEST_PG (default: local trust auth),
 * in a fresh schema per run that is dropped afterwards. Skips when the server is not
 * reachable, unless MAGPIE_REQUIRE_SERVICES=1 (CI), where that is a failure.
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
  runStoreContract('postgres', async () => {
    const schema = `magpie_test_${randomBytes(6).toString('hex')}`;
    const store = await openPostgresStore({ url, ringCapacity: CONTRACT_RING_CAPACITY, schema, max: 10 });
    await store.migrate();
    const counter = postgres(url, { max: 1, onnotice: () => {}, connection: { search_path: schema } });
    return {
      store,
      countRows: async (table: string) => Number((await counter.unsafe(`SELECT COUNT(*)::int AS n FROM ${table}`))[0]!.n),
      cleanup: async () => {
        await counter.end({ timeout: 5 });
        await store.close();
        const admin = postgres(url, { max: 1, onnotice: () => {} });
        try {
          // Backends of a failed test may still hold locks for a moment: retry on deadlock/lock timeout.
          for (let attempt = 1; ; attempt++) {
            try {
              await admin`SET lock_timeout = '5s'`;
              await admin`DROP SCHEMA IF EXISTS ${admin(schema)} CASCADE`;
              break;
            } catch (err) {
              const code = (err as { code?: string }).code;
              if (attempt >= 5 || (code !== '40P01' && code !== '55P03')) throw err;
              await new Promise((r) => setTimeout(r, 500 * attempt));
            }
          }
        } finally {
          await admin.end({ timeout: 5 });
        }
      },
    };
  });

  it('postgres: a database from before groups is upgraded in place (columns added, rows kept)', async () => {
    const schema = `magpie_legacy_${randomBytes(6).toString('hex')}`;
    const raw = postgres(url, { max: 1, onnotice: () => {} });
    let store: SqlStore | undefined;
    try {
      await raw.begin(async (tx) => {
        await tx.unsafe(`CREATE SCHEMA "${schema}"; SET LOCAL search_path TO "${schema}";`).simple();
        await tx.unsafe(LEGACY_SCHEMA_SQL).simple();
        await tx.unsafe(LEGACY_ROWS_SQL).simple();
      });
      store = await openPostgresStore({ url, ringCapacity: CONTRACT_RING_CAPACITY, schema, max: 2 });
      await checkLegacyUpgrade(store);
    } finally {
      await store?.close();
      await raw.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await raw.end({ timeout: 5 });
    }
  });
} else if (process.env.MAGPIE_REQUIRE_SERVICES === '1') {
  it('Store contract: postgres', () => {
    throw new Error(`PostgreSQL not reachable at ${shown} (MAGPIE_REQUIRE_SERVICES=1): ${problem}`);
  });
} else {
  it('Store contract: postgres', { skip: `PostgreSQL not reachable at ${shown}: ${problem}` }, () => {});
}
