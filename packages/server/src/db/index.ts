import { join } from 'node:path';
import type { Config } from '../config/config.ts';
import type { SqlEngine } from './engine.ts';
import { migrate } from './migrate.ts';
import { MIGRATIONS } from './migrations/index.ts';

export type { SqlEngine, Queryable, Dialect, Row, TransactionOptions } from './engine.ts';
export { forUpdate } from './engine.ts';
export { migrate, schemaVersion, SchemaTooNewError, type Migration } from './migrate.ts';
export { MIGRATIONS } from './migrations/index.ts';

export function isPostgresUrl(store: string): boolean {
  return store.startsWith('postgres://') || store.startsWith('postgresql://');
}

/**
 * The server's database for this configuration, migrated to the current schema: SQLite
 * (`dataDir/magpie.db`, the process's one connection) or PostgreSQL (the process's one pool).
 */
export async function openDatabase(config: Config, opts: { schema?: string; log?: (msg: string) => void; warn?: (msg: string) => void; applicationName?: string } = {}): Promise<SqlEngine> {
  let engine: SqlEngine;
  if (config.store === 'sqlite') {
    const { SqliteEngine } = await import('./sqlite-engine.ts');
    // Before the first file connection: the WAL write-coalescing VFS on or off (store/sqlite-wal-coalesce.ts).
    const { setSqliteWalCoalescing } = await import('../store/sqlite-wal-coalesce.ts');
    setSqliteWalCoalescing(config.sqliteWalCoalesce, opts.warn ? { warn: opts.warn } : {});
    engine = new SqliteEngine(join(config.dataDir, 'magpie.db'), { synchronous: config.sqliteSynchronous, checkpointMs: config.sqliteCheckpointMs });
  } else if (isPostgresUrl(config.store)) {
    const { PostgresEngine } = await import('./postgres-engine.ts');
    engine = await PostgresEngine.open({ url: config.store, max: config.pg.pools.shared, idleTimeoutS: config.pg.idleTimeoutS, ...(opts.schema ? { schema: opts.schema } : {}), ...(opts.applicationName ? { applicationName: opts.applicationName } : {}) });
  } else {
    throw new Error(`unknown store: ${config.store} (use "sqlite" or a postgres:// URL)`);
  }
  try {
    await migrate(engine, MIGRATIONS, opts.log);
  } catch (err) {
    await engine.close();
    throw err;
  }
  return engine;
}
