/**
 * Issue 15: ACK flushes on PostgreSQL claim one advisory lock per acknowledging user
 * (store/ack-writer.ts), not one for the whole cluster. Flushes of different users — typically
 * of users connected to different nodes — do not wait for each other; flushes of one user do;
 * and what several flushes write at once (a sender's entries and list version, group delivered
 * counts) stays exact.
 *
 * Needs PostgreSQL (MAGPIE_TEST_PG); skips with a message without it.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { openPostgresStore } from '../src/store/open.ts';
import { ACK_LOCK_SPACE, ackClaimKey, ackClaimKeys, splitAcksByUsers } from '../src/store/ack-writer.ts';
import type { SqlStore } from '../src/store/sql-store.ts';
import type { AckOutcome, DeviceAck } from '../src/store/store.ts';
import { post, spec } from './append-requests.ts';
import { PG_URL, freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

const skip = (await pgUnavailable()) ?? false;

async function group(store: SqlStore, owner: string, members: string[], conv: string): Promise<void> {
  for (const id of [owner, ...members]) await store.createUser({ id, username: id, passwordHash: 'x', nickname: id, createdAt: 1 });
  const [o] = await store.appendMessages([post(owner, conv, { kind: 'system', body: {}, effect: { op: 'create', group: spec, members } })]);
  assert.equal(o?.ok, true);
}

/** Sends `count` posts by `sender`; returns, per post, each member's inboxSeq. */
async function send(store: SqlStore, sender: string, conv: string, count: number): Promise<Map<string, number>[]> {
  const out: Map<string, number>[] = [];
  for (let i = 0; i < count; i++) {
    const [o] = await store.appendMessages([post(sender, conv)]);
    assert.ok(o?.ok);
    out.push(new Map(o.pointers.map((p) => [p.userId, p.inboxSeq])));
  }
  return out;
}

it('claim keys: ascending, deduplicated; large flushes split by user', () => {
  const keys = ackClaimKeys(['u3', 'u1', 'u2', 'u1']);
  assert.equal(keys.length, 3);
  assert.deepEqual(keys, [...keys].sort((x, y) => x - y));
  assert.ok(keys.every((k) => Number.isInteger(k) && k >= -(2 ** 31) && k < 2 ** 31));
  const acks: DeviceAck[] = [];
  for (let u = 0; u < 5; u++) for (const d of ['a', 'b']) acks.push({ userId: `u${u}`, deviceId: d, inboxSeq: 1 });
  const parts = splitAcksByUsers(acks, 2);
  assert.deepEqual(parts.map((p) => [...new Set(p.map((a) => a.userId))]), [['u0', 'u1'], ['u2', 'u3'], ['u4']]);
  assert.equal(parts.flat().length, acks.length);
  assert.deepEqual(splitAcksByUsers(acks, 5), [acks]);
});

it('ACK flushes of different users do not wait for each other; one user\'s flushes do (issue 15)', { skip, timeout: 60_000 }, async () => {
  const schema = freshSchemaName('magpie_ackclaims');
  const store = await openPostgresStore({ url: PG_URL, ringCapacity: 1000, schema, max: 3 });
  const raw = rawClient(schema);
  try {
    await group(store, 'alice', ['bob', 'carol'], 'g:one');
    const [m] = await send(store, 'alice', 'g:one', 1);

    // Another node's flush of bob, open: it holds bob's claim until released.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let held!: () => void;
    const holding = new Promise<void>((r) => (held = r));
    const holder = raw.sql.begin(async (sql) => {
      await sql`SELECT pg_advisory_xact_lock(${ACK_LOCK_SPACE}::int, ${ackClaimKey('bob')}::int)`;
      held();
      await released;
    });
    await holding;

    // carol's flush goes through (before: every flush waited for the one cluster-wide claim).
    const timeout = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());
    const carol = await Promise.race([store.recordAcks([{ userId: 'carol', deviceId: 'tab', inboxSeq: m!.get('carol')! }]), timeout(10_000)]);
    assert.notEqual(carol, 'timeout', "carol's flush waited for bob's claim");
    assert.deepEqual((carol as AckOutcome).delivered, [{ conv: 'g:one', seq: 2, sender: 'alice', by: 'carol' }]);
    assert.deepEqual((carol as AckOutcome).counts.map((c) => [c.seq, c.count]), [[2, 1]]);

    // bob's flush waits for bob's claim, then builds on what committed before it.
    let bobDone = false;
    const bob = store.recordAcks([{ userId: 'bob', deviceId: 'phone', inboxSeq: m!.get('bob')! }]).finally(() => (bobDone = true));
    for (let i = 0; i < 1000; i++) {
      const w = await raw.sql`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory' AND query LIKE '%pg_advisory_xact_lock%unnest%'`;
      if (w.length > 0) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(bobDone, false, "bob's flush did not wait for bob's claim");
    release();
    await holder;
    const out = await bob;
    // carol already moved alice's entry to seq 2: bob's flush moves nothing there and reports nothing.
    assert.deepEqual(out.delivered, []);
    assert.deepEqual(out.counts.map((c) => [c.seq, c.count]), [[2, 2]]);
    const [entry] = await raw.sql`SELECT delivered_seq FROM entries WHERE user_id = 'alice' AND conv_id = 'g:one'`;
    assert.equal(Number(entry!.delivered_seq), 2);
  } finally {
    await store.close();
    await raw.drop();
  }
});

