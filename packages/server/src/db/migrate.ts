import { Umzug, type UmzugStorage } from 'umzug';
import type { Queryable, SqlEngine } from './engine.ts';

/**
 * One forward-only schema change. Files live in db/migrations/, named NNNN-what.ts, and are
 * never edited once released: a change to a released table is a new migration. `up` gets
 * the transaction every pending migration runs in; write SQL both engines accept, or branch
 * on `db.dialect` where they differ.
 */
export interface Migration {
  name: string;
  up(db: Queryable): Promise<void>;
}

/** Advisory-lock key of migration runs: several nodes starting at once migrate one after another. */
const MIGRATION_LOCK = 4_242_000;

const TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  name TEXT PRIMARY KEY,
  applied_at BIGINT NOT NULL
)`;

export class SchemaTooNewError extends Error {
  constructor(unknown: string[]) {
    super(`the database has migrations this server does not know (${unknown.join(', ')}): it was upgraded by a newer Magpie; run that version or newer`);
    this.name = 'SchemaTooNewError';
  }
}

/**
 * Apply the pending migrations in order, in one transaction under a lock that holds across
 * processes and nodes (PostgreSQL: advisory lock; SQLite: the write lock), and record each in
 * `schema_migrations`. Either all pending migrations apply or none. Refuses a database that a
 * newer server migrated further. Resolves with what it applied and the resulting version.
 */
export async function migrate(engine: SqlEngine, migrations: readonly Migration[], log?: (msg: string) => void): Promise<{ applied: string[]; version: string | null }> {
  assertOrdered(migrations);
  return engine.transaction(
    async (tx) => {
      await tx.exec(TABLE);
      const storage: UmzugStorage<Queryable> = {
        async executed({ context }) {
          return (await context.all<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name')).map((r) => r.name);
        },
        async logMigration({ name, context }) {
          await context.run('INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)', [name, Date.now()]);
        },
        async unlogMigration() {
          throw new Error('migrations are forward-only');
        },
      };
      const known = new Set(migrations.map((m) => m.name));
      const unknown = (await storage.executed({ context: tx })).filter((n) => !known.has(n));
      if (unknown.length) throw new SchemaTooNewError(unknown);
      const umzug = new Umzug<Queryable>({
        migrations: migrations.map((m) => ({ name: m.name, up: ({ context }) => m.up(context) })),
        context: tx,
        storage,
        logger: undefined,
      });
      const applied = (await umzug.up()).map((m) => m.name);
      for (const name of applied) log?.(`schema migration applied: ${name}`);
      return { applied, version: migrations.at(-1)?.name ?? null };
    },
    { lock: MIGRATION_LOCK },
  );
}

/** The last migration applied to this database (its schema version), or null before any. */
export async function schemaVersion(db: Queryable): Promise<string | null> {
  await db.exec(TABLE);
  return (await db.get<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name DESC LIMIT 1'))?.name ?? null;
}

function assertOrdered(migrations: readonly Migration[]): void {
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i - 1]!.name >= migrations[i]!.name) throw new Error(`migrations out of order: ${migrations[i - 1]!.name} before ${migrations[i]!.name}`);
  }
}
