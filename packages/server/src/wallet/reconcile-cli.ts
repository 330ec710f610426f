/**
 * `npm run reconcile`: prove from the ledger that money is neither created nor destroyed.
 * Reads the same configuration as the server (MAGPIE_* env, magpie.config.json), so it
 * checks the server's SQLite file or its PostgreSQL database; safe while the server runs
 * (one consistent read snapshot). Prints the report as JSON; exits 0 when every check
 * passes, 1 when one fails, 2 on an error.
 *
 *   npm run reconcile                   # ./data/magpie.db
 *   MAGPIE_STORE=postgres://… npm run reconcile
 *   npm run reconcile -- --schema s1    # PostgreSQL schema other than the default
 */
import { loadConfig } from '../config/config.ts';
import { openWalletStore } from './index.ts';
import type { WalletStore } from './wallet-store.ts';

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const config = loadConfig();
  const schemaAt = args.indexOf('--schema');
  let store: WalletStore;
  if (schemaAt >= 0 && config.store !== 'sqlite') {
    const { PostgresWalletStore } = await import('./postgres-wallet-store.ts');
    store = new PostgresWalletStore({ url: config.store, schema: args[schemaAt + 1] });
  } else {
    store = await openWalletStore(config);
  }
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
