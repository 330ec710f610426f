/**
 * `npm run search:backfill`: bring the search index in line with the messages table — index
 * messages stored before search existed (or queued when a crash hit), rewrite changed text,
 * drop what has no text any more. Reads the same configuration as the server (MAGPIE_* env,
 * magpie.config.json). Safe while the server runs: one page of messages per transaction,
 * idempotent; `--after <conv> <seq>` resumes where a run stopped (printed on each page).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfig } from '../config/config.ts';
import { openDatabase } from '../db/index.ts';
import { searchableText } from './extract.ts';
import { SqlSearchStore } from './search-store.ts';

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const config = loadConfig();
  if (config.store === 'sqlite') {
    const file = resolve(join(config.dataDir, 'magpie.db'));
    if (!existsSync(file)) {
      process.stderr.write(`search:backfill: no database at ${file} (is MAGPIE_DATA_DIR or dataDir right?)\n`);
      return 2;
    }
  }
  const at = args.indexOf('--after');
  const after = at >= 0 ? { conv: args[at + 1] ?? '', seq: Number(args[at + 2] ?? 0) } : undefined;
  const batchAt = args.indexOf('--batch');
  const batch = batchAt >= 0 ? Number(args[batchAt + 1]) : 2000;
  const db = await openDatabase(config);
  try {
    const started = Date.now();
    let lastReport = 0;
    const out = await new SqlSearchStore(db).backfill(searchableText, {
      batch,
      ...(after && { after }),
      onPage: (done, pos) => {
        if (Date.now() - lastReport < 2000) return;
        lastReport = Date.now();
        process.stderr.write(`search:backfill: ${done} messages scanned; resume with --after ${pos.conv} ${pos.seq}\n`);
      },
    });
    process.stdout.write(JSON.stringify({ ...out, seconds: (Date.now() - started) / 1000 }) + '\n');
    return 0;
  } finally {
    await db.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`search:backfill failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(2);
  },
);
