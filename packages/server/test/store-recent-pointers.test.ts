/**
 * SQLite ACK flushes count what the acknowledged ranges cover from the pointers the store's
 * appends committed (store/recent-pointers.ts) instead of reading `inbox` back (issue 23). The
 * outcome (delivered receipts, delivered counts, marks, entries) must be exactly what reading
 * `inbox` gives: every flush here is first run on the database path in a transaction that is
 * rolled back, then for real, and the two outcomes compared — over a random mix of group and
 * direct messages, several devices, a small inbox ring (trims), store restarts (the memory starts
 * empty) and retention purges of pointers (inbox_purge).
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { recordStatements } from './sqlite-statement-spy.ts';
import { SqlStore } from '../src/store/sql-store.ts';
import { writeAcksSqlite } from '../src/store/ack-writer.ts';
import { RecentPointers } from '../src/store/recent-pointers.ts';
import { directConversationId, type AckOutcome, type AppendRequest, type DeviceAck } from '../src/store/store.ts';
import { createGroup, post } from './append-requests.ts';
import { rng } from './seeded-random.ts';

class Rollback extends Error {}

/** What the ACK flush gives when it reads everything from `inbox` (writeAcksSqlite in a transaction rolled back after). */
async function flushFromInbox(engine: SqliteEngine, acks: DeviceAck[]): Promise<AckOutcome | null> {
  let expected = null as AckOutcome | null;
  await engine
    .transaction(async (tx) => {
      expected = await writeAcksSqlite(tx, structuredClone(acks));
      throw new Rollback();
    })
    .catch((err) => {
      if (!(err instanceof Rollback)) throw err;
    });
  return expected;
}

it('RecentPointers: holds a run of consecutive inboxSeqs per user, restarts on a gap, keeps the last perUser, drops the oldest user', () => {
  const r = new RecentPointers(4, 2);
  r.record([
    ['a', 1, 'g:x', 1, 0],
    ['a', 2, 'g:x', 2, 1],
    ['a', 3, 'g:x', 3, 0],
    ['b', 7, 'g:x', 1, 0],
  ]);
  const got: [string, number][] = [];
  assert.equal(
    r.each('a', 0, 3, (c, s) => got.push([c, s])),
    true,
  );
  assert.deepEqual(got, [
    ['g:x', 1],
    ['g:x', 3],
  ]); // the own message (mine) is left out
  assert.equal(r.each('b', 5, 7, () => assert.fail()), false); // 6 is not held
  assert.equal(r.each('a', 0, 4, () => assert.fail()), false); // 4 not yet
  r.record([
    ['a', 4, 'g:x', 4, 0],
    ['a', 5, 'g:x', 5, 0],
  ]);
  assert.equal(r.each('a', 0, 5, () => assert.fail()), false); // 1 fell out (4 per user)
  assert.equal(r.each('a', 1, 5, () => {}), true);
  r.record([['a', 9, 'g:x', 9, 0]]); // a gap: only 9 is held now
  assert.equal(r.each('a', 4, 5, () => assert.fail()), false);
  assert.equal(r.each('a', 8, 9, () => {}), true);
  r.record([['c', 1, 'g:x', 1, 0]]); // a third user: the first recorded (a) is dropped
  assert.equal(r.size, 2);
  assert.equal(r.each('a', 8, 9, () => assert.fail()), false);
});

