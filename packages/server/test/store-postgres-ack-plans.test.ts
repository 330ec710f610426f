/**
 * Issue 15: the ACK flush's statements that read what the acknowledged inbox ranges cover
 * (store/ack-writer.ts: plan, ranges, raise) reach the inbox and messages rows through their
 * primary keys, one short index range per range — never a sequential scan of the whole inbox or
 * messages table. Written as plain joins, PostgreSQL hashed the ranges against a sequential scan
 * of the inbox whenever the table was small next to the number of ranges (a young or small
 * deployment): every flush read every inbox row, and on three nodes once per node per message.
 *
 * Also checks the statements' answers on the same data (the rows they return and the counts
 * they raise), so the rewrite is the same query.
 *
 * Needs PostgreSQL (MAGPIE_TEST_PG); skips with a message without it.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { openPostgresStore } from '../src/store/open.ts';
import { ACK_SQL_POSTGRES } from '../src/store/ack-writer.ts';
import { post, spec } from './append-requests.ts';
import { PG_URL, freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

const skip = (await pgUnavailable()) ?? false;

/** `?` placeholders as the engine sends them ($1, $2, …). */
const numbered = (q: string): string => {
  let i = 0;
  return q.replace(/\?/g, () => `$${++i}`);
};

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Loops'?: number;
  Plans?: PlanNode[];
}
/** Index probes of a table as executed: the loops of its scans. */
function probes(n: PlanNode, rel: string): number {
  let k = n['Relation Name'] === rel && /Scan/.test(n['Node Type']) ? (n['Actual Loops'] ?? 0) : 0;
  for (const c of n.Plans ?? []) k += probes(c, rel);
  return k;
}
function scans(n: PlanNode, out: string[] = []): string[] {
  if (n['Relation Name']) out.push(`${n['Node Type']} ${n['Relation Name']}`);
  for (const c of n.Plans ?? []) scans(c, out);
  return out;
}

it('the ACK flush reads acknowledged ranges by index, not by scanning the inbox (issue 15)', { skip, timeout: 120_000 }, async () => {
  const schema = freshSchemaName('magpie_ackplans');
  const store = await openPostgresStore({ url: PG_URL, ringCapacity: 1000, schema, max: 3 });
  const raw = rawClient(schema);
  try {
    const members = Array.from({ length: 29 }, (_, i) => `m${String(i).padStart(2, '0')}`);
    for (const id of ['owner', ...members]) await store.createUser({ id, username: id, passwordHash: 'x', nickname: id, createdAt: 1 });
    const [created] = await store.appendMessages([post('owner', 'g:plans', { kind: 'system', body: {}, effect: { op: 'create', group: spec, members } })]);
    assert.equal(created?.ok, true);
    // 60 posts by the owner: ~1 800 inbox rows; each member then acknowledges the last one.
    let last: Map<string, number> = new Map();
    for (let i = 0; i < 60; i++) {
      const [o] = await store.appendMessages([post('owner', 'g:plans')]);
      assert.ok(o?.ok);
      last = new Map(o.pointers.map((p) => [p.userId, p.inboxSeq]));
    }
    const users = members;
    const hi = users.map((u) => last.get(u)!);
    const lo = hi.map((s) => s - 1);

    // Without statistics (a fresh database, or autovacuum off) and with them (ANALYZE: what
    // autovacuum gives a young deployment, where messages and entries are small tables).
    for (const stats of [false, true]) {
      if (stats) await raw.sql.unsafe('ANALYZE');
      const explain = async (q: string, params: unknown[]): Promise<string[]> => {
        const r = await raw.sql.unsafe(`EXPLAIN (FORMAT JSON) ${numbered(q)}`, params as never[]);
        const plan = (r[0] as Record<string, unknown>)['QUERY PLAN'] as { Plan: PlanNode }[];
        return scans(plan[0]!.Plan);
      };
      for (const [name, q, params] of [
        ['plan', ACK_SQL_POSTGRES.plan, [users, users, lo, hi]],
        ['ranges', ACK_SQL_POSTGRES.ranges, [users, lo, hi]],
        ['raise', ACK_SQL_POSTGRES.raise, [users, lo, hi]],
      ] as const) {
        const s = await explain(q, [...params]);
        // With statistics of these tiny tables, reading all of messages' one page once per flush
        // is the planner's fair choice; once per range is not (counted below).
        const whole = stats ? /^Seq Scan inbox$/ : /^Seq Scan (inbox|messages)$/;
        assert.ok(!s.some((x) => whole.test(x)), `${name} (statistics: ${stats}) scans a whole table: ${s.join(', ')}`);
        assert.ok(s.includes('Index Scan inbox') || s.includes('Index Only Scan inbox'), `${name} reads no inbox range by index: ${s.join(', ')}`);
      }

      // Every range covers the same message of the same sender: its message row and the sender's
      // entry are read once per flush, not once per range (issue 15, branch pgc15). With
      // statistics, the old per-range form scanned all of messages and entries once per range.
      const analyze = (q: string, params: unknown[]): Promise<PlanNode> =>
        raw.sql
          .begin(async (tx) => {
            const r = await tx.unsafe(`EXPLAIN (ANALYZE, FORMAT JSON) ${numbered(q)}`, params as never[]);
            throw Object.assign(new Error('rollback'), { plan: ((r[0] as Record<string, unknown>)['QUERY PLAN'] as { Plan: PlanNode }[])[0]!.Plan });
          })
          .catch((e: { plan?: PlanNode }) => {
            if (!e.plan) throw e;
            return e.plan;
          });
      for (const [name, q, params, most] of [
        ['plan', ACK_SQL_POSTGRES.plan, [users, users, lo, hi], { messages: 1, entries: 1 }],
        ['ranges', ACK_SQL_POSTGRES.ranges, [users, lo, hi], { messages: 1, entries: 1 }],
        // raise: one probe to read the sender, one to lock the row, one to update it.
        ['raise', ACK_SQL_POSTGRES.raise, [users, lo, hi], { messages: 3, entries: 0 }],
      ] as const) {
        const p = await analyze(q, [...params]);
        assert.equal(probes(p, 'inbox'), users.length, `${name}: one inbox range per range`);
        assert.ok(probes(p, 'messages') <= most.messages, `${name} (statistics: ${stats}): messages probed ${probes(p, 'messages')} times for one message`);
        assert.ok(probes(p, 'entries') <= most.entries, `${name} (statistics: ${stats}): entries probed ${probes(p, 'entries')} times for one (conversation, sender)`);
      }
    }

    // The answers: each range covers the last post (seq 61: the create is seq 1), sent by the owner.
    const ranges = await raw.sql.unsafe(numbered(ACK_SQL_POSTGRES.ranges), [users, lo, hi] as never[]);
    assert.deepEqual(
      ranges.map((r) => [Number(r.ord), r.conv, r.sender, Number(r.seq)]),
      users.map((_, i) => [i + 1, 'g:plans', 'owner', 61]),
    );
    // A member's own range that covers nothing sent by someone else yields nothing.
    assert.equal((await raw.sql.unsafe(numbered(ACK_SQL_POSTGRES.ranges), [['owner'], [0], [61]] as never[])).length, 0);
    const raised = await raw.sql.begin((tx) => tx.unsafe(numbered(ACK_SQL_POSTGRES.raise), [users, lo, hi] as never[]));
    assert.deepEqual(
      raised.map((r) => [r.conv, Number(r.seq), r.sender, Number(r.count)]),
      [['g:plans', 61, 'owner', 29]],
    );
  } finally {
    await store.close();
    await raw.drop();
  }
});
