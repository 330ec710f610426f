/**
 * Commits per second of the shared SQLite connection at synchronous=FULL vs NORMAL (WAL):
 * one small row per transaction, as a lone send's group commit is. Shows that
 * `sqliteSynchronous` has an effect (issue 13). `node --import tsx bench/sqlite-synchronous.ts [commits]`
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqlite, type SqliteSynchronous } from '@magpie/server';

const N = Number(process.argv[2] ?? 2000);

async function run(level: SqliteSynchronous): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'magpie-syncbench-'));
  const h = openSqlite(join(dir, 'bench.db'), { synchronous: level, checkpointMs: 0 });
  try {
    h.db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)');
    const ins = h.db.prepare('INSERT INTO t (body) VALUES (?)');
    const one = h.db.transaction((s: string) => ins.run(s));
    const t0 = performance.now();
    for (let i = 0; i < N; i++) one(`message ${i}`);
    return N / ((performance.now() - t0) / 1000);
  } finally {
    await h.release();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (let round = 0; round < 2; round++) {
  for (const level of ['full', 'normal'] as const) console.log(`${level.padEnd(6)} ${Math.round(await run(level))} commits/s (${N} commits, one row each)`);
}
