/**
 * Issue 15 (busy normal groups slow down as nodes are added): an append must hold the member
 * user rows (inbox_seq / conv_version) without needing its node's event loop, so appends to
 * groups sharing members and ACK flushes do not queue behind a busy node. The same holds for
 * an ACK flush, which locks the senders whose entries it moves (second test), and no
 * acknowledging user's row at all (third test: their marks are in delivery_marks, migration 0023).
 *
 * The proof does not depend on machine speed: a psql session holds bob's row until the append
 * waits for it; then this process blocks its own event loop (execFileSync) while a second psql
 * asks for bob's row. It only gets it if the append, once granted bob, finished and committed
 * with no further round trip to its client. Before the fix the append locked the members,
 * then went back to Node for its decisions and writes: the probe timed out.
 *
 * Needs PostgreSQL (MAGPIE_TEST_PG) and `psql`; skips with a message without them.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { openPostgresStore } from '../src/store/open.ts';
import { PostgresEngine } from '../src/db/postgres-engine.ts';
import type { Queryable, SqlEngine, TransactionOptions } from '../src/db/engine.ts';
import { SqlStore } from '../src/store/sql-store.ts';
import { PIPELINE_COMMIT } from '../src/db/dialect.ts';
import { createGroup, post, seedGroup } from './append-requests.ts';
import { PG_URL, freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

function hasPsql(): boolean {
  try {
    execFileSync('psql', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const skip = (await pgUnavailable()) ?? (hasPsql() ? false : 'psql not installed');

it('a group append holds member user rows for no client round trip (issue 15)', { skip, timeout: 60_000 }, async () => {
  const schema = freshSchemaName('magpie_locks');
  // One connection: every statement is prepared by the warm-up below, so the final writes pipeline.
  const store = await openPostgresStore({ url: PG_URL, ringCapacity: 1000, schema, max: 1 });
  const raw = rawClient(schema);
  try {
    await store.migrate();
    for (const id of ['alice', 'bob', 'carol']) await store.createUser({ id, username: id, passwordHash: 'x', nickname: id, createdAt: 1 });
    const make = async (conv: string) => {
      const [o] = await store.appendMessages([createGroup('alice', conv, ['bob', 'carol'])]);
      assert.equal(o?.ok, true);
    };
    await make('g:warm');
    await make('g:one');
    for (let i = 0; i < 2; i++) assert.equal((await store.appendMessages([post('alice', 'g:warm')]))[0]?.ok, true);
    await raw.sql`CREATE TABLE go (x int)`;

    // The holder: bob's row, until the append waits for it and the test says go.
    const app = `magpie_holder_${schema}`;
    const holderSql = `
      BEGIN;
      SELECT 1 FROM "${schema}".users WHERE id = 'bob' FOR UPDATE;
      DO $$ BEGIN
        WHILE NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid)))
           OR NOT EXISTS (SELECT 1 FROM "${schema}".go) LOOP
          PERFORM pg_sleep(0.01);
          -- Never outlive a test run that died before saying go (it would hold the row for good).
          EXIT WHEN clock_timestamp() > statement_timestamp() + interval '120 seconds';
        END LOOP;
      END $$;
      COMMIT;`;
    const holder = spawn('psql', [PG_URL, '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', holderSql], { env: { ...process.env, PGAPPNAME: app }, stdio: 'ignore' });
    const holderDone = new Promise<number | null>((resolve) => holder.on('exit', resolve));
    const until = async (what: string, check: () => Promise<boolean>) => {
      for (let i = 0; i < 3000 && !(await check()); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(await check(), what);
    };
    await until('holder has bob', async () => (await raw.sql`SELECT 1 FROM pg_stat_activity WHERE application_name = ${app} AND query LIKE '%DO $$%'`).length > 0);

    const append = store.appendMessages([post('alice', 'g:one')]);
    await until('append waits for bob', async () =>
      (await raw.sql`SELECT 1 FROM pg_stat_activity a, pg_stat_activity h WHERE h.application_name = ${app} AND h.pid = ANY(pg_blocking_pids(a.pid))`).length > 0);
    await raw.sql`INSERT INTO go VALUES (1)`;
    // From here on this process's event loop is blocked until the probe exits.
    let probe: string;
    try {
      probe = execFileSync('psql', [PG_URL, '-qAt', '-c', `SET lock_timeout = '10s'`, '-c', `BEGIN`, '-c', `SELECT 1 FROM "${schema}".users WHERE id = 'bob' FOR UPDATE`,
        '-c', `SELECT count(*) FROM "${schema}".messages WHERE conv_id = 'g:one' AND kind = 'text'`, '-c', 'COMMIT'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      probe = `failed: ${(err as { stderr?: string }).stderr ?? String(err)}`;
    }
    const [o] = await append;
    assert.equal(o?.ok, true);
    assert.equal(await holderDone, 0);
    assert.equal(probe.trim().split('\n').at(-1), '1', `the probe got bob's row only after the append committed: ${probe}`);
    // The pointers came back absolute and gap-free.
    if (o?.ok) assert.deepEqual(o.pointers.map((p) => [p.userId, p.inboxSeq]).sort(), [['alice', 5], ['bob', 5], ['carol', 5]]);
  } finally {
    await store.close();
    await raw.drop();
  }
});

it('an ACK flush holds the sender\'s user row for no client round trip (issue 15)', { skip, timeout: 60_000 }, async () => {
  const schema = freshSchemaName('magpie_acklocks');
  const store = await openPostgresStore({ url: PG_URL, ringCapacity: 1000, schema, max: 1 });
  const raw = rawClient(schema);
  try {
    await store.migrate();
    await seedGroup(store);
    const bobAt = async () => {
      const [o] = await store.appendMessages([post('alice', 'g:one')]);
      assert.ok(o?.ok);
      return o.pointers.find((p) => p.userId === 'bob')!.inboxSeq;
    };
    // A first flush of the same shape (mark, sender entry, count) warms the connection.
    const first = await bobAt();
    const warmed = await store.recordAcks([{ userId: 'bob', deviceId: 'phone', inboxSeq: first }]);
    assert.deepEqual(warmed.counts.map((x) => x.count), [1]);
    const second = await bobAt();
    await raw.sql`CREATE TABLE go (x int)`;

    // The holder: alice's row (the sender, whose entry the flush moves), until the flush waits for it and the test says go.
    const app = `magpie_holder_${schema}`;
    const holderSql = `
      BEGIN;
      SELECT 1 FROM "${schema}".users WHERE id = 'alice' FOR UPDATE;
      DO $$ BEGIN
        WHILE NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid)))
           OR NOT EXISTS (SELECT 1 FROM "${schema}".go) LOOP
          PERFORM pg_sleep(0.01);
          -- Never outlive a test run that died before saying go (it would hold the row for good).
          EXIT WHEN clock_timestamp() > statement_timestamp() + interval '120 seconds';
        END LOOP;
      END $$;
      COMMIT;`;
    const holder = spawn('psql', [PG_URL, '-v', 'ON_ERROR_STOP=1', '-qAt', '-c', holderSql], { env: { ...process.env, PGAPPNAME: app }, stdio: 'ignore' });
    const holderDone = new Promise<number | null>((resolve) => holder.on('exit', resolve));
    const until = async (what: string, check: () => Promise<boolean>) => {
      for (let i = 0; i < 3000 && !(await check()); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(await check(), what);
    };
    await until('holder has alice', async () => (await raw.sql`SELECT 1 FROM pg_stat_activity WHERE application_name = ${app} AND query LIKE '%DO $$%'`).length > 0);

    const flush = store.recordAcks([{ userId: 'bob', deviceId: 'phone', inboxSeq: second }]);
    await until('flush waits for alice', async () =>
      (await raw.sql`SELECT 1 FROM pg_stat_activity a, pg_stat_activity h WHERE h.application_name = ${app} AND h.pid = ANY(pg_blocking_pids(a.pid))`).length > 0);
    await raw.sql`INSERT INTO go VALUES (1)`;
    // From here on this process's event loop is blocked until the probe exits.
    let probe: string;
    try {
      probe = execFileSync('psql', [PG_URL, '-qAt', '-c', `SET lock_timeout = '10s'`, '-c', `BEGIN`, '-c', `SELECT 1 FROM "${schema}".users WHERE id = 'alice' FOR UPDATE`,
        '-c', `SELECT delivered_inbox_seq FROM "${schema}".delivery_marks WHERE user_id = 'bob'`, '-c', 'COMMIT'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      probe = `failed: ${(err as { stderr?: string }).stderr ?? String(err)}`;
    }
    const out = await flush;
    assert.equal(await holderDone, 0);
    assert.equal(probe.trim().split('\n').at(-1), String(second), `the probe got alice's row only after the flush committed: ${probe}`);
    assert.deepEqual(out.delivered, [{ conv: 'g:one', seq: 3, sender: 'alice', by: 'bob' }]);
    assert.deepEqual(out.counts.map((x) => [x.seq, x.count]), [[3, 1]]);
  } finally {
    await store.close();
    await raw.drop();
  }
});

it('an ACK flush locks no acknowledging user\'s row: appends holding it do not delay it (issue 15, migration 0023)', { skip, timeout: 60_000 }, async () => {
  const schema = freshSchemaName('magpie_ackmarks');
  const store = await openPostgresStore({ url: PG_URL, ringCapacity: 1000, schema, max: 2 });
  const raw = rawClient(schema);
  try {
    await store.migrate();
    await seedGroup(store);
    const at = async () => {
      const [o] = await store.appendMessages([post('alice', 'g:one')]);
      assert.ok(o?.ok);
      return new Map(o.pointers.map((p) => [p.userId, p.inboxSeq]));
    };
    const first = await at();
    // bob's first ACK moves alice's entry (alice's row is locked for that): not what is tested here.
    const warmed = await store.recordAcks([{ userId: 'bob', deviceId: 'phone', inboxSeq: first.get('bob')! }]);
    assert.deepEqual(warmed.counts.map((x) => x.count), [1]);
    const second = await at();
    // Another session holds bob's and carol's user rows, as an append to their conversations does
    // until its COMMIT. Their ACKs of a message whose sender's entry another ACK already moved
    // (carol's first: it moves alice's entry only when ahead of bob's)...
    const hold = raw.sql.reserve();
    const h = await hold;
    try {
      await h`BEGIN`;
      await h`SELECT 1 FROM users WHERE id IN ('bob', 'carol') ORDER BY id FOR UPDATE`;
      await h`SET LOCAL lock_timeout = '10s'`;
      const flush = store.recordAcks([
        { userId: 'bob', deviceId: 'phone', inboxSeq: second.get('bob')! },
        { userId: 'carol', deviceId: 'phone', inboxSeq: first.get('carol')! },
      ]);
      // ...complete while the rows are held (before, the flush locked both rows and waited).
      const out = await Promise.race([flush, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 5000))]);
      assert.notEqual(out, 'timeout', 'the flush waited for the acknowledging users\' rows');
      if (out !== 'timeout') {
        assert.deepEqual(out.counts.map((x) => [x.seq, x.count]).sort(), [[2, 2], [3, 1]]);
        // alice's entry was at seq 2 (bob's first ACK) and moves to 3 (bob's second): alice's row only.
        assert.deepEqual(out.delivered, [{ conv: 'g:one', seq: 3, sender: 'alice', by: 'bob' }]);
      }
      await h`COMMIT`;
    } finally {
      h.release();
    }
    const marks = await raw.sql`SELECT user_id, delivered_inbox_seq FROM delivery_marks ORDER BY user_id`;
    assert.deepEqual(marks.map((r) => [r.user_id, Number(r.delivered_inbox_seq)]), [['bob', second.get('bob')!], ['carol', first.get('carol')!]]);
    // The old column stays as it was (nothing writes it on PostgreSQL any more), and a repeated
    // ACK raises nothing: the mark read is the greater of the two.
    const again = await store.recordAcks([{ userId: 'bob', deviceId: 'phone', inboxSeq: second.get('bob')! }]);
    assert.deepEqual(again, { delivered: [], counts: [] });
  } finally {
    await store.close();
    await raw.drop();
  }
});

/**
 * `engine`, recording per transaction that took a lock (its statement matches `lock`) how many
 * round trips the store started after the lock's result arrived and before the end (statements
 * issued together, with no result arriving in between, are one round trip) into `held`.
 */
