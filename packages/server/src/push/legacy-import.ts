import { existsSync, renameSync } from 'node:fs';
import type { SqlEngine } from '../db/engine.ts';

/** Push tables of the old separate SQLite file, in the order their rows are copied. */
const TABLES = ['push_devices', 'push_settings', 'push_quota', 'push_jobs', 'push_attempts', 'push_stats', 'push_kv'] as const;

/**
 * Releases before issue 16 kept SQLite push state in its own file (`dataDir/push.db`). Copy
 * its rows into the server's database once, in one transaction (columns both tables have;
 * rows whose key already exists are kept as they are), then rename the file (and its -wal and
 * -shm) to `…imported`, so an upgrade loses no queued push, device or secret. A crash before
 * the rename repeats the copy at the next start, which changes nothing (same keys).
 * Returns the number of rows copied, or null when there was no file.
 */
export async function importLegacyPushFile(db: SqlEngine, file: string): Promise<number | null> {
  if (db.dialect !== 'sqlite' || !existsSync(file)) return null;
  await db.run('ATTACH DATABASE ? AS legacy_push', [file]);
  let copied = 0;
  try {
    copied = await db.transaction(async (tx) => {
      let n = 0;
      for (const table of TABLES) {
        if (!(await tx.get("SELECT 1 FROM legacy_push.sqlite_master WHERE type = 'table' AND name = ?", [table]))) continue;
        const have = new Set((await tx.all<{ name: string }>('SELECT name FROM pragma_table_info(?)', [table])).map((r) => r.name));
        const cols = (await tx.all<{ name: string }>('SELECT name FROM pragma_table_info(?, ?)', [table, 'legacy_push'])).map((r) => r.name).filter((c) => have.has(c));
        if (cols.length === 0) continue;
        const list = cols.join(', ');
        n += await tx.run(`INSERT INTO main.${table} (${list}) SELECT ${list} FROM legacy_push.${table} WHERE true ON CONFLICT DO NOTHING`);
      }
      return n;
    });
  } finally {
    await db.run('DETACH DATABASE legacy_push');
  }
  for (const suffix of ['', '-wal', '-shm']) {
    if (existsSync(file + suffix)) renameSync(file + suffix, `${file}.imported${suffix}`);
  }
  return copied;
}
