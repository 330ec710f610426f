/**
 * The SQLite writer thread's warm-up (store/writer-warmup.ts): it runs on a private in-memory
 * copy of the schema and leaves the server's database untouched; the thread serves real jobs
 * while it runs.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { migrate } from '../src/db/migrate.ts';
import { MIGRATIONS } from '../src/db/migrations/index.ts';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { searchableText } from '../src/search/extract.ts';
import { openSqliteStore } from '../src/store/open.ts';
import { directConversationId } from '../src/store/store.ts';
import { copySchema, WriterWarmUp } from '../src/store/writer-warmup.ts';

const schemaOf = (e: SqliteEngine) =>
  e.all<{ type: string; name: string; sql: string }>("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name");

const counts = async (e: SqliteEngine) => {
  const out: Record<string, number> = {};
  for (const t of ['users', 'conversations', 'members', 'messages', 'inbox', 'entries', 'devices']) out[t] = ((await e.get<{ n: number }>(`SELECT count(*) AS n FROM ${t}`))!).n;
  return out;
};

describe('SQLite writer warm-up', () => {
  let dir: string;
  let engine: SqliteEngine;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'magpie-warmup-'));
    engine = new SqliteEngine(join(dir, 'magpie.db'), { synchronous: 'normal', checkpointMs: 0 });
    await migrate(engine, MIGRATIONS);
  });
  after(async () => {
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('copies the schema of the database (tables, indexes, triggers, the FTS table and its shadow tables)', async () => {
    const copy = new SqliteEngine(':memory:', { checkpointMs: 0 });
    try {
      await copySchema(engine, copy);
      assert.deepEqual(await schemaOf(copy), await schemaOf(engine));
    } finally {
      await copy.close();
    }
  });

  it('runs its batches to the end and writes nothing to the database it copied', async () => {
    const before = await counts(engine);
    const w = new WriterWarmUp(engine, { ringCapacity: 100, batches: 12 });
    let steps = 0;
    while (await w.step()) steps++;
    assert.equal(steps, 12, 'the set-up step and 11 more batches report more to do; the 12th batch ends it');
    assert.equal(await w.step(), false);
    await w.close();
    assert.deepEqual(await counts(engine), before);
  });

  it('at its end, prepares its statements on the connection it copied (cached, not run): the append, the ACK flush and its raw read', async () => {
    const e = new SqliteEngine(join(dir, 'prepare.db'), { synchronous: 'normal', checkpointMs: 0 });
    try {
      await migrate(e, MIGRATIONS);
      const before = await counts(e);
      const had = e.statementTexts();
      assert.ok(!had.raw.some((sql) => sql.includes('json_each') || sql.startsWith('WITH k(')), 'the ACK flush read is not prepared before');
      const w = new WriterWarmUp(e, { ringCapacity: 100, batches: 12 });
      while (await w.step());
      const got = e.statementTexts();
      // The read of what a flush covers, counted from the appended pointers (KNOWN in ack-writer.ts): every length of it.
      for (const n of [256, 64, 16, 4, 1]) assert.ok(got.raw.some((sql) => sql.startsWith('WITH k(') && (sql.match(/\(\?, \?, \?\)/g) ?? []).length === n), `the ACK flush's raw read of ${n} messages is cached`);
      assert.ok(got.plain.some((sql) => /^INSERT (OR FAIL )?INTO messages/i.test(sql.trim())), "the append's message insert is cached");
      assert.ok(got.plain.some((sql) => /^INSERT (OR FAIL )?INTO devices/i.test(sql.trim())), "the ACK flush's device rows are cached");
      assert.deepEqual(await counts(e), before, 'preparing ran nothing');
    } finally {
      await e.close();
    }
  });

  it('acknowledges like the gateway: segments above 0, several per device, none for a device that only sent', async () => {
    const e = new SqliteEngine(join(dir, 'acks.db'), { synchronous: 'normal', checkpointMs: 0 });
    const seen: { userId: string; deviceId: string; inboxSeq: number; segments?: { from: number; to: number }[] }[][] = [];
    try {
      await migrate(e, MIGRATIONS);
      const w = new WriterWarmUp(e, { ringCapacity: 100, batches: 8 });
      // The warm-up's store is private: watch its ACK flushes through the instance it makes.
      const step = w.step.bind(w);
      let hooked = false;
      w.step = async () => {
        const more = await step();
        const store = (w as unknown as { store: { recordAcks: (a: never) => Promise<unknown> } | null }).store;
        if (store && !hooked) {
          hooked = true;
          const record = store.recordAcks.bind(store);
          store.recordAcks = (acks: never) => {
            seen.push(structuredClone(acks));
            return record(acks);
          };
        }
        return more;
      };
      while (await w.step());
    } finally {
      await e.close();
    }
    const all = seen.flat();
    assert.ok(seen.length >= 6, 'an ACK flush per batch');
    assert.ok(all.some((a) => a.segments?.some((s) => s.from > 0)), 'segments that start above 0');
    assert.ok(all.some((a) => (a.segments?.length ?? 0) > 1), 'a device with several segments');
    assert.ok(all.some((a) => a.segments?.length === 0), 'a device that only sent: no segments');
    assert.ok(all.every((a) => Object.keys(a).join() === 'userId,deviceId,inboxSeq,segments'), "AckService's property order");
  });

  it('a store with the writer thread serves appends while the thread warms up, and its database gets none of the warm-up', async () => {
    const sdir = await mkdtemp(join(tmpdir(), 'magpie-warmup-store-'));
    const store = await openSqliteStore({ path: join(sdir, 'magpie.db'), ringCapacity: 1000, writerThread: true, searchText: searchableText });
    try {
      for (const id of ['wa', 'wb']) await store.createUser({ id, username: id, passwordHash: 'x', nickname: id, createdAt: 1 });
      // 60 appends ~25 ms apart: before, while and (with a fast machine) after the warm-up, which starts 1 s after the thread.
      for (let i = 0; i < 60; i++) {
        const [o] = await store.appendMessages([{ sender: 'wa', clientMsgId: `c${i}`, conv: directConversationId('wa', 'wb'), directMembers: ['wa', 'wb'], kind: 'text', body: { text: `m${i}` }, time: 1000 + i, id: `id${i}` }]);
        assert.ok(o?.ok);
        assert.equal(o.message.seq, i + 1);
        await new Promise((r) => setTimeout(r, 25));
      }
      const e = store.db as SqliteEngine;
      const users = await e.all<{ id: string }>('SELECT id FROM users ORDER BY id');
      assert.deepEqual(users.map((u) => u.id), ['wa', 'wb']);
      assert.equal((await e.get<{ n: number }>('SELECT count(*) AS n FROM messages'))!.n, 60);
    } finally {
      await store.close();
      await rm(sdir, { recursive: true, force: true });
    }
  });
});
