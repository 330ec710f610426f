/**
 * The WAL write-coalescing VFS shim (native/walbuf.c, store/sqlite-wal-coalesce.ts): it is
 * active in the server's connections (the writer thread's included) and turns a commit's WAL
 * writes into a few flushes; what is written through it survives close, reopen and a SIGKILL
 * right after COMMIT; a second connection (another thread, another process) reading while the
 * writer commits, checkpoints and restarts the WAL never sees a torn or missing page.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { after, before, describe, it } from 'node:test';
import { directConversationId, type AppendRequest } from '../src/store/store.ts';
import { openSqliteStore } from '../src/store/open.ts';
import { openSqlite } from '../src/store/sqlite-connection.ts';
import { prepareSqliteVfs, setSqliteWalCoalescing, walCoalesceStats, WALBUF_LIBRARY, type WalCoalesceStats } from '../src/store/sqlite-wal-coalesce.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;
const DRIVER = createRequire(import.meta.url).resolve('better-sqlite3');

// Build the library if this checkout has none yet (a no-op when it is up to date).
spawnSync(process.execPath, [join(ROOT, 'scripts/build-native.mjs')], { stdio: 'inherit' });
const hasCompiler = spawnSync(process.env.CC || 'cc', ['--version']).status === 0;
// Without a C compiler the server runs without the shim (warned at start): nothing to test here.
const skip = !existsSync(WALBUF_LIBRARY) && !hasCompiler ? 'no C compiler: the shim is not built' : false;

function stats(): WalCoalesceStats {
  const s = walCoalesceStats();
  assert.ok(s, 'the shim is loaded in this process');
  return s;
}

function delta(a: WalCoalesceStats, b: WalCoalesceStats): Record<'walOpens' | 'writesAbsorbed' | 'flushes', number> {
  return { walOpens: b.walOpens - a.walOpens, writesAbsorbed: b.writesAbsorbed - a.writesAbsorbed, flushes: b.flushes - a.flushes };
}

/**
 * A reader (run in a worker thread or a child process): for `ms`, read transactions over the
 * whole table t(k, g, v), checking the writer's invariant: 64 rows, one generation g in all of
 * them, every byte of each v equal to g & 255, and g never going back. Reports counts and the
 * first violation.
 */
const READER = `
const Database = require(process.env.WB_DRIVER);
const db = new Database(process.env.WB_DB, { readonly: true });
db.pragma('busy_timeout = 5000');
const all = db.prepare('SELECT k, g, v FROM t ORDER BY k');
const deadline = Date.now() + Number(process.env.WB_MS);
let reads = 0, lastG = -1, error = null;
while (Date.now() < deadline && !error) {
  try {
    const rows = db.transaction(() => all.all())();
    reads++;
    if (rows.length !== 64) { error = 'rows ' + rows.length; break; }
    const g = rows[0].g;
    if (g < lastG) { error = 'generation went back ' + lastG + ' -> ' + g; break; }
    lastG = g;
    for (const r of rows) {
      if (r.g !== g) { error = 'row ' + r.k + ' has generation ' + r.g + ' in a snapshot of ' + g; break; }
      if (r.v.length !== 2000 || r.v.some((b) => b !== (g & 255))) { error = 'row ' + r.k + ' value torn at generation ' + g; break; }
    }
  } catch (e) { error = String(e && e.message || e); }
}
db.close();
const out = JSON.stringify({ reads, lastG, error });
if (require('node:worker_threads').parentPort) require('node:worker_threads').parentPort.postMessage(out); else process.stdout.write(out);
`;

/** The writer of the reader test: generations of 64 rows × 2 000 bytes, with checkpoints and WAL restarts between them. */
function writeGenerations(db: Database.Database, ms: number): number {
  const upd = db.prepare('UPDATE t SET g = ?, v = ? WHERE k = ?');
  const gen = db.transaction((g: number) => {
    const v = Buffer.alloc(2000, g & 255);
    for (let k = 0; k < 64; k++) upd.run(g, v, k);
  });
  const deadline = Date.now() + ms;
  let g = 0;
  while (Date.now() < deadline) {
    gen(++g);
    // RESTART / TRUNCATE make the next commit write the WAL from its start again (when no reader
    // holds an old snapshot; busy otherwise, which is fine).
    if (g % 40 === 0) db.pragma('wal_checkpoint(RESTART)');
    else if (g % 97 === 0) db.pragma('wal_checkpoint(TRUNCATE)');
    else if (g % 13 === 0) db.pragma('wal_checkpoint(PASSIVE)');
  }
  return g;
}

function seed(db: Database.Database): void {
  db.exec('CREATE TABLE t(k INTEGER PRIMARY KEY, g INTEGER NOT NULL, v BLOB NOT NULL)');
  const ins = db.prepare('INSERT INTO t(k, g, v) VALUES (?, 0, ?)');
  db.transaction(() => {
    for (let k = 0; k < 64; k++) ins.run(k, Buffer.alloc(2000, 0));
  })();
}

