/**
 * The statements of SQLite's hot write transactions (issue 23), on a store whose transactions
 * record every statement text:
 * - appends keep the member rows of direct conversations they have read (SqlStore's
 *   directMembers): a direct chat's members never change, so only the first batch that sees a
 *   conversation reads them. The messages, pointers and entries stay what they were.
 * - an ACK flush of many users writes devices, user rows and entries in multi-row statements and
 *   reads each sender's entry with the items it covers, not one statement per user or entry.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { recordStatements } from './sqlite-statement-spy.ts';
import { SqlStore } from '../src/store/sql-store.ts';
import { directConversationId, type AppendOutcome, type AppendRequest } from '../src/store/store.ts';

/** A SqlStore on a SQLite engine whose transactions record every statement text. */
async function spiedStore(): Promise<{ store: SqlStore; statements: string[]; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'magpie-direct-members-'));
  const engine = new SqliteEngine(join(dir, 'magpie.db'));
  const statements = recordStatements(engine);
  const store = new SqlStore(engine, { ringCapacity: 100, ownsEngine: true });
  await store.migrate();
  return {
    store,
    statements,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

let n = 0;
function send(from: string, to: string): AppendRequest {
  n++;
  return { sender: from, clientMsgId: `c${n}`, conv: directConversationId(from, to), directMembers: [from, to], kind: 'text', body: { text: `m${n}` }, time: 1_000 + n, id: `m${String(n).padStart(6, '0')}` };
}

const ok = (o: AppendOutcome) => {
  assert.ok(o.ok, JSON.stringify(o));
  return o;
};
const readsMembers = (sqls: string[]) => sqls.filter((s) => /FROM members/.test(s)).length;

it('sqlite: a direct chat whose members an earlier append read is appended to without reading them again', async () => {
  const { store, statements, cleanup } = await spiedStore();
  try {
    for (const id of ['dm_a', 'dm_b', 'dm_c']) await store.createUser({ id, username: id, passwordHash: 'x', nickname: id, createdAt: 1 });
    // The first message creates the conversation (its member rows written and read in that transaction).
    const [first] = await store.appendMessages([send('dm_a', 'dm_b')]);
    assert.equal(ok(first!).message.seq, 1);
    // Next batch: the conversation existed before it, its members are read once and kept.
    statements.length = 0;
    const [second] = await store.appendMessages([send('dm_b', 'dm_a')]);
    assert.equal(readsMembers(statements), 1);
    // From then on: no member read for it, even in a batch with a chat seen for the first time.
    statements.length = 0;
    const third = await store.appendMessages([send('dm_a', 'dm_b'), send('dm_b', 'dm_a')]);
    assert.equal(readsMembers(statements), 0, statements.filter((s) => /FROM members/.test(s)).join('\n'));
    // A new chat: read in the batch that creates it and in the next one (it existed before that one), then kept.
    statements.length = 0;
    await store.appendMessages([send('dm_c', 'dm_a'), send('dm_a', 'dm_b')]); // creates d:dm_a:dm_c
    assert.equal(readsMembers(statements), 1);
    statements.length = 0;
    await store.appendMessages([send('dm_c', 'dm_a'), send('dm_b', 'dm_a')]);
    assert.equal(readsMembers(statements), 1);
    statements.length = 0;
    await store.appendMessages([send('dm_a', 'dm_c'), send('dm_a', 'dm_b')]);
    assert.equal(readsMembers(statements), 0);

    // The outcomes are what they always were: seqs in order, a pointer for both members.
    const all = [ok(second!), ...third.map(ok)];
    assert.deepEqual(all.map((o) => o.message.seq), [2, 3, 4]);
    for (const o of all) assert.deepEqual(o.pointers.map((p) => p.userId).sort(), ['dm_a', 'dm_b']);
    const conv = directConversationId('dm_a', 'dm_b');
    const page = await store.readHistory(conv, { after: 0, limit: 10 });
    assert.deepEqual(page.map((m) => m.seq), [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(page.map((m) => m.sender), ['dm_a', 'dm_b', 'dm_a', 'dm_b', 'dm_a', 'dm_b', 'dm_a']);
    // Inbox seqs stay gap-free across both conversations (dm_a: 7 in d:a:b + 3 in d:a:c).
    const inbox = await store.readInbox('dm_a', 0, 100);
    assert.deepEqual(inbox.map((p) => p.inboxSeq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal((await store.inboxState('dm_b')).latest, 7);
    assert.equal((await store.inboxState('dm_c')).latest, 3);
  } finally {
    await cleanup();
  }
});

it('sqlite: an ACK flush of many users writes in multi-row statements, with the same outcome', async () => {
  const { store, statements, cleanup } = await spiedStore();
  try {
    // 16 users: one statement of 16 rows each (rows go in statements of 64/16/4/1).
    const users = Array.from({ length: 16 }, (_, i) => `ack_${String(i).padStart(2, '0')}`);
    for (const id of users) await store.createUser({ id, username: id, passwordHash: 'x', nickname: id, createdAt: 1 });
    // Eight pairs, two messages each way.
    const batch: AppendRequest[] = [];
    for (let round = 0; round < 2; round++) for (let p = 0; p < 8; p++) batch.push(send(users[2 * p]!, users[2 * p + 1]!), send(users[2 * p + 1]!, users[2 * p]!));
    const out = (await store.appendMessages(batch)).map(ok);
    const latest = new Map<string, number>();
    for (const o of out) for (const x of o.pointers) latest.set(x.userId, Math.max(latest.get(x.userId) ?? 0, x.inboxSeq));
    statements.length = 0;
    const res = await store.recordAcks(users.map((userId) => ({ userId, deviceId: 'phone', inboxSeq: latest.get(userId)! })));
    const count = (re: RegExp) => statements.filter((x) => re.test(x)).length;
    assert.equal(count(/INSERT (OR FAIL )?INTO devices/), 1, 'one devices upsert for 16 devices');
    assert.equal(count(/UPDATE (OR FAIL )?users/), 1, 'one users update for 16 marks and list versions');
    assert.equal(count(/UPDATE (OR FAIL )?entries/), 1, 'one entries update for 16 senders');
    assert.equal(count(/FROM entries WHERE/), 0, 'no entry read per sender');
    // Each user acknowledged its partner's two messages: the partner's entry is delivered up to the
    // partner's last message (seq 3 for the first of a pair, 4 for the second).
    const lastOf = (id: string) => (users.indexOf(id) % 2 === 0 ? 3 : 4);
    assert.equal(res.delivered.length, 16);
    for (const d of res.delivered) assert.equal(d.seq, lastOf(d.sender), JSON.stringify(d));
    const again = await store.recordAcks(users.map((userId) => ({ userId, deviceId: 'phone', inboxSeq: latest.get(userId)! })));
    assert.deepEqual(again, { delivered: [], counts: [] });
    // The senders' entries moved, each with a new list version (the user's conv_version after the flush).
    for (const id of users) {
      const e = await store.getEntry(id, directConversationId(id, users[users.indexOf(id) ^ 1]!));
      assert.equal(e?.deliveredSeq, lastOf(id), id);
      const changes = await store.conversationChanges(id, 0, 10);
      assert.equal(e?.version, changes.version, `${id}: the entry carries the latest list version`);
    }
  } finally {
    await cleanup();
  }
});
