/**
 * SQLite's deferred search indexer (search/search-indexer.ts, issue 23) on a real database
 * file with the writer thread, as the server runs it: a message's document is not written in
 * its group commit but within the bound after it; a recall or edit that lands before the
 * indexer ran leaves search correct; a store closed (or killed: e2e-search-crash.test.ts)
 * between the commit and the indexing catches up from its recorded point when reopened.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../src/store/open.ts';
import type { SqlStore } from '../src/store/sql-store.ts';
import { directConversationId, type AppendRequest } from '../src/store/store.ts';
import { searchableText } from '../src/search/extract.ts';
import { SearchService } from '../src/search/search-service.ts';
import { SqlSearchStore } from '../src/search/search-store.ts';
import { SqlLifecycleStore } from '../src/lifecycle/sql-lifecycle-store.ts';
import { registerIndexLagMetrics } from '../src/search/index.ts';
import { INDEX_BATCH, INDEX_BATCH_MIN, SearchIndexer } from '../src/search/search-indexer.ts';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { Registry } from 'prom-client';
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { RetentionStore } from '../src/retention/retention-store.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function open(delayMs: number, dir?: string): Promise<{ store: SqlStore; dir: string }> {
  const d = dir ?? (await mkdtemp(join(tmpdir(), 'magpie-search-deferred-')));
  if (!dir) dirs.push(d);
  const store = await openSqliteStore({ path: join(d, 'magpie.db'), ringCapacity: 1000, writerThread: true, checkpointMs: 0, searchText: searchableText, searchIndexDelayMs: delayMs });
  return { store, dir: d };
}

let n = 0;
const text = (sender: string, to: string, body: string): AppendRequest => {
  n++;
  const b = { text: body };
  return { sender, clientMsgId: `c${n}`, conv: directConversationId(sender, to), directMembers: [sender, to], kind: 'text', body: b, bodyJson: JSON.stringify(b), time: Date.now(), id: `m-deferred-${n}` };
};

async function users(store: SqlStore, ...ids: string[]): Promise<void> {
  for (const id of ids) await store.createUser({ id, username: id, passwordHash: 'x', nickname: id, createdAt: 0 });
}

/** Reads on the search index's reader: the main file with the search file attached as `search`. */
const count = async (store: SqlStore, sql: string, params: unknown[] = []): Promise<number> => Number((await store.searchIndex!.reader.get<{ n: number | null }>(sql, params))?.n ?? 0);
const docs = (store: SqlStore, conv: string) => count(store, 'SELECT COUNT(*) AS n FROM search.search_docs WHERE conv_id = ?', [conv]);
const progress = (store: SqlStore) => count(store, 'SELECT msg_rowid AS n FROM search.search_progress');
const topRowid = (store: SqlStore) => count(store, 'SELECT MAX(rowid) AS n FROM main.messages');
/** A connection of its own to the store's files, as the index thread has it (writes only the search file). */
const sideEngine = (dir: string) => new SqliteEngine(join(dir, 'magpie.db'), { private: true, checkpointMs: 0, deferredWrites: true });

