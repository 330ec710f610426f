import { closeSync, openSync, readSync, copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/**
 * Online backup of a SQLite data directory: each database (`magpie.db`, the push store's
 * file; not the search index's, which is rebuilt: isSearchIndex) is copied with SQLite's backup API — a consistent snapshot while the server keeps
 * writing, WAL included — and the other files of the directory (keys, local media blobs,
 * content-addressed and never rewritten) are copied as they are. A manifest records what
 * was taken. Restore checks each database's integrity before it replaces anything.
 */

export interface BackupManifest {
  format: 'magpie-backup/1';
  createdAt: string;
  databases: { file: string; pages: number; bytes: number }[];
  files: number;
}

const MANIFEST = 'magpie-backup.json';
const isSidecar = (name: string) => name.endsWith('-wal') || name.endsWith('-shm') || name.endsWith('-journal');
/**
 * The search index's file (search/sqlite-search-db.ts: `magpie.search.db`) is derived data:
 * not backed up (a snapshot of it taken apart from `magpie.db`'s would not match it), and
 * removed at restore, so the restored server re-indexes from the restored messages.
 */
const isSearchIndex = (name: string) => /\.search\.db(-wal|-shm|-journal)?$/.test(name);

/** SQLite files are recognised by their header, not their name. */
function isSqlite(path: string): boolean {
  const head = Buffer.alloc(16);
  const fd = openSync(path, 'r');
  try {
    return readSync(fd, head, 0, 16, 0) === 16 && head.toString('latin1') === 'SQLite format 3\u0000';
  } finally {
    closeSync(fd);
  }
}

export async function backupDataDir(dataDir: string, dest: string): Promise<BackupManifest> {
  if (!existsSync(join(dataDir, 'magpie.db'))) throw new Error(`no database at ${join(dataDir, 'magpie.db')} (is MAGPIE_DATA_DIR right?)`);
  if (existsSync(dest) && readdirSync(dest).length > 0) throw new Error(`${dest} is not empty; back up into a new directory`);
  mkdirSync(dest, { recursive: true, mode: 0o700 });
  const manifest: BackupManifest = { format: 'magpie-backup/1', createdAt: new Date().toISOString(), databases: [], files: 0 };
  for (const name of readdirSync(dataDir)) {
    const from = join(dataDir, name);
    const st = statSync(from);
    if (isSidecar(name) || isSearchIndex(name)) continue;
    if (st.isFile() && isSqlite(from)) {
      // Read-write open (nothing is written): a read-only one could not join the live WAL.
      const db = new Database(from, { fileMustExist: true });
      try {
        const meta = await db.backup(join(dest, name));
        manifest.databases.push({ file: name, pages: meta.totalPages, bytes: statSync(join(dest, name)).size });
      } finally {
        db.close();
      }
    } else if (st.isDirectory()) {
      cpSync(from, join(dest, name), { recursive: true, preserveTimestamps: true });
      manifest.files++;
    } else if (st.isFile()) {
      copyFileSync(from, join(dest, name));
      manifest.files++;
    }
  }
  writeFileSync(join(dest, MANIFEST), JSON.stringify(manifest, null, 2) + '\n', { mode: 0o600 });
  return manifest;
}

/**
 * Restore a backup into `dataDir` (the server must be stopped). Refuses a directory that
 * already holds a database unless `force`; every database must pass `PRAGMA integrity_check`
 * first, so a damaged backup changes nothing.
 */
export function restoreDataDir(src: string, dataDir: string, opts: { force?: boolean } = {}): BackupManifest {
  const manifestPath = join(src, MANIFEST);
  if (!existsSync(manifestPath)) throw new Error(`${src} is not a Magpie backup (no ${MANIFEST})`);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as BackupManifest;
  if (manifest.format !== 'magpie-backup/1') throw new Error(`unknown backup format ${String(manifest.format)}`);
  for (const d of manifest.databases) {
    const db = new Database(join(src, d.file), { readonly: true, fileMustExist: true });
    try {
      const r = db.pragma('integrity_check', { simple: true });
      if (r !== 'ok') throw new Error(`${d.file} fails the integrity check: ${String(r)}`);
    } finally {
      db.close();
    }
  }
  if (existsSync(join(dataDir, 'magpie.db')) && !opts.force) throw new Error(`${dataDir} already holds a database; pass --force to replace it (stop the server first)`);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  for (const name of readdirSync(dataDir)) {
    const p = join(dataDir, name);
    if (isSearchIndex(name) || manifest.databases.some((d) => name === d.file || name.startsWith(`${d.file}-`))) rmSync(p, { force: true });
  }
  for (const name of readdirSync(src)) {
    if (name === MANIFEST) continue;
    cpSync(join(src, name), join(dataDir, name), { recursive: true, preserveTimestamps: true, force: true });
  }
  return manifest;
}
