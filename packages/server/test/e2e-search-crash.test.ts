/**
 * SQLite's deferred search indexer across a kill -9 of the real server (issue 23): messages
 * ACKed (durable) but not yet indexed when the process dies are indexed by the catch-up at the
 * next start, from the recorded point (search_progress, in the search file), with no search needed to trigger it;
 * a message recalled before the crash stays out of the index. The lag gauges on /metrics show
 * the unindexed messages before the kill and none after the catch-up.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startServer, registerAndLogin, api, RawClient, sleep, type ServerProcess } from './harness.ts';

describe('search: kill -9 between the durable commit and the deferred indexing', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'magpie-search-kill-'));
  let srv: ServerProcess | undefined;
  after(async () => {
    await srv?.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** The database as the server left it (read only; WAL readers never block the server). */
  const inspect = <T>(fn: (db: Database.Database) => T): T => {
    const db = new Database(join(dataDir, 'magpie.db'), { readonly: true });
    // The search index's own file (search/sqlite-search-db.ts): search_docs and search_progress resolve to it.
    db.prepare('ATTACH DATABASE ? AS search').run(join(dataDir, 'magpie.search.db'));
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };
  const docs = (conv: string) => inspect((db) => (db.prepare('SELECT seq, body FROM search_docs WHERE conv_id = ? ORDER BY seq').all(conv) as { seq: number; body: string }[]).map((r) => `${r.seq}:${r.body}`));
  const point = () => inspect((db) => db.prepare('SELECT (SELECT msg_rowid FROM search_progress) AS at, (SELECT MAX(rowid) FROM messages) AS top').get() as { at: number; top: number });

  /** magpie_search_index_lag_messages / _seconds as the server's /metrics shows them. */
  const lagMetrics = async (): Promise<{ messages: number; seconds: number }> => {
    const text = await (await fetch(`${srv!.url}/metrics`)).text();
    const value = (name: string) => {
      const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text);
      assert.ok(m, `${name} is on /metrics`);
      return Number(m[1]);
    };
    return { messages: value('magpie_search_index_lag_messages'), seconds: value('magpie_search_index_lag_seconds') };
  };

  it('the next start indexes every ACKed message the crash left unindexed; a recall before it stays out', async () => {
    // The indexer's timer is far away (60 s): only a search, a lifecycle hook or the start's catch-up indexes.
    srv = await startServer({ dataDir, env: { MAGPIE_SEARCH_INDEX_DELAY_MS: '60000' } });
    const a = await registerAndLogin(srv.url);
    const b = await registerAndLogin(srv.url);
    const { client } = await RawClient.connect(srv.wsUrl, a.token);
    const send = (text: string, id: string) => client.request({ type: 'send', clientMsgId: id, to: b.userId, kind: 'text', body: { text } });
    const gone = (await send('ephemeral 短暂 words', 'r1')).message;
    const conv: string = gone.conv;
    // The recall's index hook catches the indexer up first, then drops the document.
    const recall = await api(srv.url, 'POST', `/api/conversations/${encodeURIComponent(conv)}/messages/${gone.seq}/recall`, undefined, a.token);
    assert.equal(recall.status, 200, JSON.stringify(recall.body));
    // The hook runs after the recall's answer: wait for its catch-up (the point reaches the last
    // message, the recall's event included), then for the drop. (Waiting for no document alone
    // passed at once — the message was not indexed yet — and the catch-up then moved the point
    // past the messages below: CI on a loaded machine.)
    for (let i = 0; i < 200 && point().at !== point().top; i++) await sleep(50);
    assert.equal(point().at, point().top, "the recall's hook caught the indexer up");
    for (let i = 0; i < 50 && docs(conv).length > 0; i++) await sleep(50);
    assert.deepEqual(docs(conv), [], 'the recalled message is not indexed');
    const caughtUp = point();
    // Ten messages ACKed: durable, not indexed.
    const acked: number[] = [];
    for (let i = 0; i < 10; i++) acked.push((await send(`crashproof ${i} 断电之后`, `k${i}`)).message.seq);
    assert.deepEqual(docs(conv), [], 'the commits wrote no document');
    assert.ok(point().top > caughtUp.at && point().at === caughtUp.at, 'the catch-up point is behind the messages');
    // The lag gauges on /metrics say so: the ten messages (an upper bound), the oldest of them not searchable for a while.
    await sleep(300);
    const lagged = await lagMetrics();
    assert.ok(lagged.messages >= 10 && lagged.messages === point().top - point().at, `lag in messages: ${lagged.messages}`);
    assert.ok(lagged.seconds >= 0.3, `lag in seconds: ${lagged.seconds}`);
    client.close();
    await srv.kill('SIGKILL');
    assert.deepEqual(docs(conv), [], 'nothing indexed at the kill');

    // The next start catches up in the background: the documents appear without any search.
    srv = await startServer({ dataDir });
    const started = Date.now();
    const want = acked.map((seq, i) => `${seq}:crashproof ${i} 断电之后`);
    for (let i = 0; i < 100 && docs(conv).length < want.length; i++) await sleep(50);
    assert.deepEqual(docs(conv), want, `indexed by the catch-up at start (${Date.now() - started} ms after the server was up)`);
    const p = point();
    assert.equal(p.at, p.top, 'the catch-up point reached the last message');
    assert.deepEqual(await lagMetrics(), { messages: 0, seconds: 0 }, 'no lag once caught up');
    const found = await api(srv.url, 'GET', `/api/search?q=${encodeURIComponent('断电之后')}`, undefined, b.token);
    assert.equal(found.status, 200, JSON.stringify(found.body));
    assert.deepEqual((found.body.hits as { seq: number }[]).map((h) => h.seq).sort((x, y) => x - y), acked);
    const none = await api(srv.url, 'GET', `/api/search?q=${encodeURIComponent('ephemeral')}`, undefined, b.token);
    assert.deepEqual(none.body.hits, []);
  });
});
