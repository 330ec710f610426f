/**
 * CPU of SQLite's deferred search indexer per message (search/search-indexer.ts), in-process:
 * N direct messages of the saturated 1:1 bench's shape are committed, then indexed from a fresh
 * search file by SearchIndexer in its default batches, alternately with the server's extract
 * (searchableText: plain text bodies read in SQL, textSql) and with a copy of it (every body
 * through the JavaScript function, as before issue 23's wr23) — thread CPU of this process.
 *
 *   node --import tsx bench/search-index-text.ts [--messages 100000] [--rounds 3]
 */
import { mkdtempSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { directConversationId, openSqliteStore, searchableText, type AppendRequest } from '@magpie/server';
import { SearchIndexer, SqliteEngine } from '@magpie/server/testing';

const { values: a } = parseArgs({ options: { messages: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '3' } } });
const N = Number(a.messages);
const keepAlive = setInterval(() => {}, 1000); // the store's timers are unref'd
const dir = mkdtempSync(join(tmpdir(), 'magpie-index-text-'));
const path = join(dir, 'magpie.db');
const store = await openSqliteStore({ path, ringCapacity: 1000, writerThread: false, checkpointMs: 0, searchText: searchableText, searchIndexDelayMs: 3_600_000 });
const uid = (i: number) => `u${String(i).padStart(9, '0')}`;
for (let i = 0; i < 32; i++) await store.createUser({ id: uid(i), username: uid(i), passwordHash: 'x', nickname: 'x', createdAt: 0 });
for (let b = 0; b < N / 125; b++) {
  const batch: AppendRequest[] = [];
  for (let j = 0; j < 125; j++) {
    const s = (j % 16) * 2;
    const [from, to] = j % 2 === 0 ? [uid(s), uid(s + 1)] : [uid(s + 1), uid(s)];
    const body = { text: `hello ${b} ${j} some text` };
    batch.push({ sender: from, clientMsgId: `c${b}-${j}`, conv: directConversationId(from, to), directMembers: [from, to], kind: 'text', body, bodyJson: JSON.stringify(body), time: Date.now(), id: `m${b}-${j}` });
  }
  await store.appendMessages(batch);
}
await store.close();
rmSync(join(dir, 'magpie.search.db'), { force: true });
copyFileSync(path, join(dir, 'base.db'));
const copy: typeof searchableText = (kind, body) => searchableText(kind, body);
for (let r = 0; r < Number(a.rounds); r++) {
  for (const [name, extract] of [['sql', searchableText], ['js', copy]] as const) {
    for (const f of ['magpie.db', 'magpie.db-wal', 'magpie.db-shm', 'magpie.search.db', 'magpie.search.db-wal', 'magpie.search.db-shm']) rmSync(join(dir, f), { force: true });
    copyFileSync(join(dir, 'base.db'), path);
    const db = new SqliteEngine(path, { private: true, checkpointMs: 0, deferredWrites: true });
    const indexer = new SearchIndexer(db, extract);
    const t0 = process.cpuUsage();
    const w0 = performance.now();
    while (await indexer.runBatch());
    const c = process.cpuUsage(t0);
    console.log(`round ${r + 1} ${name}: ${((c.user + c.system) / N).toFixed(2)} µs CPU per message (user ${(c.user / N).toFixed(2)}), wall ${(((performance.now() - w0) * 1000) / N).toFixed(2)} µs`);
    await db.close();
  }
}
rmSync(dir, { recursive: true, force: true });
clearInterval(keepAlive);
