/**
 * Issue 15: how many round trips to PostgreSQL a transaction costs its node. The engine's
 * connection goes through a TCP proxy in this process that counts turns: a turn starts when the
 * client sends after having been handed an answer since its last send. The proxy hands answers
 * over only ANSWER_DELAY_MS after they arrive, so whatever the client sends without waiting for
 * an answer (a pipeline, written in several pieces) is one turn, whatever the machine's speed.
 *
 * A group append is two turns (BEGIN + the conversation lock + the reads; the writes ending in
 * COMMIT), and so is an ACK flush (BEGIN + the claims + the plan; the writes ending in COMMIT).
 * Before, postgres.js's `begin` waited for BEGIN's answer and sent a COMMIT of its own after the
 * pipeline's COMMIT AND CHAIN: four turns each.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { PostgresEngine } from '../src/db/postgres-engine.ts';
import { PIPELINE_COMMIT } from '../src/db/dialect.ts';
import { SqlStore } from '../src/store/sql-store.ts';
import { post, seedGroup } from './append-requests.ts';
import { PG_URL, freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

const skip = (await pgUnavailable()) ?? false;

const ANSWER_DELAY_MS = 25;

/** A TCP proxy to PostgreSQL that counts the client's turns over all its connections. */
async function turnCounter(): Promise<{ url: string; turns: () => number; executes: () => number; close: () => Promise<void> }> {
  const target = new URL(PG_URL);
  let turns = 0;
  /** Statements sent (extended protocol Execute messages), over all connections. */
  let executes = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    // Answers arrived since the client's last send: its next send starts a turn.
    let answered = true;
    // The client's messages: the startup message (no type byte), then type + int32 length each.
    let pending = Buffer.alloc(0);
    let started = false;
    const parse = (d: Buffer) => {
      pending = Buffer.concat([pending, d]);
      for (;;) {
        if (!started) {
          if (pending.length < 4) return;
          const n = pending.readInt32BE(0);
          if (pending.length < n) return;
          pending = pending.subarray(n);
          started = true;
          continue;
        }
        if (pending.length < 5) return;
        const n = pending.readInt32BE(1);
        if (pending.length < n + 1) return;
        if (pending[0] === 0x45) executes++; // 'E'
        pending = pending.subarray(n + 1);
      }
    };
    const upstream = connect(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(upstream);
    client.on('data', (d) => {
      if (answered) turns++;
      answered = false;
      parse(d);
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      // Same delay for every chunk: timers of equal delay fire in order.
      setTimeout(() => {
        answered = true;
        client.write(d);
      }, ANSWER_DELAY_MS);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = new URL(PG_URL);
  url.host = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url: url.toString(),
    turns: () => turns,
    executes: () => executes,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

it('a group append and an ACK flush each cost their node two round trips to PostgreSQL (issue 15)', { skip, timeout: 60_000 }, async () => {
  const proxy = await turnCounter();
  const schema = freshSchemaName('magpie_turns');
  // One connection: the warm-up below prepares every statement on it.
  const engine = await PostgresEngine.open({ url: proxy.url, schema, max: 1 });
  const store = new SqlStore(engine, { ringCapacity: 1000, ownsEngine: true });
  const raw = rawClient(schema);
  try {
    await store.migrate();
    await seedGroup(store);
    let last = 0;
    /** Statements of each of the three appends. */
    const sent: number[] = [];
    for (let i = 0; i < 3; i++) {
      const before = proxy.executes();
      const [o] = await store.appendMessages([post('alice', 'g:one')]);
      sent.push(proxy.executes() - before);
      assert.ok(o?.ok);
      last = o.pointers.find((p) => p.userId === 'bob')!.inboxSeq;
      await store.recordAcks([{ userId: 'bob', deviceId: 'phone', inboxSeq: last }]);
    }
    // The no-op warm-ups (db/prepared.ts) run on a connection only for what it has not run yet:
    // these posts send only their own statements (the group's creation warmed the connection)…
    assert.equal(sent[0], sent[1]);
    assert.equal(sent[1], sent[2]);
    // …while a post on a new connection warms it first (before: every post of the process's first 200 warmed).
    // (Another URL: the engine shares one pool per URL and schema.)
    const engine2 = await PostgresEngine.open({ url: `${proxy.url}?application_name=second`, schema, max: 1 });
    const store2 = new SqlStore(engine2, { ringCapacity: 1000, ownsEngine: true });
    try {
      const before = proxy.executes();
      assert.ok((await store2.appendMessages([post('alice', 'g:one')]))[0]?.ok);
      const fresh = proxy.executes() - before;
      assert.ok(fresh > sent[2]!, `a new connection is warmed (${fresh} statements), a warm one is not (${sent[2]})`);
    } finally {
      await store2.close();
    }

    const before = proxy.turns();
    const [o] = await store.appendMessages([post('carol', 'g:one')]);
    assert.ok(o?.ok);
    assert.equal(proxy.turns() - before, 2, 'append: BEGIN + lock + reads, then the writes ending in COMMIT');

    const flushBefore = proxy.turns();
    const out = await store.recordAcks([{ userId: 'bob', deviceId: 'phone', inboxSeq: o.pointers.find((p) => p.userId === 'bob')!.inboxSeq }]);
    assert.equal(proxy.turns() - flushBefore, 2, 'ACK flush: BEGIN + claims + plan, then the writes ending in COMMIT');
    assert.deepEqual(out.counts.map((x) => x.count), [1, 1]); // store2's post and carol's

    // Both committed (nothing left open on the one connection), gap-free.
    assert.equal(Number((await raw.sql`SELECT last_seq FROM conversations WHERE id = 'g:one'`)[0]!.last_seq), 6);
    assert.deepEqual(o.pointers.map((p) => [p.userId, p.inboxSeq]).sort(), [['alice', 6], ['bob', 6], ['carol', 6]]);
  } finally {
    await store.close();
    await raw.drop();
    await proxy.close();
  }
});

it('PostgresEngine.transaction: a pipeline COMMIT ends it, a failed statement rolls it back, the connection stays usable', { skip, timeout: 60_000 }, async () => {
  const schema = freshSchemaName('magpie_txend');
  const engine = await PostgresEngine.open({ url: PG_URL, schema, max: 1 });
  try {
    await engine.exec('CREATE TABLE t (id int PRIMARY KEY)');
    // The pipeline's own COMMIT: committed, and nothing more runs in the transaction.
    await engine.transaction(async (tx) => {
      await Promise.all([tx.run('INSERT INTO t VALUES (?)', [1]), tx.run(PIPELINE_COMMIT)]);
      await assert.rejects(tx.run('INSERT INTO t VALUES (?)', [2]), /after the transaction's commit/);
    });
    // A failure mid-pipeline: the first error is reported (not "transaction aborted"), nothing of it stays.
    await assert.rejects(
      engine.transaction(async (tx) => {
        await Promise.all([tx.run('INSERT INTO t VALUES (?)', [3]), tx.run('INSERT INTO t VALUES (?)', [1]), tx.run('INSERT INTO t VALUES (?)', [4]), tx.run(PIPELINE_COMMIT)]);
      }),
      (err: { code?: string }) => err.code === '23505',
    );
    // The caller throws after its writes: rolled back.
    await assert.rejects(
      engine.transaction(async (tx) => {
        await tx.run('INSERT INTO t VALUES (?)', [5]);
        throw new Error('changed my mind');
      }),
      /changed my mind/,
    );
    // No COMMIT of the caller's own: the engine commits.
    assert.equal(await engine.transaction((tx) => tx.run('INSERT INTO t VALUES (?)', [6])), 1);
    const rows = await engine.all<{ id: number }>('SELECT id FROM t ORDER BY id');
    assert.deepEqual(rows.map((r) => r.id), [1, 6]);
    // The one connection is not left inside a transaction.
    assert.equal((await engine.get<{ s: string }>('SELECT (now() = statement_timestamp())::text AS s'))?.s, 'true');
  } finally {
    await engine.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    await engine.close();
  }
});

it('PostgresEngine.transaction: a connection lost mid-transaction fails it and is not handed out again', { skip, timeout: 60_000 }, async () => {
  const schema = freshSchemaName('magpie_txlost');
  const engine = await PostgresEngine.open({ url: PG_URL, schema, max: 1 });
  const raw = rawClient(schema);
  try {
    await assert.rejects(
      engine.transaction(async (tx) => {
        const me = await tx.get<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        await raw.sql`SELECT pg_terminate_backend(${me!.pid})`;
        await new Promise((r) => setTimeout(r, 200));
        await tx.run('SELECT 1');
      }),
    );
    // The pool's one connection reconnects: statements and transactions work again.
    assert.equal((await engine.get<{ x: number }>('SELECT 1 AS x'))?.x, 1);
    assert.equal(await engine.transaction(async (tx) => (await tx.get<{ x: number }>('SELECT 2 AS x'))?.x), 2);
  } finally {
    await engine.close();
    await raw.drop();
  }
});
