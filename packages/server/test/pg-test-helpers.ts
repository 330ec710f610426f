/**
 * PostgreSQL for tests: postgres://postgres@127.0.0.1:5432/test (override with
 * MAGPIE_TEST_PG). Each run gets its own schema, dropped afterwards. When the server is
 * unreachable the tests are skipped with a message — unless MAGPIE_REQUIRE_SERVICES=1,
 * when they fail.
 */
import postgres from 'postgres';
import { randomBytes } from 'node:crypto';

export const PG_URL = process.env.MAGPIE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

/** null when reachable; otherwise the reason to skip. Throws when services are required. */
export async function pgUnavailable(): Promise<string | null> {
  const sql = postgres(PG_URL, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`SELECT 1`;
    return null;
  } catch (err) {
    const why = `PostgreSQL unreachable at ${PG_URL} (${(err as Error).message}); start it or set MAGPIE_TEST_PG`;
    if (process.env.MAGPIE_REQUIRE_SERVICES === '1') throw new Error(`MAGPIE_REQUIRE_SERVICES=1: ${why}`);
    console.warn(`SKIP: ${why}`);
    return why;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

export function freshSchemaName(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

/** A raw client on `schema`, and a function that drops the schema and closes it. */
export function rawClient(schema: string): { sql: postgres.Sql; drop: () => Promise<void> } {
  const sql = postgres(PG_URL, { max: 2, onnotice: () => {}, connection: { search_path: schema } });
  return {
    sql,
    drop: async () => {
      await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await sql.end({ timeout: 2 });
    },
  };
}

/** A PostgreSQL database of its own for an end-to-end test (servers started on it migrate it). */
export interface TestDatabase {
  /** `<prefix>_<random>`. */
  readonly name: string;
  /** Create the database; resolves with its URL (for MAGPIE_STORE). */
  create(): Promise<string>;
  /** Drop it (WITH FORCE: a node killed mid-test may still hold connections) and close the admin connection. */
  drop(): Promise<void>;
}

/**
 * The setup block the PostgreSQL and cluster end-to-end tests share: nothing is connected
 * before create(), so a suite skipped for want of PostgreSQL opens nothing.
 */
export function testDatabase(prefix: string): TestDatabase {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  let admin: postgres.Sql | null = null;
  return {
    name,
    async create() {
      admin ??= postgres(PG_URL, { max: 1, onnotice: () => {} });
      await admin.unsafe(`CREATE DATABASE "${name}"`);
      const url = new URL(PG_URL);
      url.pathname = `/${name}`;
      return url.toString();
    },
    async drop() {
      if (!admin) return;
      await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end({ timeout: 2 });
      admin = null;
    },
  };
}
