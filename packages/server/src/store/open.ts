import type { SqlEngine } from '../db/engine.ts';
import { migrate } from '../db/migrate.ts';
import { MIGRATIONS } from '../db/migrations/index.ts';
import { SqlStore, type SqlStoreOptions } from './sql-store.ts';

/**
 * A Store on its own database (tests, tools): opens the engine, migrates it, and closes it
 * with the store. The server instead builds `new SqlStore(db, …)` on its shared database.
 */
export async function openSqliteStore(opts: SqlStoreOptions & { path: string; synchronous?: 'full' | 'normal'; checkpointMs?: number; writerThread?: boolean }): Promise<SqlStore> {
  const { SqliteEngine } = await import('../db/sqlite-engine.ts');
  const engine = new SqliteEngine(opts.path, { synchronous: opts.synchronous, checkpointMs: opts.checkpointMs });
  if (!opts.writerThread) return ready(engine, opts);
  // Migrate first: the writer thread's store expects the current schema.
  try {
    await migrate(engine, MIGRATIONS);
  } catch (err) {
    await engine.close();
    throw err;
  }
  const { startSqliteWriter } = await import('./sqlite-writer.ts');
  const writer = await startSqliteWriter(engine, { ringCapacity: opts.ringCapacity, synchronous: opts.synchronous ?? 'full' });
  const store = await ready(engine, { ...opts, ...(writer ? { writer } : {}) });
  try {
    await store.searchIndex?.start();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

export async function openPostgresStore(opts: SqlStoreOptions & { url: string; schema?: string; max?: number; idleTimeoutS?: number }): Promise<SqlStore> {
  const { PostgresEngine } = await import('../db/postgres-engine.ts');
  const engine = await PostgresEngine.open({ url: opts.url, ...(opts.schema ? { schema: opts.schema } : {}), ...(opts.max ? { max: opts.max } : {}), ...(opts.idleTimeoutS !== undefined ? { idleTimeoutS: opts.idleTimeoutS } : {}) });
  return ready(engine, opts);
}

async function ready(engine: SqlEngine, opts: SqlStoreOptions): Promise<SqlStore> {
  const store = new SqlStore(engine, { ...opts, ownsEngine: true });
  try {
    await store.migrate();
  } catch (err) {
    await engine.close();
    throw err;
  }
  return store;
}
