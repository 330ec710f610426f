/**
 * The server's database for store tests: a migrated SqlEngine (db/) on SQLite or PostgreSQL,
 * and stores on it that close the engine with them.
 */
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { PostgresEngine } from '../src/db/postgres-engine.ts';
import { migrate } from '../src/db/migrate.ts';
import { MIGRATIONS } from '../src/db/migrations/index.ts';
import type { SqlEngine } from '../src/db/engine.ts';
import { SqlWalletStore, type SqlWalletStoreOptions } from '../src/wallet/sql-wallet-store.ts';
import { SqlPushStore } from '../src/push/sql-push-store.ts';
import { PG_URL } from './pg-test-helpers.ts';

/** A migrated SQLite database (':memory:' by default: a private connection). */
export async function sqliteDb(path = ':memory:', opts: { synchronous?: 'full' | 'normal' } = {}): Promise<SqlEngine> {
  const db = new SqliteEngine(path, { checkpointMs: 0, ...opts });
  await migrate(db, MIGRATIONS);
  return db;
}

/**
 * A migrated PostgreSQL database in `schema` (created when missing). `node` names a separate
 * pool for the same database, as another node of a cluster would hold (the engine shares one
 * pool per URL and schema in a process).
 */
export async function pgDb(schema: string, opts: { max?: number; node?: string } = {}): Promise<SqlEngine> {
  const url = opts.node ? `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}application_name=${encodeURIComponent(opts.node)}` : PG_URL;
  const db = await PostgresEngine.open({ url, schema, max: opts.max ?? 4 });
  await migrate(db, MIGRATIONS);
  return db;
}

/** `store` whose close() also closes `db`. */
export function owning<T extends { close(): Promise<void> }>(store: T, db: SqlEngine): T {
  const close = store.close.bind(store);
  return Object.assign(store, {
    close: async () => {
      await close();
      await db.close();
    },
  });
}

/** A wallet store on its own migrated SQLite database (closing the store closes it). */
export async function sqliteWallet(path = ':memory:', opts: SqlWalletStoreOptions & { synchronous?: 'full' | 'normal' } = {}): Promise<SqlWalletStore> {
  const db = await sqliteDb(path, opts.synchronous ? { synchronous: opts.synchronous } : {});
  return owning(new SqlWalletStore(db, opts), db);
}

/** A wallet store on PostgreSQL in `schema` (closing the store closes its pool). */
export async function pgWallet(schema: string, opts: SqlWalletStoreOptions & { max?: number; node?: string } = {}): Promise<SqlWalletStore> {
  const db = await pgDb(schema, opts);
  return owning(new SqlWalletStore(db, opts), db);
}

/** A push store on its own migrated SQLite database (closing the store closes it). */
export async function sqlitePush(path = ':memory:'): Promise<SqlPushStore> {
  const db = await sqliteDb(path, { synchronous: 'normal' });
  return owning(new SqlPushStore(db), db);
}

/** A push store on PostgreSQL in `schema` (closing the store closes its pool). */
export async function pgPush(schema: string, opts: { max?: number; node?: string } = {}): Promise<SqlPushStore> {
  const db = await pgDb(schema, opts);
  return owning(new SqlPushStore(db), db);
}
