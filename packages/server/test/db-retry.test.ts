/**
 * db/retry.ts: the one transaction-retry loop of the stores. Runs on a real SQLite engine;
 * each rerun must roll back what the failed attempt wrote.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { RetryTransaction, retryTransaction } from '../src/db/retry.ts';

const coded = (code: string) => Object.assign(new Error(code), { code });

describe('retryTransaction', () => {
  let dir: string;
  let db: SqliteEngine;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'magpie-retry-'));
    db = new SqliteEngine(join(dir, 'r.db'), { checkpointMs: 0 });
    await db.exec('CREATE TABLE t (n INTEGER NOT NULL)');
  });
  after(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });
  const count = async () => (await db.get<{ c: number }>('SELECT COUNT(*) AS c FROM t'))!.c;

  it('reruns on serialization failures, deadlocks and RetryTransaction; only the last run commits', async () => {
    const failures = [coded('40001'), coded('40P01'), new RetryTransaction()];
    let runs = 0;
    const out = await retryTransaction(db, async (tx) => {
      runs++;
      await tx.run('INSERT INTO t (n) VALUES (?)', [runs]);
      const f = failures.shift();
      if (f) throw f;
      return 'done';
    });
    assert.equal(out, 'done');
    assert.equal(runs, 4);
    assert.equal(await count(), 1);
  });

  it('throws other errors at once, and a retryable one after maxAttempts', async () => {
    let runs = 0;
    await assert.rejects(retryTransaction(db, async () => { runs++; throw coded('23505'); }), { code: '23505' });
    assert.equal(runs, 1);
    runs = 0;
    await assert.rejects(retryTransaction(db, async () => { runs++; throw coded('40001'); }, { maxAttempts: 3 }), { code: '40001' });
    assert.equal(runs, 3);
  });

  it('retryIf adds errors worth a rerun; unavailability waits within its budget; stopped ends it', async () => {
    let runs = 0;
    assert.equal(await retryTransaction(db, async () => { if (++runs < 3) throw coded('23505'); return runs; }, { retryIf: (e) => (e as { code?: string }).code === '23505' }), 3);
    runs = 0;
    assert.equal(await retryTransaction(db, async () => { if (++runs < 3) throw coded('ECONNRESET'); return runs; }, { unavailableWaitMs: 5_000 }), 3);
    runs = 0;
    await assert.rejects(retryTransaction(db, async () => { runs++; throw coded('ECONNRESET'); }), { code: 'ECONNRESET' });
    assert.equal(runs, 1);
    runs = 0;
    await assert.rejects(retryTransaction(db, async () => { runs++; throw coded('40001'); }, { stopped: () => true }), { code: '40001' });
    assert.equal(runs, 1);
  });
});