it('sqlite: ACK flushes counted from the appended pointers give what reading inbox gives (groups, direct chats, trims, restarts, purges)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'magpie-recent-pointers-'));
  const engine = new SqliteEngine(join(dir, 'magpie.db'));
  /** Statements of the store's transactions (to see which path a flush took). */
  const statements = recordStatements(engine);
  const RING = 12;
  let store = new SqlStore(engine, { ringCapacity: RING });
  try {
    await store.migrate();
    const users = ['ua', 'ub', 'uc', 'ud', 'ue', 'uf'];
    for (const id of users) await store.createUser({ id, username: id, passwordHash: 'x', nickname: id, createdAt: 1 });
    const groups = ['g:rp1', 'g:rp2'];
    const [g1] = await store.appendMessages([createGroup('ua', groups[0]!, users.slice(1))]);
    const [g2] = await store.appendMessages([createGroup('uc', groups[1]!, ['ua', 'ub', 'ud'])]);
    assert.ok(g1?.ok && g2?.ok);
    const members: Record<string, string[]> = { [groups[0]!]: users, [groups[1]!]: ['uc', 'ua', 'ub', 'ud'] };
    const rand = rng(23);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    /** Per user, the highest inboxSeq handed out so far. */
    const top = new Map<string, number>();
    const devices = ['phone', 'laptop'];
    let memoryFlushes = 0;
    let dbFlushes = 0;
    let countsSeen = 0;
    for (let step = 0; step < 400; step++) {
      const what = rand();
      if (what < 0.45) {
        // A batch of 1–6 messages: group posts and direct messages.
        const batch: AppendRequest[] = [];
        for (let i = 1 + Math.floor(rand() * 6); i > 0; i--) {
          if (rand() < 0.75) {
            const conv = pick(groups);
            batch.push(post(pick(members[conv]!), conv));
          } else {
            const a = pick(users);
            const b = pick(users.filter((u) => u !== a));
            batch.push(post(a, directConversationId(a, b), { directMembers: [a, b] }));
          }
        }
        for (const o of await store.appendMessages(batch)) {
          assert.ok(o.ok, JSON.stringify(o));
          for (const p of o.pointers) top.set(p.userId, Math.max(top.get(p.userId) ?? 0, p.inboxSeq));
        }
      } else if (what < 0.9) {
        // A flush: some users' devices ACK up to somewhere at or below their top (or beyond it).
        const acks: DeviceAck[] = [];
        for (const u of users) {
          // uf acknowledges seldom: its ranges reach below the ring (trimmed pointers).
          if (rand() < (u === 'uf' ? 0.97 : 0.4)) continue;
          const t = top.get(u) ?? 0;
          acks.push({ userId: u, deviceId: pick(devices), inboxSeq: rand() < 0.1 ? t + 5 : Math.max(0, t - Math.floor(rand() * 8)) });
        }
        if (acks.length === 0) continue;
        const expected = await flushFromInbox(engine, acks);
        statements.length = 0;
        const got = await store.recordAcks(structuredClone(acks));
        assert.deepEqual(got, expected, `step ${step}`);
        if (statements.some((s) => s.startsWith('WITH k'))) memoryFlushes++;
        if (statements.some((s) => s.includes('MATERIALIZED'))) dbFlushes++;
        countsSeen += got.counts.length;
      } else if (what < 0.95) {
        // A restart: a new store on the same database (nothing held in memory).
        await store.close();
        store = new SqlStore(engine, { ringCapacity: RING });
      } else {
        // A retention purge of a group's pointers up to some seq, for some members (retention-store.ts purgeInbox).
        const conv = pick(groups);
        const last = (await engine.get<{ s: number }>('SELECT MAX(seq) AS s FROM messages WHERE conv_id = ?', [conv]))!.s;
        const upto = Math.max(1, last - Math.floor(rand() * 4));
        for (const u of members[conv]!.filter(() => rand() < 0.5)) {
          await engine.transaction(async (tx) => {
            const gone = await tx.all<{ inbox_seq: number }>('DELETE FROM inbox WHERE user_id = ? AND conv_id = ? AND seq <= ? RETURNING inbox_seq', [u, conv, upto]);
            const max = Math.max(0, ...gone.map((g) => Number(g.inbox_seq)));
            if (max > 0) {
              await tx.run(
                `INSERT INTO inbox_purge (user_id, purged_inbox_seq) VALUES (?, ?)
                 ON CONFLICT (user_id) DO UPDATE SET purged_inbox_seq = CASE WHEN excluded.purged_inbox_seq > inbox_purge.purged_inbox_seq THEN excluded.purged_inbox_seq ELSE inbox_purge.purged_inbox_seq END`,
                [u, max],
              );
            }
          });
        }
      }
    }
    // Both paths were taken, and the flushes raised counts.
    assert.ok(memoryFlushes > 20, `flushes counted from memory: ${memoryFlushes}`);
    assert.ok(dbFlushes > 5, `flushes that read inbox: ${dbFlushes}`);
    assert.ok(countsSeen > 50, `counts: ${countsSeen}`);
  } finally {
    await store.close();
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  }
});

it('sqlite: a flush counted from memory reads its messages with bound values, in chunks of 256/64/16/4/1, and gives what reading inbox gives', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'magpie-recent-pointers-'));
  const engine = new SqliteEngine(join(dir, 'magpie.db'));
  const statements = recordStatements(engine);
  const store = new SqlStore(engine, { ringCapacity: 1000 });
  try {
    await store.migrate();
    const senders = ['s1', 's2', 's3'];
    const recipients = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8'];
    for (const id of [...senders, ...recipients]) await store.createUser({ id, username: id, passwordHash: 'x', nickname: id, createdAt: 1 });
    // 409 messages to 8 recipients (51 each, r1 52: within the 64 pointers held per user), from
    // three senders in turn, in direct chats: 409 = 256 + 2 × 64 + 16 + 2 × 4 + 1.
    const top = new Map<string, number>();
    let sent = 0;
    for (const r of recipients) {
      const batch: AppendRequest[] = [];
      for (let i = 0; i < (r === 'r1' ? 52 : 51); i++) {
        const s = senders[i % senders.length]!;
        batch.push(post(s, directConversationId(s, r), { directMembers: [s, r] }));
      }
      for (const o of await store.appendMessages(batch)) {
        assert.ok(o.ok, JSON.stringify(o));
        for (const p of o.pointers) top.set(p.userId, Math.max(top.get(p.userId) ?? 0, p.inboxSeq));
      }
      sent += batch.length;
    }
    assert.equal(sent, 409);
    const acks: DeviceAck[] = recipients.map((r) => ({ userId: r, deviceId: 'phone', inboxSeq: top.get(r)! }));
    const expected = await flushFromInbox(engine, acks);
    statements.length = 0;
    const got = await store.recordAcks(structuredClone(acks));
    assert.deepEqual(got, expected);
    // Every sender's entry in every chat moved to its last message there: 3 senders × 8 chats.
    assert.equal(got.delivered.length, 24);
    const known = statements.filter((s) => s.startsWith('WITH k'));
    const rows = known.map((s) => (s.match(/\(\?, \?, \?\)/g) ?? []).length).sort((a, b) => b - a);
    assert.deepEqual(rows, [256, 64, 64, 16, 4, 4, 1], 'the messages read in chunks, three values bound per message');
    assert.ok(!known.some((s) => s.includes('json_each')), 'no JSON array to parse per message');
    assert.ok(!statements.some((s) => s.includes('MATERIALIZED')), 'nothing read back from inbox');
  } finally {
    await store.close();
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  }
});
