/**
 * `npm run reconcile`: prove from the ledger that money is neither created nor destroyed.
 * Reads the same configuration as the server (MAGPIE_* env, magpie.config.json), so it
 * checks the server's SQLite file or its PostgreSQL database; safe while the server runs
 * (one consistent read snapshot). Prints the report as JSON; exits 0 when every check
 * passes, 1 when one fails, 2 on an error (also when the SQLite database file does not exist:
 * the CLI never creates one).
 *
 *   npm run reconcile                   # ./data/magpie.db
 *   MAGPIE_STORE=postgres://… npm run reconcile
 *   npm run reconcile -- --schema s1    # PostgreSQL schema other than the default
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfig } from '../config/config.ts';
import { openWalletStore } from './index.ts';
import type { WalletStore } from './wallet-store.ts';

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const config = loadConfig();
  if (config.store === 'sqlite') {
    // Never create a database here: an empty one would "reconcile" and hide a wrong path.
    const file = resolve(join(config.dataDir, 'magpie.db'));
    if (!existsSync(file)) {
      process.stderr.write(`reconcile: no database at ${file} (is MAGPIE_DATA_DIR or dataDir right?); nothing was checked\n`);
      return 2;
    }
  }
  const schemaAt = args.indexOf('--schema');
  const schema = schemaAt >= 0 && config.store !== 'sqlite' ? args[schemaAt + 1] : undefined;
  const store: WalletStore = await openWalletStore(config, undefined, schema ? { schema } : {});
  try {
    const report = await store.reconcile(Date.now());
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    if (!report.ok) process.stderr.write(`reconciliation FAILED: ${report.checks.filter((c) => !c.ok).map((c) => c.name).join(', ')}\n`);
    return report.ok ? 0 : 1;
  } finally {
    await store.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`reconcile: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(2);
  },
);