describe('sqlite: the deferred search indexer', () => {
  it('writes no document in the group commit, and every document within the bound (1 s) under a stream of commits', async () => {
    const { store } = await open(100);
    try {
      await users(store, 'a', 'b');
      const conv = directConversationId('a', 'b');
      // A first message, with the indexer's timer far from due: the commit wrote no document.
      const [first] = await store.appendMessages([text('a', 'b', 'first words')]);
      assert.ok(first?.ok);
      assert.equal(await docs(store, conv), 0, 'no document in the message commit');
      // 40 commits of 25 messages, one every ~15 ms; a poller notes when each commit's last seq is indexed.
      const waiting: { seq: number; at: number }[] = [];
      const delays: number[] = [];
      let stop = false;
      const poller = (async () => {
        while (!stop || waiting.length > 0) {
          const top = await count(store, 'SELECT MAX(seq) AS n FROM search.search_docs WHERE conv_id = ?', [conv]);
          while (waiting.length > 0 && waiting[0]!.seq <= top) delays.push(Date.now() - waiting.shift()!.at);
          if (waiting.length > 0 && Date.now() - waiting[0]!.at > 5000) break;
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      for (let i = 0; i < 40; i++) {
        const out = await store.appendMessages(Array.from({ length: 25 }, (_, j) => text(j % 2 ? 'a' : 'b', j % 2 ? 'b' : 'a', `stream ${i} ${j} 流式消息`)));
        const last = out.at(-1);
        assert.ok(last?.ok);
        waiting.push({ seq: last.message.seq, at: Date.now() });
        await new Promise((r) => setTimeout(r, 15));
      }
      stop = true;
      await poller;
      assert.equal(delays.length, 40, 'every commit was indexed');
      const worst = Math.max(...delays);
      assert.ok(worst <= 1000, `worst delay ${worst} ms`);
      assert.equal(await docs(store, conv), 1001);
      assert.equal(await progress(store), await topRowid(store), 'the catch-up point is at the last message');
    } finally {
      await store.close();
    }
  });

  it('a recall or edit right after the send (before the indexer ran) leaves search correct', async () => {
    // 60 s: the timer never fires; only the hooks' and the search's own catch-up index.
    const { store } = await open(60_000);
    try {
      await users(store, 'a', 'b');
      const conv = directConversationId('a', 'b');
      const lifecycle = new SqlLifecycleStore(store.db);
      const svc = new SearchService(new SqlSearchStore(store.db, { index: store.searchIndex! }), { syncIndex: () => store.syncSearchIndex() });
      const out = await store.appendMessages([text('a', 'b', 'pineapple cake'), text('a', 'b', 'watermelon 西瓜'), text('a', 'b', 'blueberry muffins'), text('a', 'b', 'kiwi tart')]);
      const [m1, m2, m3, m4] = out.map((o) => (o.ok ? o.message : assert.fail('stored')));
      assert.equal(await docs(store, conv), 0, 'nothing indexed yet');
      // Rows changed before the indexer ran, their hooks still on their way: the indexer reads each message as it is now.
      assert.ok(await lifecycle.edit(conv, m3!.seq, JSON.stringify(m3!.body), { text: 'lemon pie', edited: 1 }, 'blueberry muffins', 1, false, []));
      assert.ok(await lifecycle.recall(conv, m4!.seq, 'text', { by: 'a', at: 1, kind: 'text' }, []));
      // As the lifecycle service does it: the store's row first, then the search hook (which catches the indexer up first).
      assert.ok(await lifecycle.edit(conv, m1!.seq, JSON.stringify(m1!.body), { text: 'mango sticky rice', edited: 1 }, 'pineapple cake', 1, false, []));
      await svc.updateMessageText(conv, m1!.seq, 'text', { text: 'mango sticky rice' });
      assert.ok(await lifecycle.recall(conv, m2!.seq, 'text', { by: 'a', at: 1, kind: 'text' }, []));
      await svc.removeMessage(conv, m2!.seq);
      const find = async (q: string) => (await svc.search('b', { query: q })).hits.map((h) => h.seq);
      assert.deepEqual(await find('pineapple'), []);
      assert.deepEqual(await find('mango sticky'), [m1!.seq]);
      assert.deepEqual(await find('西瓜'), []);
      assert.deepEqual(await find('watermelon'), []);
      assert.deepEqual(await find('blueberry'), []);
      assert.deepEqual(await find('lemon pie'), [m3!.seq]);
      assert.deepEqual(await find('kiwi'), []);
      const rows = await store.searchIndex!.reader.all<{ seq: number; body: string }>('SELECT seq, body FROM search.search_docs WHERE conv_id = ? ORDER BY seq', [conv]);
      assert.deepEqual(rows.map((r) => [Number(r.seq), r.body]), [[m1!.seq, 'mango sticky rice'], [m3!.seq, 'lemon pie']]);
      // Delete for me before the indexer ran: hidden for that user only.
      const [m5] = await store.appendMessages([text('a', 'b', 'secret recipe')]);
      assert.ok(m5?.ok);
      await svc.hideForUser('a', conv, m5.message.seq);
      assert.deepEqual((await svc.search('a', { query: 'secret recipe' })).hits.map((h) => h.seq), []);
      assert.deepEqual(await find('secret recipe'), [m5.message.seq]);
    } finally {
      await store.close();
    }
  });

  it('a store closed between the commit and the indexing catches up from its recorded point when reopened', async () => {
    const first = await open(60_000);
    let store = first.store;
    try {
      await users(store, 'a', 'b');
      const conv = directConversationId('a', 'b');
      const [o1] = await store.appendMessages([text('a', 'b', 'indexed before the stop')]);
      assert.ok(o1?.ok);
      await store.syncSearchIndex();
      const point = await progress(store);
      assert.equal(point, await topRowid(store));
      await store.appendMessages(Array.from({ length: 30 }, (_, i) => text('b', 'a', `after the point ${i} 断点`)));
      assert.equal(await docs(store, conv), 1);
      assert.equal(await progress(store), point, 'the point has not moved');
      await store.close();
      ({ store } = await open(60_000, first.dir));
      assert.equal(await docs(store, conv), 1, 'nothing was indexed at close');
      await store.syncSearchIndex();
      assert.equal(await docs(store, conv), 31);
      assert.equal(await progress(store), await topRowid(store));
      // Nothing twice: a second run finds nothing to do.
      assert.equal(await store.indexSearchBatch(), false);
      assert.equal(await count(store, 'SELECT COUNT(*) AS n FROM search.search_fts WHERE search_fts MATCH ?', ['"after the point"']), 30);
    } finally {
      await store.close();
    }
  });

  it('reports its lag (messages, age of the oldest) on the lag gauges, and none once caught up', async () => {
    const { store } = await open(60_000);
    try {
      await users(store, 'a', 'b');
      const registry = new Registry();
      let reads = 0;
      registerIndexLagMetrics(registry, () => {
        reads++;
        return store.searchIndexLag()!;
      });
      const gauges = async () => {
        const text = await registry.metrics();
        const value = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1]);
        return { messages: value('magpie_search_index_lag_messages'), seconds: value('magpie_search_index_lag_seconds') };
      };
      assert.deepEqual(await gauges(), { messages: 0, seconds: 0 }, 'nothing committed, nothing behind');
      await store.syncSearchIndex();
      // Three messages stamped 5 s ago and two now: not indexed (the timer is a minute away).
      const old = Array.from({ length: 3 }, (_, i) => ({ ...text('a', 'b', `old ${i}`), time: Date.now() - 5000 }));
      await store.appendMessages(old);
      await store.appendMessages([text('b', 'a', 'new 0'), text('b', 'a', 'new 1')]);
      const behind = await gauges();
      assert.equal(behind.messages, 5);
      assert.ok(behind.seconds >= 5 && behind.seconds < 30, `the oldest waits ~5 s: ${behind.seconds}`);
      assert.equal(reads, 2, 'one read per scrape for both gauges');
      await store.syncSearchIndex();
      assert.deepEqual(await gauges(), { messages: 0, seconds: 0 });
      // More than a batch behind: counted whole, aged by its oldest.
      await store.appendMessages(Array.from({ length: 2100 }, (_, i) => ({ ...text('a', 'b', `bulk ${i}`), time: Date.now() - 2000 })));
      const bulk = await gauges();
      assert.equal(bulk.messages, 2100);
      assert.ok(bulk.seconds >= 2 && bulk.seconds < 30, `${bulk.seconds}`);
      await store.syncSearchIndex();
      assert.deepEqual(await gauges(), { messages: 0, seconds: 0 });
    } finally {
      await store.close();
    }
  });

  it('sizes each batch after the first by the last one\'s time per message (a slow index gets short transactions)', async () => {
    const { store, dir } = await open(60_000);
    const db = sideEngine(dir);
    try {
      await users(store, 'a', 'b');
      for (let i = 0; i < 3; i++) await store.appendMessages(Array.from({ length: 1000 }, (_, j) => text('a', 'b', `sized ${i}-${j}`)));
      // Indexers of their own on a connection of their own (the index thread's timer waits a minute).
      const hurried = new SearchIndexer(db, searchableText, INDEX_BATCH, 1e-6);
      let before = await progress(store);
      assert.equal(await hurried.runBatch(), true);
      assert.equal((await progress(store)) - before, INDEX_BATCH, 'the first batch is a full one');
      before = await progress(store);
      assert.equal(await hurried.runBatch(), true);
      assert.equal((await progress(store)) - before, INDEX_BATCH_MIN, 'then as few as take the target time, at least the minimum');
      const patient = new SearchIndexer(db, searchableText, 100, 1e6);
      before = await progress(store);
      assert.equal(await patient.runBatch(), true);
      assert.equal(await patient.runBatch(), true);
      assert.equal((await progress(store)) - before, 200, 'a fast index keeps full batches');
      await store.syncSearchIndex();
      assert.equal(await docs(store, directConversationId('a', 'b')), 3000, 'every message indexed once');
    } finally {
      await db.close();
      await store.close();
    }
  });

  it('a batch asked for a target time of its own is sized by it', async () => {
    const { store, dir } = await open(60_000);
    const db = sideEngine(dir);
    try {
      await users(store, 'a', 'b');
      for (let i = 0; i < 3; i++) await store.appendMessages(Array.from({ length: 1000 }, (_, j) => text('a', 'b', `slice ${i}-${j}`)));
      const indexer = new SearchIndexer(db, searchableText, 1000, 1e6);
      let before = await progress(store);
      assert.equal(await indexer.runBatch(1e-6), true);
      assert.equal((await progress(store)) - before, 1000, 'untimed: a full batch whatever the target');
      before = await progress(store);
      assert.equal(await indexer.runBatch(1e-6), true);
      assert.equal((await progress(store)) - before, INDEX_BATCH_MIN, 'a tiny target: the minimum');
      before = await progress(store);
      assert.equal(await indexer.runBatch(), true);
      assert.equal((await progress(store)) - before, 1000, 'the indexer\'s own (patient) target again: a full batch');
      await store.syncSearchIndex();
      assert.equal(await docs(store, directConversationId('a', 'b')), 3000, 'every message indexed once');
    } finally {
      await db.close();
      await store.close();
    }
  });

  it('a catch-up larger than a batch goes in several transactions, each a full batch but the last', async () => {
    const { store } = await open(60_000);
    try {
      await users(store, 'a', 'b');
      for (let i = 0; i < 5; i++) await store.appendMessages(Array.from({ length: 1000 }, (_, j) => text('a', 'b', `bulk ${i}-${j}`)));
      const before = await progress(store);
      assert.equal(await store.indexSearchBatch(), true, 'more wait after the first batch');
      assert.equal((await progress(store)) - before, 2048);
      await store.syncSearchIndex();
      assert.equal(await docs(store, directConversationId('a', 'b')), 5000);
    } finally {
      await store.close();
    }
  });
});

describe('sqlite: the search index in a file of its own (issue 23)', () => {
  /** The search file as a process that has the store open sees it (read only; WAL readers never block). */
  const inspect = <T>(dir: string, fn: (db: Database.Database) => T): T => {
    const db = new Database(join(dir, 'magpie.db'), { readonly: true });
    try {
      db.prepare('ATTACH DATABASE ? AS search').run(join(dir, 'magpie.search.db'));
      return fn(db);
    } finally {
      db.close();
    }
  };
  const state = (dir: string) =>
    inspect(dir, (db) => db.prepare('SELECT (SELECT msg_rowid FROM search.search_progress) AS at, (SELECT MAX(rowid) FROM main.messages) AS top, (SELECT COUNT(*) FROM search.search_docs) AS docs, (SELECT COUNT(*) FROM search.search_fts_docsize) AS fts').get() as { at: number; top: number; docs: number; fts: number });

  it('the documents and the catch-up point are in <name>.search.db; the main file holds nothing of the index', async () => {
    const { store, dir } = await open(60_000);
    try {
      await users(store, 'a', 'b');
      await store.appendMessages([text('a', 'b', 'in a file of its own')]);
      await store.syncSearchIndex();
      assert.ok(existsSync(join(dir, 'magpie.search.db')));
      assert.deepEqual(
        inspect(dir, (db) => db.prepare("SELECT name FROM main.sqlite_master WHERE name LIKE 'search%' ORDER BY name").all()),
        [{ name: 'search_hidden' }, { name: 'search_purges' }],
        'the main file keeps what is not derived (delete for me) and the purge log',
      );
      assert.deepEqual(state(dir), { at: await topRowid(store), top: await topRowid(store), docs: 1, fts: 1 });
    } finally {
      await store.close();
    }
  });

  it('a missing search file is rebuilt: created empty at the start and re-indexed from rowid 0', async () => {
    const first = await open(60_000);
    let store = first.store;
    try {
      await users(store, 'a', 'b');
      for (let i = 0; i < 3; i++) await store.appendMessages(Array.from({ length: 100 }, (_, j) => text('a', 'b', `rebuilt ${i}-${j} 重建`)));
      await store.syncSearchIndex();
      await store.close();
      for (const f of ['magpie.search.db', 'magpie.search.db-wal', 'magpie.search.db-shm']) await rm(join(first.dir, f), { force: true });
      ({ store } = await open(60_000, first.dir));
      assert.equal(await progress(store), 0, 'a new file starts at rowid 0');
      const svc = new SearchService(new SqlSearchStore(store.db, { index: store.searchIndex!, scanLimit: -1 }), { syncIndex: () => store.syncSearchIndex() });
      assert.equal((await svc.search('b', { query: '重建', limit: 500 })).hits.length, 300);
      assert.equal(await docs(store, directConversationId('a', 'b')), 300);
      assert.equal(await progress(store), await topRowid(store));
    } finally {
      await store.close();
    }
  });

  it('a main file restored from an older copy while the search file was kept: the index starts over, and messages sent after the restore are found', async () => {
    const first = await open(60_000);
    const dir = first.dir;
    let store = first.store;
    try {
      await users(store, 'a', 'b');
      await store.appendMessages(Array.from({ length: 10 }, (_, i) => text('a', 'b', `before the copy ${i}`)));
      await store.syncSearchIndex();
      await store.close(); // the last connection checkpoints: magpie.db is whole
      await copyFile(join(dir, 'magpie.db'), join(dir, 'older.db'));
      ({ store } = await open(60_000, dir));
      await store.appendMessages(Array.from({ length: 10 }, (_, i) => text('a', 'b', `lost with the restore ${i}`)));
      await store.syncSearchIndex();
      assert.equal(await progress(store), 20);
      await store.close();
      // The operator restores magpie.db by hand and keeps magpie.search.db (its point: 20).
      await rm(join(dir, 'magpie.db-wal'), { force: true });
      await rm(join(dir, 'magpie.db-shm'), { force: true });
      await copyFile(join(dir, 'older.db'), join(dir, 'magpie.db'));
      ({ store } = await open(60_000, dir));
      const [o] = await store.appendMessages([text('b', 'a', 'sent after the restore')]);
      assert.ok(o?.ok);
      const svc = new SearchService(new SqlSearchStore(store.db, { index: store.searchIndex! }), { syncIndex: () => store.syncSearchIndex() });
      assert.deepEqual((await svc.search('a', { query: 'after the restore' })).hits.map((h) => h.seq), [o.message.seq], 'its rowid (11) is below the old point, yet it is indexed');
      assert.deepEqual((await svc.search('a', { query: 'lost with the restore' })).hits, [], 'no document of a message the restored file does not have');
      assert.equal((await svc.search('a', { query: 'before the copy', limit: 50 })).hits.length, 10);
      assert.equal(await progress(store), await topRowid(store));
    } finally {
      await store.close();
    }
  });

  it('a process killed (kill -9) in the middle of a catch-up resumes exactly where its last committed batch stopped', async () => {
    const first = await open(60_000);
    const dir = first.dir;
    let store = first.store;
    const N = 10_000;
    try {
      await users(store, 'a', 'b');
      for (let i = 0; i < N / 1000; i++) await store.appendMessages(Array.from({ length: 1000 }, (_, j) => text(j % 2 ? 'a' : 'b', j % 2 ? 'b' : 'a', `killed ${i}-${j} 中断`)));
      assert.equal(await progress(store), 0, 'nothing indexed yet');
      await store.close();
      // A second process catches up; it is killed as soon as a batch (not all) has committed.
      const code = `
        import { openSqliteStore } from ${JSON.stringify(new URL('../src/store/open.ts', import.meta.url).href)};
        import { searchableText } from ${JSON.stringify(new URL('../src/search/extract.ts', import.meta.url).href)};
        const store = await openSqliteStore({ path: ${JSON.stringify(join(dir, 'magpie.db'))}, ringCapacity: 1000, writerThread: true, checkpointMs: 0, searchText: searchableText, searchIndexDelayMs: 60000 });
        process.stdout.write('open\\n');
        for (;;) await store.syncSearchIndex();
      `;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      let seen: { at: number; top: number } | null = null;
      for (let i = 0; i < 3000 && !seen; i++) {
        try {
          const s = state(dir);
          if (s.at > 0 && s.at < s.top) seen = s;
        } catch {
          // The search file is not there yet.
        }
        if (!seen) await new Promise((r) => setTimeout(r, 2));
      }
      child.kill('SIGKILL');
      await exited;
      assert.ok(seen, 'the kill came in the middle of the catch-up');
      const killed = state(dir);
      assert.ok(killed.at > 0 && killed.at < N, `killed mid catch-up: point ${killed.at} of ${N}`);
      assert.equal(killed.docs, killed.at, 'the committed batches: exactly the messages up to the point, each once');
      assert.equal(killed.fts, killed.at);
      ({ store } = await open(60_000, dir));
      assert.equal(await progress(store), killed.at, 'the point as the last committed batch left it');
      await store.syncSearchIndex();
      const done = state(dir);
      assert.deepEqual(done, { at: N, top: N, docs: N, fts: N }, 'every message indexed, none twice');
      assert.equal(await count(store, 'SELECT COUNT(*) AS n FROM search.search_fts WHERE search_fts MATCH ?', ['"killed"']), N);
    } finally {
      await store.close();
    }
  });

  it('a purge of the newest messages lowers the catch-up point (their rowids are taken again), in the order the indexer applies it', async () => {
    const { store } = await open(60_000);
    try {
      await users(store, 'a', 'b', 'c');
      const ab = directConversationId('a', 'b');
      const ac = directConversationId('a', 'c');
      await store.appendMessages([text('a', 'b', 'kept one'), text('a', 'b', 'kept two')]);
      const old = Date.now() - 10 * 24 * 3600 * 1000;
      await store.appendMessages(Array.from({ length: 5 }, (_, i) => ({ ...text('a', 'c', `purged ${i}`), time: old })));
      await store.syncSearchIndex();
      const top = await topRowid(store);
      assert.equal(await progress(store), top);
      // The whole a–c chat is purged: the five newest rows go (their rowids are free again).
      const rs = new RetentionStore(store.db);
      const r = await rs.purgeBatch(ac, Number.MAX_SAFE_INTEGER, Date.now() - 24 * 3600 * 1000, 100, { holder: 'n', now: Date.now(), ttlMs: 60_000 });
      assert.ok(!r.lost && r.purged === 5);
      assert.equal(await topRowid(store), top - 5);
      // Before the indexer applied the purge: new messages take the freed rowids.
      await store.appendMessages(Array.from({ length: 3 }, (_, i) => text('b', 'a', `after the purge ${i}`)));
      assert.equal(await topRowid(store), top - 2, 'rowids below the old point');
      assert.equal(await docs(store, ac), 5, 'the purged documents wait for the indexer');
      const svc = new SearchService(new SqlSearchStore(store.db, { index: store.searchIndex! }), { syncIndex: () => store.syncSearchIndex() });
      assert.deepEqual((await svc.search('a', { query: 'purged' })).hits, [], 'hidden at once (conv_purge), then dropped');
      assert.equal(await docs(store, ac), 0);
      assert.deepEqual((await svc.search('a', { query: 'after the purge' })).hits.map((h) => h.seq).sort(), [3, 4, 5], 'the messages on reused rowids are indexed');
      assert.equal(await docs(store, ab), 5);
      assert.equal(await progress(store), await topRowid(store));
      assert.equal(Number(await store.searchIndex!.appliedPurges()), 1);
      assert.equal(await rs.pruneSearchPurges(1), 1, 'the applied log row can go');
    } finally {
      await store.close();
    }
  });
});