function recordingEngine(engine: SqlEngine, lock: RegExp, held: number[]): SqlEngine {
  const recording = (tx: Queryable): { tx: Queryable; done: () => void } => {
    let results = 0;
    let locked = false;
    const rounds = new Set<number>();
    const record = <T>(sql: string, p: Promise<T>, params?: readonly unknown[]): Promise<T> => {
      if (locked) rounds.add(results);
      // A warm-up (db/prepared.ts: no-op parameters, an empty array first) locks nothing.
      const noop = Array.isArray(params?.[0]) && (params[0] as unknown[]).length === 0;
      return p.finally(() => {
        results++;
        if (lock.test(sql) && !noop) locked = true;
      });
    };
    return {
      tx: {
        dialect: tx.dialect,
        all: (sql, params) => record(sql, tx.all(sql, params), params),
        values: (sql, params) => record(sql, tx.values(sql, params), params),
        get: (sql, params) => record(sql, tx.get(sql, params), params),
        run: (sql, params) => record(sql, tx.run(sql, params), params),
        exec: (sql) => record(sql, tx.exec(sql)),
        textList: (values) => tx.textList(values),
      },
      done: () => void (locked && held.push(rounds.size)),
    };
  };
  return Object.assign(Object.create(engine) as SqlEngine, {
    transaction: <T>(fn: (tx: Queryable) => Promise<T>, opts?: TransactionOptions) =>
      engine.transaction(async (tx) => {
        const r = recording(tx);
        const out = await fn(r.tx);
        r.done();
        return out;
      }, opts),
  });
}

