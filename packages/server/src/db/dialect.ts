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

/** Up to this many values are bound as `(?, ?, …)` (one prepared statement per length); longer lists go through `textList`. */
const INLINE_MAX = 32;

/**
 * A list of text values for `x IN …`: the SQL to put after IN and its parameters. Short lists
 * are inline placeholders (cheapest on both engines: no JSON or array parsing); long ones
 * one array/JSON parameter (`Queryable.textList`).
 */
export function inList(db: Queryable, values: readonly string[]): { sql: string; params: unknown[] } {
  if (values.length === 0) return { sql: '(NULL)', params: [] };
  if (values.length <= INLINE_MAX) return { sql: `(${values.map(() => '?').join(', ')})`, params: [...values] };
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