/** A connection opened the way the server opens its own (through prepareSqliteVfs). */
function openFile(path: string, synchronous: 'FULL' | 'NORMAL'): Database.Database {
  prepareSqliteVfs();
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.pragma('busy_timeout = 5000');
  return db;
}

describe('SQLite WAL write coalescing', { skip }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'magpie-walbuf-'));
    setSqliteWalCoalescing(true);
  });
  after(async () => {
    setSqliteWalCoalescing(true);
    await rm(dir, { recursive: true, force: true });
  });

  it('is active in the server connections: the writer thread commits through it with far fewer writes', async () => {
    const before = (() => {
      prepareSqliteVfs();
      return stats();
    })();
    const store = await openSqliteStore({ path: join(dir, 'store.db'), ringCapacity: 1000, writerThread: true });
    try {
      for (const id of ['ca', 'cb']) await store.createUser({ id, username: id, passwordHash: 'x', nickname: id, createdAt: 1 });
      const mid = stats();
      let n = 0;
      const dm = (): AppendRequest => {
        const i = ++n;
        return { sender: 'ca', clientMsgId: `c${i}`, conv: directConversationId('ca', 'cb'), directMembers: ['ca', 'cb'], kind: 'text', body: { text: `message ${i} ${'x'.repeat(400)}` }, time: 1000 + i, id: `id${i}` };
      };
      for (let b = 0; b < 40; b++) {
        const out = await store.appendMessages(Array.from({ length: 25 }, dm));
        assert.ok(out.every((o) => o.ok));
      }
      const end = stats();
      assert.ok(end.enabled);
      // The event loop's connection, the writer thread's and the checkpointer's: each WAL file through the shim.
      assert.ok(delta(before, end).walOpens >= 2, JSON.stringify(delta(before, end)));
      // The appends ran on the writer thread: their WAL writes went into its buffer ...
      const d = delta(mid, end);
      assert.ok(d.writesAbsorbed >= 40 * 4, JSON.stringify(d));
      // ... and reached the file in far fewer writes (two per frame before: header and page).
      assert.ok(d.flushes * 4 <= d.writesAbsorbed, JSON.stringify(d));
      assert.equal(end.flushErrors, 0);
    } finally {
      await store.close();
    }
    // Everything is there for a fresh connection.
    const check = new Database(join(dir, 'store.db'), { readonly: true });
    try {
      assert.equal((check.prepare('SELECT count(*) AS n FROM messages').get() as { n: number }).n, 1000);
      assert.equal(check.pragma('integrity_check', { simple: true }), 'ok');
    } finally {
      check.close();
    }
  });

  it('writes survive close and reopen (FULL and NORMAL), and an open through openSqlite uses it', async () => {
    for (const sync of ['FULL', 'NORMAL'] as const) {
      const path = join(dir, `reopen-${sync}.db`);
      const s0 = stats();
      const db = openFile(path, sync);
      db.exec('CREATE TABLE m(id INTEGER PRIMARY KEY, body BLOB NOT NULL)');
      const ins = db.prepare('INSERT INTO m(id, body) VALUES (?, ?)');
      const tx = db.transaction((from: number) => {
        for (let i = from; i < from + 20; i++) ins.run(i, Buffer.alloc(500 + (i % 3000), i & 255));
      });
      for (let t = 0; t < 300; t++) tx(t * 20);
      db.close();
      const d = delta(s0, stats());
      assert.ok(d.walOpens >= 1 && d.flushes * 4 <= d.writesAbsorbed, JSON.stringify(d));
      const h = openSqlite(path, { synchronous: sync === 'FULL' ? 'full' : 'normal', checkpointMs: 0 });
      try {
        const rows = h.db.prepare('SELECT id, body FROM m ORDER BY id').all() as { id: number; body: Buffer }[];
        assert.equal(rows.length, 6000);
        for (const [i, r] of rows.entries()) {
          assert.equal(r.id, i);
          assert.ok(r.body.length === 500 + (i % 3000) && r.body.every((b) => b === (i & 255)), `row ${i}`);
        }
        assert.equal(h.db.pragma('integrity_check', { simple: true }), 'ok');
      } finally {
        await h.release();
      }
    }
  });

  for (const sync of ['FULL', 'NORMAL'] as const) {
    it(`keeps every committed row of a process SIGKILLed right after COMMIT (synchronous=${sync})`, async () => {
      const path = join(dir, `kill-${sync}.db`);
      // The child loads the shim like the server, commits transactions of 1–8 rows and prints each
      // transaction's last id once COMMIT returned; it is killed at once after the 400th.
      const child = spawn(process.execPath, ['-e', `
        const Database = require(process.env.WB_DRIVER);
        new Database(':memory:').loadExtension(process.env.WB_LIB);
        const db = new Database(process.env.WB_DB);
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = ${sync}');
        db.exec('CREATE TABLE IF NOT EXISTS m(id INTEGER PRIMARY KEY, body BLOB NOT NULL)');
        if (!JSON.parse(db.prepare('SELECT magpie_walbuf_stats()').pluck().get()).enabled) throw new Error('shim not active');
        const ins = db.prepare('INSERT INTO m(id, body) VALUES (?, randomblob(?))');
        let id = 0;
        for (;;) {
          const n = 1 + (id % 8);
          db.transaction(() => { for (let i = 0; i < n; i++) ins.run(++id, 300 + (id % 4000)); })();
          require('node:fs').writeSync(1, id + '\\n');
        }
      `], { env: { ...process.env, WB_DRIVER: DRIVER, WB_LIB: WALBUF_LIBRARY, WB_DB: path }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const acked = await new Promise<number>((resolve, reject) => {
        let buf = '';
        let last = 0;
        let lines = 0;
        child.stdout.on('data', (c: Buffer) => {
          buf += c.toString();
          const parts = buf.split('\n');
          buf = parts.pop()!;
          for (const p of parts) {
            last = Number(p);
            if (++lines === 400) {
              child.kill('SIGKILL');
              resolve(last);
            }
          }
        });
        child.on('exit', () => (lines >= 400 ? resolve(last) : reject(new Error(`child exited early: ${stderr}`))));
      });
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
      assert.equal(child.signalCode, 'SIGKILL');
      const db = new Database(path);
      try {
        const { n, mx } = db.prepare('SELECT count(*) AS n, max(id) AS mx FROM m').get() as { n: number; mx: number };
        // Every acknowledged id (and the ones before it) is there; later ones may be too.
        assert.ok(mx >= acked, `max id ${mx} < acknowledged ${acked}`);
        assert.equal(n, mx, 'ids are dense: no committed transaction is missing');
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      } finally {
        db.close();
      }
    });
  }

  for (const sync of ['FULL', 'NORMAL'] as const) {
    it(`a reader in another thread and another process never sees a torn or missing page while the writer commits, checkpoints and restarts the WAL (synchronous=${sync})`, async () => {
      const path = join(dir, `readers-${sync}.db`);
      const db = openFile(path, sync);
      // The checkpointer a server runs beside its writer: PASSIVE checkpoints from another thread.
      const ckpt = new Worker(`
        const { workerData, parentPort } = require('node:worker_threads');
        const db = new (require(workerData.driver))(workerData.path);
        db.pragma('busy_timeout = 1000');
        const t = setInterval(() => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {} }, 20);
        parentPort.on('message', () => { clearInterval(t); db.close(); parentPort.postMessage('closed'); });
      `, { eval: true, workerData: { driver: DRIVER, path } });
      try {
        seed(db);
        const ms = 2500;
        const env = { ...process.env, WB_DRIVER: DRIVER, WB_DB: path, WB_MS: String(ms) };
        const thread = new Worker(READER, { eval: true, env });
        const threadResult = new Promise<string>((resolve, reject) => {
          thread.once('message', resolve);
          thread.once('error', reject);
        });
        const proc = spawn(process.execPath, ['-e', READER], { env, stdio: ['ignore', 'pipe', 'inherit'] });
        let procOut = '';
        proc.stdout.on('data', (c: Buffer) => (procOut += c.toString()));
        const procDone = new Promise((r) => proc.once('exit', r));
        // Give both readers a moment to open their connections, then write for as long as they read.
        await new Promise((r) => setTimeout(r, 300));
        const s0 = stats();
        const generations = writeGenerations(db, ms - 500);
        const d = delta(s0, stats());
        const inThread = JSON.parse(await threadResult) as { reads: number; lastG: number; error: string | null };
        await procDone;
        const inProcess = JSON.parse(procOut) as { reads: number; lastG: number; error: string | null };
        assert.equal(inThread.error, null, `reader thread: ${inThread.error}`);
        assert.equal(inProcess.error, null, `reader process: ${inProcess.error}`);
        assert.ok(inThread.reads > 10 && inProcess.reads > 10, JSON.stringify({ inThread, inProcess }));
        assert.ok(generations > 50, `only ${generations} generations written`);
        // The writer's commits did go through the buffer.
        assert.ok(d.flushes * 4 <= d.writesAbsorbed, JSON.stringify(d));
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      } finally {
        await new Promise((r) => {
          ckpt.once('message', r);
          ckpt.once('exit', r);
          ckpt.postMessage('close');
        });
        await ckpt.terminate();
        db.close();
      }
    });
  }

  it('can be switched off: connections opened afterwards write the WAL directly', () => {
    setSqliteWalCoalescing(false);
    try {
      const s0 = stats();
      const db = openFile(join(dir, 'off.db'), 'FULL');
      db.exec('CREATE TABLE m(x)');
      for (let i = 0; i < 20; i++) db.prepare('INSERT INTO m VALUES (?)').run(i);
      db.close();
      const s1 = stats();
      assert.equal(s1.enabled, false);
      assert.deepEqual(delta(s0, s1), { walOpens: 0, writesAbsorbed: 0, flushes: 0 });
    } finally {
      setSqliteWalCoalescing(true);
      prepareSqliteVfs();
    }
    assert.equal(stats().enabled, true);
  });
});