/**
 * The conversation rows (gap-free seq) are held from the lock to the commit. Counted without
 * timing: the round trips this node starts after the lock was granted and before the commit
 * (statements issued together, with no result arriving in between, are one round trip). The
 * engine is the real one, wrapped only to record what the store issues. A plain post (the fast
 * path, "Seq decided inside PostgreSQL") locks and bumps its conversation in the write pipeline
 * itself: no round trip to the node under the lock. A group effect (the locking path) still holds
 * it across round trips (its own row writes, then the write pipeline). Until branch `pgseq` every
 * append held it for one.
 */
it('a post holds the conversation row for no round trip to its node (issue 15)', { skip, timeout: 60_000 }, async () => {
  const schema = freshSchemaName('magpie_convlock');
  const engine = await PostgresEngine.open({ url: PG_URL, schema, max: 2 });
  const raw = rawClient(schema);
  /** Per transaction: the round trips started after the conversation lock's result arrived. */
  const held: number[] = [];
  const recorded = recordingEngine(engine, /FROM conversations WHERE id (IN|= ANY).*FOR UPDATE/s, held);
  const store = new SqlStore(recorded, { ringCapacity: 1000, ownsEngine: true });
  try {
    await store.migrate();
    await seedGroup(store);
    await store.appendMessages([post('alice', 'd:alice:bob', { directMembers: ['alice', 'bob'] })]);
    held.length = 0;
    const [g] = await store.appendMessages([post('bob', 'g:one', { mentions: ['carol'] })]);
    const [d] = await store.appendMessages([post('bob', 'd:alice:bob', { directMembers: ['alice', 'bob'] })]);
    const both = await store.appendMessages([post('carol', 'g:one'), post('alice', 'd:alice:bob', { directMembers: ['alice', 'bob'] })]);
    assert.ok(g?.ok && d?.ok && both.every((o) => o.ok));
    // Group post, direct message, a batch of both: the lock is taken by the write pipeline, which commits.
    assert.deepEqual(held, [0, 0, 0]);
    const [e] = await store.appendMessages([post('alice', 'g:one', { kind: 'system', body: {}, effect: { op: 'update', patch: { name: 'G2' } } })]);
    assert.ok(e?.ok);
    // A group effect (the locking path): locked with the reads, held while it writes its group row and for the write pipeline.
    assert.deepEqual(held, [0, 0, 0, 2]);
    assert.equal(Number((await raw.sql`SELECT last_seq FROM conversations WHERE id = 'g:one'`)[0]!.last_seq), 4);
    assert.deepEqual([g, ...both.slice(0, 1), e].map((o) => (o?.ok ? o.message.seq : 0)), [2, 3, 4]);
  } finally {
    await store.close();
    await raw.drop();
  }
});

