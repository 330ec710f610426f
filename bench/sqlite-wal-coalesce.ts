/**
 * The WAL write-coalescing shim (packages/server/native/walbuf.c) on its own, in one process and
 * one thread, alternating connections with it off and on: commits that each rewrite ~170 random
 * pages (a saturated 1:1 group commit writes ~170 WAL frames), CPU of the process (user + system)
 * per commit and wall time per commit. CPU per commit holds up on a shared machine better than
 * commits/s.
 *
 *   node --import tsx bench/sqlite-wal-coalesce.ts [--commits 400] [--rounds 3] [--pages 170] [--synchronous full|normal]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openSqlite, setSqliteWalCoalescing, walCoalesceStats, type SqliteSynchronous } from '@magpie/server';

const { values: a } = parseArgs({ options: { commits: { type: 'string', default: '400' }, rounds: { type: 'string', default: '3' }, pages: { type: 'string', default: '170' }, synchronous: { type: 'string', default: 'full' } } });
const COMMITS = Number(a.commits);
const PAGES = Number(a.pages);
const ROWS = 20_000;
const level = a.synchronous as SqliteSynchronous;

async function run(on: boolean): Promise<{ cpuUs: number; wallUs: number; flushWrites: number; absorbed: number }> {
  setSqliteWalCoalescing(on);
  const dir = mkdtempSync(join(tmpdir(), 'magpie-walbench-'));
  // checkpointMs 0: SQLite's own checkpoints, in this thread (as often in both modes).
  const h = openSqlite(join(dir, 'bench.db'), { synchronous: level, checkpointMs: 0 });
  try {
    const db = h.db;
    // One row per 4 KiB page: each update dirties one table page.
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, pad BLOB NOT NULL)');
    const ins = db.prepare('INSERT INTO t (id, n, pad) VALUES (?, 0, randomblob(3000))');
    db.transaction(() => {
      for (let i = 0; i < ROWS; i++) ins.run(i);
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
    const upd = db.prepare('UPDATE t SET n = n + 1 WHERE id = ?');
    let seed = 12345;
    const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % ROWS;
    const commit = db.transaction(() => {
      for (let i = 0; i < PAGES; i++) upd.run(next());
    });
    for (let i = 0; i < 20; i++) commit(); // warm the statements and the page cache
    const s0 = walCoalesceStats();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < COMMITS; i++) commit();
    const wall = performance.now() - t0;
    const c = process.cpuUsage(c0);
    const s1 = walCoalesceStats();
    return { cpuUs: (c.user + c.system) / COMMITS, wallUs: (wall * 1000) / COMMITS, flushWrites: s0 && s1 ? (s1.flushWrites - s0.flushWrites) / COMMITS : 0, absorbed: s0 && s1 ? (s1.writesAbsorbed - s0.writesAbsorbed) / COMMITS : 0 };
  } finally {
    await h.release();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`=== ${COMMITS} commits of ${PAGES} random pages, synchronous=${level}, WAL coalescing off vs on, alternating ===`);
const results: Record<string, number[]> = { off: [], on: [] };
for (let r = 0; r < Number(a.rounds); r++) {
  for (const on of r % 2 ? [true, false] : [false, true]) {
    const x = await run(on);
    results[on ? 'on' : 'off']!.push(x.cpuUs);
    console.log(`round ${r + 1} ${on ? 'on ' : 'off'}  CPU ${x.cpuUs.toFixed(0)} µs/commit  wall ${x.wallUs.toFixed(0)} µs/commit  WAL writes absorbed ${x.absorbed.toFixed(0)}/commit, written in ${x.flushWrites.toFixed(1)} write calls`);
  }
}
const median = (v: number[]) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)]!;
console.log(`median CPU µs/commit: off ${median(results.off!).toFixed(0)}, on ${median(results.on!).toFixed(0)} (${(100 * (median(results.on!) / median(results.off!) - 1)).toFixed(1)} %)`);
