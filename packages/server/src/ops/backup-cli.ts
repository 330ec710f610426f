/**
 * `npm run backup -- <dir>`: online backup of the SQLite data directory (safe while the
 * server runs). `npm run restore -- <dir> [--force]`: put a backup back (server stopped).
 * Both read MAGPIE_DATA_DIR / the config file like the server. PostgreSQL: use pg_dump
 * (docs/operations.md "Backups"). Exit 0 on success, 1 on an error (one line on stderr).
 */
import { resolve } from 'node:path';
import { loadConfig } from '../config/config.ts';
import { backupDataDir, restoreDataDir } from './sqlite-backup.ts';

async function main(): Promise<number> {
  const [cmd, dir, ...rest] = process.argv.slice(2);
  const config = loadConfig();
  if (config.store !== 'sqlite') {
    process.stderr.write('backup: the store is PostgreSQL; back it up with pg_dump (docs/operations.md "Backups")\n');
    return 1;
  }
  if ((cmd !== 'backup' && cmd !== 'restore') || !dir) {
    process.stderr.write('usage: backup-cli backup <dir> | restore <dir> [--force]\n');
    return 1;
  }
  const dataDir = resolve(config.dataDir);
  const target = resolve(dir);
  const manifest = cmd === 'backup' ? await backupDataDir(dataDir, target) : restoreDataDir(target, dataDir, { force: rest.includes('--force') });
  process.stdout.write(JSON.stringify({ [cmd === 'backup' ? 'backedUp' : 'restored']: target, dataDir, ...manifest }, null, 2) + '\n');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`${process.argv[2] ?? 'backup'}: ${err.message}\n`);
    process.exit(1);
  },
);
