/**
 * The batched reads of the shared SQLite connection (store/sqlite-connection.ts ReadBatcher,
 * SqliteEngine.getBatched): every read queued in one turn runs in one read transaction, each
 * settles on its own, and the queue keeps nothing once a batch is done (issue 16 made the
 * queue parallel arrays reused from batch to batch).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqlite } from '../src/store/sqlite-connection.ts';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';

describe('SQLite batched reads', () => {
  it('reads of one turn (statements and functions) each get their own answer; a failing one rejects only its caller', async () => {
    const h = openSqlite(':memory:');
    try {
      h.db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, \'a\'), (2, \'b\'), (3, \'c\')');
      const byKey = h.db.prepare('SELECT v FROM t WHERE k = ?');
      const bad = h.db.prepare('SELECT v FROM t WHERE k = ? AND ?');
      const reads = [
        h.readGet<{ v: string }>(byKey, [1]),
        h.read(() => (byKey.get(2) as { v: string }).v),
        h.readGet<{ v: string }>(bad, [1]), // one parameter short: throws
        h.readGet<{ v: string }>(byKey, [9]),
        h.readGet<{ v: string }>(byKey, [3]),
        h.read(() => {
          throw new Error('boom');
        }),
      ];
      const out = await Promise.allSettled(reads);
      assert.deepEqual(out[0], { status: 'fulfilled', value: { v: 'a' } });
      assert.deepEqual(out[1], { status: 'fulfilled', value: 'b' });
      assert.equal(out[2]!.status, 'rejected');
      assert.deepEqual(out[3], { status: 'fulfilled', value: undefined });
      assert.deepEqual(out[4], { status: 'fulfilled', value: { v: 'c' } });
      assert.equal(out[5]!.status, 'rejected');
      assert.equal((out[5] as PromiseRejectedResult).reason.message, 'boom');
      assert.equal(h.db.inTransaction, false, 'the batch transaction ended');
      // Many batches in a row, of different sizes (the queue's arrays are reused): answers stay right.
      for (let round = 0; round < 50; round++) {
        const n = 1 + (round % 7) * 3;
        const got = await Promise.all(Array.from({ length: n }, (_, i) => h.readGet<{ v: string }>(byKey, [1 + ((i + round) % 3)])));
        assert.deepEqual(got.map((r) => r?.v), Array.from({ length: n }, (_, i) => 'abc'[(i + round) % 3]));
      }
      // A burst larger than the kept storage, then small batches again.
      const burst = await Promise.all(Array.from({ length: 3000 }, (_, i) => h.readGet<{ v: string }>(byKey, [1 + (i % 3)])));
      assert.equal(burst.filter((r) => r?.v === 'a').length, 1000);
      assert.deepEqual(await h.readGet(byKey, [2]), { v: 'b' });
    } finally {
      await h.release();
    }
  });

  it('a read issued by a read of the batch runs in the next batch', async () => {
    const h = openSqlite(':memory:');
    try {
      h.db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, \'a\')');
      const byKey = h.db.prepare('SELECT v FROM t WHERE k = ?');
      let inner: Promise<unknown> | null = null;
      const outer = await h.read(() => {
        inner = h.readGet(byKey, [1]);
        return 'outer';
      });
      assert.equal(outer, 'outer');
      assert.deepEqual(await inner, { v: 'a' });
    } finally {
      await h.release();
    }
  });

  it('reads after the connection closed are refused, not lost', async () => {
    const h = openSqlite(':memory:');
    h.db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY)');
    const stmt = h.db.prepare('SELECT k FROM t WHERE k = ?');
    const pending = h.readGet(stmt, [1]);
    await h.release();
    await assert.rejects(pending, /database closed/);
  });

  it('SqliteEngine.getBatched and get: answers while a transaction is open wait for it (never read inside it)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'magpie-readbatch-'));
    const db = new SqliteEngine(join(dir, 'x.db'));
    try {
      await db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)');
      await db.run('INSERT INTO t VALUES (1, ?)', ['a']);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const tx = db.transaction(async (q) => {
        await q.run('UPDATE t SET v = ? WHERE k = 1', ['uncommitted']);
        await gate;
        await q.run('UPDATE t SET v = ? WHERE k = 1', ['b']);
      });
      const batched = db.getBatched<{ v: string }>('SELECT v FROM t WHERE k = ?', [1]);
      const plain = db.get<{ v: string }>('SELECT v FROM t WHERE k = ?', [1]);
      release();
      await tx;
      assert.deepEqual(await batched, { v: 'b' });
      assert.deepEqual(await plain, { v: 'b' });
      // Outside a transaction: at once, and errors reject (not throw).
      assert.deepEqual(await db.get('SELECT v FROM t WHERE k = ?', [1]), { v: 'b' });
      await assert.rejects(db.get('SELECT nope FROM t'), /no such column/);
      await assert.rejects(db.getBatched('SELECT nope FROM t'), /no such column/);
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
