import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { openSqliteStore } from '../src/store/open.ts';
import { directConversationId, type AppendOutcome, type AppendRequest } from '../src/store/store.ts';

/**
 * SQLite appends decide a batch without reading stored (sender, clientMsgId) pairs first, and
 * rerun it with that read when the messages INSERT meets one or a request is refused
 * (SqlStore.appendPostgresOrLocked, AppendAttempt in sql-store.ts). The outcomes are those of
 * the read: these pin the reruns (the Store contract pins the outcomes on both engines).
 */
async function withStore(fn: (store: Awaited<ReturnType<typeof openSqliteStore>>) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'magpie-idem-'));
  const store = await openSqliteStore({ path: join(dir, 'magpie.db'), ringCapacity: 100 });
  try {
    await store.migrate();
    for (const id of ['ua', 'ub']) await store.createUser({ id, username: id, passwordHash: 'x', nickname: id, createdAt: 1 });
    await fn(store);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

let n = 0;
function dm(from: string, to: string, clientMsgId = `c${++n}`): AppendRequest {
  const body = { text: `hi ${n}` };
  return { sender: from, clientMsgId, conv: directConversationId(from, to), directMembers: [from, to], kind: 'text', body, bodyJson: JSON.stringify(body), time: 1000 + n, id: `m${++n}` };
}

const ok = (o: AppendOutcome): Extract<AppendOutcome, { ok: true }> => {
  assert.ok(o.ok, JSON.stringify(o));
  return o;
};

it('sqlite: a batch of new messages commits without a rerun', async () => {
  await withStore(async (store) => {
    const out = await store.appendMessages([dm('ua', 'ub'), dm('ub', 'ua'), dm('ua', 'ub')]);
    assert.deepEqual(out.map((o) => ok(o).message.seq), [1, 2, 3]);
    assert.equal(store.idempotencyReruns, 0);
  });
});

it('sqlite: a retry of a stored message among new ones reruns once, with gap-free seqs', async () => {
  await withStore(async (store) => {
    const first = dm('ua', 'ub');
    const o1 = ok((await store.appendMessages([first]))[0]!);
    const fresh = dm('ub', 'ua');
    const out = await store.appendMessages([dm('ua', 'ub'), { ...first, id: 'm-retry' }, fresh]);
    assert.equal(store.idempotencyReruns, 1);
    assert.equal(ok(out[1]!).duplicate, true);
    assert.deepEqual(ok(out[1]!).message, o1.message);
    assert.deepEqual([ok(out[0]!).message.seq, ok(out[2]!).message.seq], [2, 3]);
    assert.equal((await store.getConversation(first.conv))?.lastSeq, 3);
    assert.equal((await store.getUser('ua'))?.inboxSeq, 3);
  });
});

it('sqlite: a retry of a stored message that would now be refused is still its duplicate (rerun with the read)', async () => {
  await withStore(async (store) => {
    const first = dm('ua', 'ub');
    const o1 = ok((await store.appendMessages([first]))[0]!);
    // The same (sender, clientMsgId) into a group that does not exist: refused as new, a duplicate as a retry.
    const out = await store.appendMessages([dm('ub', 'ua'), { ...first, conv: 'g:none', directMembers: undefined, id: 'm-retry' }]);
    assert.equal(store.idempotencyReruns, 1);
    assert.equal(ok(out[0]!).message.seq, 2);
    assert.equal(ok(out[1]!).duplicate, true);
    assert.deepEqual(ok(out[1]!).message, o1.message);
    // A refusal that is no retry stays a refusal (after its rerun).
    const [refused] = await store.appendMessages([{ ...dm('ua', 'ub'), conv: 'g:none', directMembers: undefined }]);
    assert.equal(refused!.ok, false);
    assert.equal(store.idempotencyReruns, 2);
  });
});
