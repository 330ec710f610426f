/**
 * Issue 15: a transaction whose last statement is `COMMIT AND CHAIN` (the append and ACK write
 * pipelines) is durable once that statement succeeds. PostgresEngine.transaction returns then,
 * without a further round trip for the COMMIT of the empty chained transaction (on a busy node
 * that round trip, plus the node's event-loop delay, was part of every send's latency).
 *
 * The proof: after the chain, the test stops the transaction's backend process (SIGSTOP; the
 * test's PostgreSQL runs on this machine), so the final COMMIT gets no answer. The transaction
 * must still report success (its writes are committed). Before the change it waited for that
 * answer. A statement issued after the chain keeps the normal path: the transaction waits for
 * the COMMIT. The backend is resumed (SIGCONT) in every case.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { PostgresEngine } from '../src/db/postgres-engine.ts';
import { PG_URL, freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

const local = ['127.0.0.1', 'localhost', '::1'].includes(new URL(PG_URL).hostname);
const skip = (await pgUnavailable()) ?? (local ? false : 'PostgreSQL is not on this machine (the test stops a backend process)');

const settledWithin = <T>(p: Promise<T>, ms: number): Promise<boolean> =>
  Promise.race([p.then(() => true, () => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

it('a transaction ending in COMMIT AND CHAIN returns without the final COMMIT round trip (issue 15)', { skip, timeout: 30_000 }, async () => {
  const schema = freshSchemaName('pgcluster_chain');
  const raw = rawClient(schema);
  const db = await PostgresEngine.open({ url: PG_URL, schema, max: 2 });
  const stopped: number[] = [];
  const stop = (pid: number) => {
    process.kill(pid, 'SIGSTOP');
    stopped.push(pid);
  };
  const resume = () => {
    for (const pid of stopped.splice(0)) process.kill(pid, 'SIGCONT');
  };
  try {
    await db.exec('CREATE TABLE t (x int)');

    // The chain is the last statement: durable, so the result comes while the backend is stopped.
    const first = db.transaction(async (tx) => {
      const { pid } = (await tx.get<{ pid: number }>('SELECT pg_backend_pid() AS pid'))!;
      await Promise.all([tx.run('INSERT INTO t (x) VALUES (1)'), tx.run('COMMIT AND CHAIN')]);
      stop(pid);
      return 'written';
    });
    assert.equal(await settledWithin(first, 5000), true, 'returned without the final COMMIT');
    assert.equal(await first, 'written');
    assert.deepEqual((await raw.sql<{ x: number }[]>`SELECT x FROM t`).map((r) => r.x), [1], 'committed by the chain');
    resume();

    // A statement after the chain: the transaction waits for its COMMIT.
    const second = db.transaction(async (tx) => {
      const { pid } = (await tx.get<{ pid: number }>('SELECT pg_backend_pid() AS pid'))!;
      await Promise.all([tx.run('INSERT INTO t (x) VALUES (2)'), tx.run('COMMIT AND CHAIN')]);
      await tx.run('INSERT INTO t (x) VALUES (3)');
      stop(pid);
      return 'after the commit';
    });
    assert.equal(await settledWithin(second, 1000), false, 'waits for the COMMIT of the write after the chain');
    resume();
    assert.equal(await second, 'after the commit');
    assert.deepEqual((await raw.sql<{ x: number }[]>`SELECT x FROM t ORDER BY x`).map((r) => r.x), [1, 2, 3]);
  } finally {
    resume();
    await db.close();
    await raw.drop();
  }
});
