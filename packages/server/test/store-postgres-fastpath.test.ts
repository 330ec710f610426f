/**
 * Issue 15, "Seq decided inside PostgreSQL" (store/sql-store.ts appendPostgresOrLocked,
 * AppendWriter.flushPostgres): a plain post reads its conversation without a lock, decides in
 * memory with seq offsets, and its write pipeline bumps conversations.last_seq itself. What must
 * still hold, on the real PostgreSQL:
 *
 * - two pools (two nodes) appending concurrently into one conversation: seq gap-free, each
 *   member's inbox gap-free, every outcome's seq and pointers those stored, a sender's
 *   messages in the order sent;
 * - a group effect that commits between the post's read and its write pipeline (a mute: the
 *   rules; a removal: the member epoch) makes the post rerun on the locking path, which sees it:
 *   the muted sender is refused, the removed member gets nothing.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { PostgresEngine } from '../src/db/postgres-engine.ts';
import type { Queryable, SqlEngine, TransactionOptions } from '../src/db/engine.ts';
import { SqlStore } from '../src/store/sql-store.ts';
import type { AppendOutcome } from '../src/store/store.ts';
import { post, seedGroup } from './append-requests.ts';
import { PG_URL, freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

const skip = (await pgUnavailable()) ?? false;

/** The same database through a pool of its own (PostgresEngine shares one pool per URL + schema). */
const urlFor = (node: string): string => `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}application_name=${node}`;

it('two pools appending concurrently into one conversation keep seq, inboxes and each sender\'s order (issue 15)', { skip, timeout: 120_000 }, async () => {
  const schema = freshSchemaName('magpie_fastpath');
  const one = new SqlStore(await PostgresEngine.open({ url: urlFor('node1'), schema, max: 4 }), { ringCapacity: 100_000, ownsEngine: true });
  const two = new SqlStore(await PostgresEngine.open({ url: urlFor('node2'), schema, max: 4 }), { ringCapacity: 100_000, ownsEngine: true });
  const raw = rawClient(schema);
  try {
    await one.migrate();
    await seedGroup(one);
    const senders: [SqlStore, string][] = [[one, 'alice'], [two, 'bob'], [one, 'carol'], [two, 'alice']];
    const PER = 40;
    // Every sender keeps one send in flight (as a node's committer does), all four at once.
    const results: { sender: string; lane: number; out: AppendOutcome }[] = [];
    await Promise.all(
      senders.map(async ([store, sender], lane) => {
        for (let i = 0; i < PER; i++) {
          const batch = i % 5 === 4 ? [post(sender, 'g:one'), post(sender, 'g:one')] : [post(sender, 'g:one')];
          for (const out of await store.appendMessages(batch)) results.push({ sender, lane, out });
        }
      }),
    );
    const ok = results.map((r) => (r.out.ok ? { ...r, o: r.out } : assert.fail(JSON.stringify(r.out))));
    const total = senders.length * (PER + PER / 5);
    assert.equal(ok.length, total);
    // seq: 2..total+1 (1 is the creation notice), each once; the outcomes are what was stored.
    const seqs = ok.map((r) => r.o.message.seq).sort((x, y) => x - y);
    assert.deepEqual(seqs, Array.from({ length: total }, (_, i) => i + 2));
    const stored = new Map((await raw.sql<{ id: string; seq: string }[]>`SELECT id, seq FROM messages WHERE conv_id = 'g:one'`).map((r) => [r.id, Number(r.seq)]));
    for (const r of ok) assert.equal(stored.get(r.o.message.id), r.o.message.seq, 'the outcome carries the stored seq');
    assert.equal(Number((await raw.sql`SELECT last_seq FROM conversations WHERE id = 'g:one'`)[0]!.last_seq), total + 1);
    // Each lane's messages in the order it sent them.
    for (let lane = 0; lane < senders.length; lane++) {
      const mine = ok.filter((r) => r.lane === lane).map((r) => r.o.message.seq);
      assert.deepEqual(mine, [...mine].sort((x, y) => x - y), `lane ${lane} stored in the order sent`);
    }
    // Inboxes: every member's pointers gap-free 1..n, in seq order, matching the outcomes.
    for (const u of ['alice', 'bob', 'carol']) {
      const rows = await raw.sql<{ inbox_seq: string; seq: string }[]>`SELECT inbox_seq, seq FROM inbox WHERE user_id = ${u} ORDER BY inbox_seq`;
      assert.deepEqual(rows.map((r) => Number(r.inbox_seq)), Array.from({ length: total + 1 }, (_, i) => i + 1), `${u}'s inbox is gap-free`);
      assert.deepEqual(rows.map((r) => Number(r.seq)), Array.from({ length: total + 1 }, (_, i) => i + 1), `${u}'s inbox is in seq order`);
      const bySeq = new Map(rows.map((r) => [Number(r.seq), Number(r.inbox_seq)]));
      for (const r of ok) assert.equal(r.o.pointers.find((p) => p.userId === u)?.inboxSeq, bySeq.get(r.o.message.seq), `${u}'s pointer of seq ${r.o.message.seq}`);
      assert.equal(Number((await raw.sql`SELECT inbox_seq FROM users WHERE id = ${u}`)[0]!.inbox_seq), total + 1);
    }
    // The list entries read up to the newest seq.
    const entries = await raw.sql<{ user_id: string; last_seq: string }[]>`SELECT user_id, last_seq FROM entries WHERE conv_id = 'g:one' ORDER BY user_id`;
    assert.deepEqual(entries.map((e) => [e.user_id, Number(e.last_seq)]), [['alice', total + 1], ['bob', total + 1], ['carol', total + 1]]);
  } finally {
    await one.close();
    await two.close();
    await raw.drop();
  }
});

