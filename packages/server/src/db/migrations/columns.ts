import type { Queryable } from '../engine.ts';

/** Helpers for migrations that adopt tables made by releases before versioned migrations. */

/** The column names of a table in the current schema (SQLite: the main database). */
export async function columnsOf(db: Queryable, table: string): Promise<Set<string>> {
  const rows =
    db.dialect === 'postgres'
      ? await db.all<{ name: string }>('SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?', [table])
      : await db.all<{ name: string }>('SELECT name FROM pragma_table_info(?)', [table]);
  return new Set(rows.map((r) => r.name));
}

/** ALTER TABLE … ADD COLUMN for each column the table lacks (a table made by an older release). */
export async function addMissingColumns(db: Queryable, table: string, columns: Record<string, string>): Promise<void> {
  const have = await columnsOf(db, table);
  for (const [name, type] of Object.entries(columns)) {
    if (!have.has(name)) await db.exec(`ALTER TABLE ${table} ADD COLUMN ${name} ${type}`);
  }
}