/**
 * An ACK flush claims its users (advisory locks, one per user, store/ack-writer.ts): the claims are held for
 * one round trip to the node (the write pipeline). The marks, the ranges they make and what the
 * ranges cover are read by one statement sent with the claim; before, they took a second round
 * trip under the claim. Counted as above, without timing.
 */
it('an ACK flush holds its users\' claims for one round trip to its node (issue 15)', { skip, timeout: 60_000 }, async () => {
  const schema = freshSchemaName('magpie_acklock');
  const engine = await PostgresEngine.open({ url: PG_URL, schema, max: 2 });
  const held: number[] = [];
  const store = new SqlStore(recordingEngine(engine, /pg_advisory_xact_lock/, held), { ringCapacity: 1000, ownsEngine: true });
  try {
    await store.migrate();
    await seedGroup(store);
    const sent = await store.appendMessages([post('alice', 'g:one'), post('alice', 'g:one')]);
    const pointer = (i: number, u: string) => (sent[i] as Extract<(typeof sent)[number], { ok: true }>).pointers.find((p) => p.userId === u)!.inboxSeq;
    held.length = 0;
    // Two users, one with a gap segment: marks move, a range each, counts raised.
    const out = await store.recordAcks([
      { userId: 'bob', deviceId: 'phone', inboxSeq: pointer(1, 'bob') },
      { userId: 'carol', deviceId: 'tab', inboxSeq: pointer(1, 'carol'), segments: [{ from: pointer(0, 'carol'), to: pointer(1, 'carol') }] },
    ]);
    assert.deepEqual(held, [1], 'the claim was held for the write pipeline only');
    assert.deepEqual(out.delivered.map((d) => [d.seq, d.by]), [[3, 'bob']]);
    assert.deepEqual(out.counts.map((x) => [x.seq, x.count]), [[2, 1], [3, 2]]);
  } finally {
    await store.close();
  }
});

