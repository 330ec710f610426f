import type { Dialect, Queryable } from './engine.ts';

/**
 * SQL fragments where SQLite and PostgreSQL differ, for statements otherwise written once.
 * Keep this file small: a fragment belongs here only when no common form exists.
 */

/** Row locks for the rest of the transaction: `FOR UPDATE` on PostgreSQL; nothing on SQLite, where BEGIN IMMEDIATE already excludes every other writer. */
export function forUpdate(dialect: Dialect): string {
  return dialect === 'postgres' ? ' FOR UPDATE' : '';
}

/**
 * Whether the engine has row locks worth taking: PostgreSQL does; SQLite has none (BEGIN
 * IMMEDIATE already excludes every other writer), so a pass that only reads rows to lock them
 * (SELECT … FOR UPDATE) is pure cost there and is skipped.
 */
export function locksRows(dialect: Dialect): boolean {
  return dialect === 'postgres';
}

/**
 * PostgreSQL: the statement that ends a transaction's last pipeline (`tx.run(PIPELINE_COMMIT)`
 * as its final statement). `PostgresEngine.transaction` sends it at once (not at the driver's
 * next setImmediate) and sends no COMMIT of its own afterwards, so the row locks are released
 * and the connection is free when that pipeline's results are in. Nothing may run in the
 * transaction after it (such a statement is refused).
 */
export const PIPELINE_COMMIT = 'COMMIT';

/**
 * PostgreSQL: `tx.run(PIPELINE_FLUSH)` after the statements of a round trip sends them at once.
 * postgres.js writes statements shorter than 1 KiB only at its next setImmediate, after the rest
 * of the node's event-loop turn (tens of ms on a busy node): a round trip whose first statements
 * filled 1 KiB (a lock) went out at once and its tail (the reads made under that lock) only then,
 * with the lock held. The engine sends it as an empty query padded past 1 KiB (no result).
 */
export const PIPELINE_FLUSH = '/* flush */';

/** SQLite: up to this many values are bound as `(?, ?, …)` (one prepared statement per length); longer lists go through `textList`. */
const INLINE_MAX = 32;

/**
 * A list of text values for `x IN …`: the SQL to put after IN and its parameters. On SQLite
 * short lists are inline placeholders (no JSON parsing), long ones one JSON parameter. On
 * PostgreSQL always one array parameter (`Queryable.textList`): one statement text whatever
 * the length, so it is prepared once per connection — a text not yet prepared on a connection
 * costs a describe round trip and stops the pipeline, which inside a transaction holding row
 * locks stretches the hold.
 */
export function inList(db: Queryable, values: readonly string[]): { sql: string; params: unknown[] } {
  if (values.length === 0) return { sql: '(NULL)', params: [] };
  if (values.length <= INLINE_MAX && db.dialect === 'sqlite') return { sql: `(${values.map(() => '?').join(', ')})`, params: [...values] };
  const l = db.textList(values);
  return { sql: l.sql, params: [l.param] };
}

/** A unique constraint refused the row (PostgreSQL 23505; SQLite SQLITE_CONSTRAINT_UNIQUE / _PRIMARYKEY). */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = err as { code?: string; constraint_name?: string; message?: string } | null;
  if (!e) return false;
  if (e.code === '23505') return constraint === undefined || e.constraint_name === constraint;
  if (e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return constraint === undefined || (e.message ?? '').includes(constraint);
  return false;
}