/**
 * `engine`, whose transactions hold their write pipeline once `arm` was called: at the fast
 * path's conversation lock (its first statement), `between` runs, then the pipeline goes on in order.
 */
function pausingEngine(engine: SqlEngine): { engine: SqlEngine; arm: (between: () => Promise<void>) => void; ran: () => boolean } {
  let armed: (() => Promise<void>) | null = null;
  let ran = false;
  const wrapped = Object.assign(Object.create(engine) as SqlEngine, {
    transaction: <T>(fn: (tx: Queryable) => Promise<T>, opts?: TransactionOptions) =>
      engine.transaction((tx) => {
        let gate: Promise<void> | null = null;
        const pass = <R>(sql: string, params: readonly unknown[] | undefined, go: () => Promise<R>): Promise<R> => {
          const first = Array.isArray(params?.[0]) && (params[0] as unknown[]).length > 0;
          if (!gate && armed && first && /^SELECT id FROM conversations WHERE id = ANY.*FOR UPDATE$/s.test(sql)) {
            const between = armed;
            armed = null;
            ran = true;
            gate = between();
          }
          return gate ? gate.then(go) : go();
        };
        return fn({
          dialect: tx.dialect,
          all: (sql, params) => pass(sql, params, () => tx.all(sql, params)),
          values: (sql, params) => pass(sql, params, () => tx.values(sql, params)),
          get: (sql, params) => pass(sql, params, () => tx.get(sql, params)),
          run: (sql, params) => pass(sql, params, () => tx.run(sql, params)),
          exec: (sql) => pass(sql, [], () => tx.exec(sql)),
          textList: (values) => tx.textList(values),
        });
      }, opts),
  });
  return { engine: wrapped, arm: (between) => void (armed = between), ran: () => ran };
}

it('a group effect committed between a post\'s read and its write reruns the post on the locking path (issue 15)', { skip, timeout: 60_000 }, async () => {
  const schema = freshSchemaName('magpie_fastpath_stale');
  const paused = pausingEngine(await PostgresEngine.open({ url: urlFor('node1'), schema, max: 2 }));
  const store = new SqlStore(paused.engine, { ringCapacity: 1000, ownsEngine: true });
  // Another node: its own pool.
  const other = new SqlStore(await PostgresEngine.open({ url: urlFor('node2'), schema, max: 2 }), { ringCapacity: 1000, ownsEngine: true });
  const raw = rawClient(schema);
  try {
    await store.migrate();
    await seedGroup(store);
    assert.equal((await store.appendMessages([post('bob', 'g:one')]))[0]?.ok, true);

    // The rules: alice mutes bob after bob's post read the group and before its write pipeline.
    paused.arm(async () => {
      const [m] = await other.appendMessages([post('alice', 'g:one', { kind: 'system', body: {}, effect: { op: 'mute', user: 'bob', until: Date.now() + 3_600_000 } })]);
      assert.equal(m?.ok, true);
    });
    const [muted] = await store.appendMessages([post('bob', 'g:one')]);
    assert.ok(paused.ran(), 'the fast path ran its write pipeline');
    assert.equal(store.staleAppends, 1, 'the stale batch reran on the locking path');
    assert.equal(muted?.ok, false);
    assert.equal(!muted?.ok && muted?.error, 'muted');

    // Membership: alice's other device removes carol after alice's post read the members.
    paused.arm(async () => {
      const [r] = await other.appendMessages([post('alice', 'g:one', { kind: 'system', body: {}, effect: { op: 'remove', users: ['carol'] } })]);
      assert.equal(r?.ok, true);
    });
    const [after] = await store.appendMessages([post('alice', 'g:one')]);
    assert.equal(store.staleAppends, 2);
    assert.ok(after?.ok);
    assert.deepEqual(after.pointers.map((p) => p.userId).sort(), ['alice', 'bob'], 'the removed member gets no pointer');
    const removal = Number((await raw.sql`SELECT left_seq FROM members WHERE conv_id = 'g:one' AND user_id = 'carol'`)[0]!.left_seq);
    assert.ok(after.message.seq > removal, 'the post is stored after the removal');
    const carol = await raw.sql`SELECT seq FROM inbox WHERE user_id = 'carol' AND conv_id = 'g:one' AND seq > ${removal}`;
    assert.equal(carol.length, 0, 'nothing in carol\'s inbox after her removal');
    // Seq gap-free through all of it.
    const seqs = (await raw.sql<{ seq: string }[]>`SELECT seq FROM messages WHERE conv_id = 'g:one' ORDER BY seq`).map((r) => Number(r.seq));
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1));

    // Nothing changed in between: the fast path commits without a rerun.
    const [plain] = await store.appendMessages([post('alice', 'g:one')]);
    assert.ok(plain?.ok);
    assert.equal(store.staleAppends, 2);
    assert.equal(plain.message.seq, after.message.seq + 1);
  } finally {
    await store.close();
    await other.close();
    await raw.drop();
  }
});