/**
 * The write pipeline leaves the node at once, its COMMIT included (db/postgres-engine.ts):
 * postgres.js sends a message shorter than 1 KiB only at the next setImmediate, so a pipeline
 * ending in COMMIT AND CHAIN (now COMMIT) used to run its row locks at once (or not at all) and its commit
 * only after the rest of the node's event-loop turn. Here the turn that issued the append's
 * write pipeline goes on with other work: it runs a psql probe that needs bob's user row. The
 * probe gets the row, with the message committed, only if the pipeline was sent whole before.
 */
it('an append\'s write pipeline is sent whole before the node\'s turn ends (issue 15)', { skip, timeout: 60_000 }, async () => {
  const schema = freshSchemaName('magpie_flushpipe');
  const engine = await PostgresEngine.open({ url: PG_URL, schema, max: 2 });
  let armed = false;
  let probe = '';
  const runProbe = () => {
    try {
      probe = execFileSync('psql', [PG_URL, '-qAt', '-c', `SET lock_timeout = '5s'`, '-c', 'BEGIN', '-c', `SELECT 1 FROM "${schema}".users WHERE id = 'bob' FOR UPDATE`,
        '-c', `SELECT count(*) FROM "${schema}".messages WHERE conv_id = 'g:one' AND kind = 'text'`, '-c', 'COMMIT'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      probe = `failed: ${(err as { stderr?: string }).stderr ?? String(err)}`;
    }
  };
  const wrapped = Object.assign(Object.create(engine) as SqlEngine, {
    transaction: <T>(fn: (tx: Queryable) => Promise<T>, opts?: TransactionOptions) =>
      engine.transaction(
        (tx) =>
          fn({
            dialect: tx.dialect,
            all: (sql, params) => tx.all(sql, params),
            values: (sql, params) => tx.values(sql, params),
            get: (sql, params) => tx.get(sql, params),
            exec: (sql) => tx.exec(sql),
            textList: (values) => tx.textList(values),
            run: (sql, params) => {
              const p = tx.run(sql, params);
              if (armed && sql === PIPELINE_COMMIT) {
                armed = false;
                // Later in the same turn (after the driver's microtasks, before setImmediate): other work.
                void (async () => {
                  for (let i = 0; i < 20; i++) await Promise.resolve();
                  runProbe();
                })();
              }
              return p;
            },
          }),
        opts,
      ),
  });
  const store = new SqlStore(wrapped, { ringCapacity: 1000, ownsEngine: true });
  const raw = rawClient(schema);
  try {
    await store.migrate();
    await seedGroup(store);
    // Warm: every statement of a group post prepared on both connections.
    for (let i = 0; i < 4; i++) assert.equal((await store.appendMessages([createGroup('alice', 'g:warm' + i, ['bob', 'carol'])]))[0]?.ok, true);
    armed = true;
    const [o] = await store.appendMessages([post('alice', 'g:one')]);
    assert.equal(o?.ok, true);
    assert.equal(armed, false, 'the probe ran');
    assert.equal(probe.trim().split('\n').at(-1), '1', `the probe got bob's row with the message committed: ${probe}`);
  } finally {
    await store.close();
    await raw.drop();
  }
});

/**
 * An ACK flush raises group delivered counts before it locks any user row (store/ack-writer.ts):
 * the message rows it raises are shared with other nodes' flushes, so a flush that waits for
 * one of them must not hold user rows meanwhile. Here a raw session holds the message row;
 * bob's flush waits for it; an append to the group (which bumps bob's row) must still commit.
 * Before, the flush locked bob's row first and the append waited behind it.
 */
it('an ACK flush waiting for a message row holds no user row (issue 15)', { skip, timeout: 60_000 }, async () => {
  const schema = freshSchemaName('magpie_rowsfirst');
  const store = await openPostgresStore({ url: PG_URL, ringCapacity: 1000, schema, max: 3 });
  const raw = rawClient(schema);
  let release = () => {};
  try {
    await store.migrate();
    await seedGroup(store);
    const [m] = await store.appendMessages([post('alice', 'g:one')]);
    assert.ok(m?.ok);
    const bobAt = m.pointers.find((p) => p.userId === 'bob')!.inboxSeq;

    // The holder: the message's row, as another node's flush raising its count would hold it.
    const held = new Promise<void>((r) => (release = r));
    let holding = () => {};
    const locked = new Promise<void>((r) => (holding = r));
    const holder = raw.sql.begin(async (t) => {
      await t`SELECT 1 FROM messages WHERE conv_id = 'g:one' AND seq = ${m.message.seq} FOR NO KEY UPDATE`;
      holding();
      await held;
    });
    await locked;
    const flush = store.recordAcks([{ userId: 'bob', deviceId: 'phone', inboxSeq: bobAt }]);
    for (let i = 0; i < 500; i++) {
      const w = await raw.sql`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%delivered_count%'`;
      if (w.length > 0) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    // The flush waits for the message row; an append that bumps bob's row commits meanwhile.
    const append = store.appendMessages([post('carol', 'g:one')]);
    const outcome = await Promise.race([append, new Promise<'stuck'>((r) => setTimeout(() => r('stuck'), 5000))]);
    assert.notEqual(outcome, 'stuck', "the append waited for bob's row, held by the waiting flush");
    release();
    await holder;
    const out = await flush;
    assert.deepEqual(out.counts.map((x) => [x.seq, x.count]), [[m.message.seq, 1]]);
  } finally {
    release();
    await store.close();
    await raw.drop();
  }
});
