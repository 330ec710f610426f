/**
 * The SQLite writer thread (store/sqlite-writer.ts): appends and ACK flushes leave the event
 * loop, writes of both connections interleave without SQLite busy errors, and a thread that
 * dies fails only its own jobs.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { directConversationId, type AppendOutcome, type AppendRequest } from '../src/store/store.ts';
import { openSqliteStore } from '../src/store/open.ts';
import type { SqlStore } from '../src/store/sql-store.ts';

describe('SQLite writer thread', () => {
  let dir: string;
  let store: SqlStore;
  let n = 0;
  const users = ['wa', 'wb', 'wc', 'wd'];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'magpie-writer-'));
    store = await openSqliteStore({ path: join(dir, 'magpie.db'), ringCapacity: 1000, writerThread: true });
    for (const id of users) await store.createUser({ id, username: id, passwordHash: 'x', nickname: id, createdAt: 1 });
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const dm = (from: string, to: string): AppendRequest => {
    const i = ++n;
    return { sender: from, clientMsgId: `c${i}`, conv: directConversationId(from, to), directMembers: [from, to], kind: 'text', body: { text: `m${i}` }, time: 1000 + i, id: `id${i}` };
  };
  const ok = (o: AppendOutcome) => {
    assert.ok(o.ok, JSON.stringify(o));
    return o;
  };

  it('runs appends and ACK flushes on its own connection: the event loop opens no transaction for them', async () => {
    const engine = store.db as { transaction: (...a: unknown[]) => unknown };
    const original = engine.transaction;
    let onLoop = 0;
    engine.transaction = function (this: unknown, ...a: unknown[]) {
      onLoop++;
      return original.apply(this, a);
    };
    try {
      const batch = [dm('wa', 'wb'), dm('wa', 'wb'), dm('wb', 'wa')];
      const out = (await store.appendMessages(batch)).map(ok);
      assert.deepEqual(out.map((o) => o.message.seq), [1, 2, 3]);
      // The body comes back as the request's own object (callers reuse its serialization).
      assert.equal(out[0]!.message.body, batch[0]!.body);
      const b = out[0]!.pointers.find((p) => p.userId === 'wb')!;
      const acked = await store.recordAcks([{ userId: 'wb', deviceId: 'phone', inboxSeq: b.inboxSeq + 1 }]);
      assert.ok(acked.delivered.length >= 1);
      // The sender's own device marks the peer's message delivered to it.
      assert.deepEqual(await store.markDelivered('wa', 100), [{ conv: batch[2]!.conv, seq: 3, sender: 'wb' }]);
      assert.equal(onLoop, 0, 'no append or ACK transaction ran on the event loop');
    } finally {
      engine.transaction = original;
    }
    // What the thread committed is visible to the event loop's connection at once.
    const inbox = await store.readInbox('wb', 0, 100);
    assert.equal(inbox.length, 3);
    assert.deepEqual((await store.readHistory(directConversationId('wa', 'wb'), { after: 0, limit: 10 })).map((m) => m.seq), [1, 2, 3]);
  });

  it('interleaves writes of the event loop and of the thread without busy errors, in order', async () => {
    const conv = directConversationId('wc', 'wd');
    const jobs: Promise<unknown>[] = [];
    const appends: Promise<AppendOutcome[]>[] = [];
    for (let i = 0; i < 40; i++) {
      appends.push(store.appendMessages([dm('wc', 'wd'), dm('wc', 'wd')]));
      jobs.push(store.setDeviceAck('wd', 'tablet', i));
      if (i > 0) jobs.push(store.markRead('wc', conv, 1).catch((e: Error) => assert.equal(e.name, 'StoreNotFoundError')));
      jobs.push(store.createSession({ tokenHash: `t${i}`, userId: 'wc', deviceId: `d${i}`, platform: 'other', appVersion: '1', createdAt: 1, expiresAt: Date.now() + 60_000 }));
    }
    const outs = (await Promise.all(appends)).flat().map(ok);
    await Promise.all(jobs);
    // Handed over in order, stored in order: seq follows the order of the calls.
    assert.deepEqual(outs.map((o) => o.message.seq), Array.from({ length: 80 }, (_, i) => i + 1));
    assert.equal((await store.listSessions('wc', Date.now())).length, 40);
    assert.equal((await store.getEntry('wd', conv))!.unread, 80);
  });

  it('a thread that dies fails only its waiting jobs; the next job starts a new one and the lock is free', async () => {
    const writer = (store as unknown as { writer: { worker: { terminate(): Promise<number> } | null } }).writer;
    assert.ok(writer.worker);
    await writer.worker.terminate();
    const out = (await store.appendMessages([dm('wa', 'wc')])).map(ok);
    assert.equal(out[0]!.message.seq, 1);
    // The event loop's own writes still get the lock.
    await store.setDeviceAck('wa', 'phone', 1);
    const wc = out[0]!.pointers.find((p) => p.userId === 'wc')!.inboxSeq;
    assert.deepEqual((await store.readInbox('wc', wc - 1, 10)).map((i) => i.inboxSeq), [wc]);
  });
});