it('concurrent ACK flushes on two nodes keep marks, entries, list versions and counts exact (issue 15)', { skip, timeout: 120_000 }, async () => {
  const schema = freshSchemaName('magpie_ackrace');
  // Two stores with pools of their own: two nodes on one database.
  const nodeA = await openPostgresStore({ url: PG_URL, ringCapacity: 1000, schema, max: 4 });
  const nodeB = await openPostgresStore({ url: PG_URL, ringCapacity: 1000, schema, max: 4 });
  const raw = rawClient(schema);
  try {
    const members = Array.from({ length: 10 }, (_, i) => `m${String(i).padStart(2, '0')}`);
    await group(nodeA, 'alice', ['dave', ...members], 'g:race');
    const recipients = ['dave', ...members];
    // Interleaved posts of two senders; each recipient's inboxSeq per post.
    const posts: { sender: string; seq: number; at: Map<string, number> }[] = [];
    let seq = 1;
    for (let i = 0; i < 12; i++) {
      const sender = i % 3 === 2 ? 'dave' : 'alice';
      const [at] = await send(i % 2 ? nodeB : nodeA, sender, 'g:race', 1);
      posts.push({ sender, seq: ++seq, at: at! });
    }
    // Each recipient acknowledges in three cumulative steps; even recipients through node A,
    // odd through node B, and m00/m01 through both nodes at once (the same user's ACKs race).
    const rounds: [SqlStore, DeviceAck[]][] = [];
    for (const step of [4, 8, 12]) {
      const acksA: DeviceAck[] = [];
      const acksB: DeviceAck[] = [];
      recipients.forEach((u, i) => {
        const upTo = posts[step - 1]!.at.get(u)!;
        (i % 2 === 0 ? acksA : acksB).push({ userId: u, deviceId: 'phone', inboxSeq: upTo });
        if (u === 'm00' || u === 'm01') (i % 2 === 0 ? acksB : acksA).push({ userId: u, deviceId: 'tab', inboxSeq: upTo });
      });
      // Split into several concurrent flushes per node.
      for (let k = 0; k < acksA.length; k += 2) rounds.push([nodeA, acksA.slice(k, k + 2)]);
      for (let k = 0; k < acksB.length; k += 2) rounds.push([nodeB, acksB.slice(k, k + 2)]);
    }
    const outs = await Promise.all(rounds.map(([store, acks]) => store.recordAcks(acks)));

    // Marks: every recipient's delivered mark at its inbox.
    for (const u of recipients) {
      // The mark lives in delivery_marks on PostgreSQL (migration 0023).
      const [r] = await raw.sql`SELECT u.inbox_seq, d.delivered_inbox_seq FROM users u JOIN delivery_marks d ON d.user_id = u.id WHERE u.id = ${u}`;
      assert.equal(Number(r!.delivered_inbox_seq), Number(r!.inbox_seq), `${u}'s mark`);
    }
    // Counts: every acknowledging recipient but the sender counted once per message (alice never
    // acknowledges: alice's posts 11, dave's 10).
    const expected = (sender: string) => recipients.filter((u) => u !== sender).length;
    const counts = await raw.sql`SELECT seq, sender_id, delivered_count FROM messages WHERE conv_id = 'g:race' AND kind = 'text' ORDER BY seq`;
    assert.equal(counts.length, posts.length);
    for (const c of counts) assert.equal(Number(c.delivered_count), expected(c.sender_id), `count of seq ${c.seq}`);
    // The highest count reported per message is the final one.
    const top = new Map<number, number>();
    for (const o of outs) for (const c of o.counts) top.set(c.seq, Math.max(top.get(c.seq) ?? 0, c.count));
    assert.deepEqual([...top.entries()].sort((x, y) => x[0] - y[0]), posts.map((p) => [p.seq, expected(p.sender)]));

    // Senders' entries: delivered_seq at their newest post; each advance reported once, the
    // reports of all flushes reaching exactly it.
    for (const sender of ['alice', 'dave']) {
      const newest = Math.max(...posts.filter((p) => p.sender === sender).map((p) => p.seq));
      const [e] = await raw.sql`SELECT delivered_seq FROM entries WHERE user_id = ${sender} AND conv_id = 'g:race'`;
      assert.equal(Number(e!.delivered_seq), newest, `${sender}'s entry`);
      const reported = outs.flatMap((o) => o.delivered.filter((d) => d.sender === sender).map((d) => d.seq));
      assert.equal(new Set(reported).size, reported.length, `${sender}: an advance reported twice: ${reported}`);
      assert.equal(Math.max(...reported), newest);
      // List versions: unique per user, none above the user's conv_version, and a sync from 0 sees the entry.
      const versions = await raw.sql`SELECT version FROM entries WHERE user_id = ${sender}`;
      assert.equal(new Set(versions.map((v) => Number(v.version))).size, versions.length, `${sender}: two entries share a version`);
      const [u] = await raw.sql`SELECT conv_version FROM users WHERE id = ${sender}`;
      assert.ok(versions.every((v) => Number(v.version) <= Number(u!.conv_version)));
      const changes = await nodeB.conversationChanges(sender, 0, 100);
      assert.equal(changes.entries.find((x) => x.conv === 'g:race')?.deliveredSeq, newest);
    }
  } finally {
    await nodeA.close();
    await nodeB.close();
    await raw.drop();
  }
});
