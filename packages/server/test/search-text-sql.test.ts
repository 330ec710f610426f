/**
 * SQLite's deferred search indexer reads a plain text message's searchable text in SQL
 * (search/search-indexer.ts textSql, issue 23) and calls into JavaScript (extract.ts's
 * searchableText of JSON.parse(body)) for every other body. Both must give the same text for
 * every body: a differential test over random and hand-picked bodies, and the indexer on a real
 * store calling no JavaScript for bodies as the send path writes them (JSON.stringify).
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { searchableText } from '../src/search/extract.ts';
import { SearchIndexer, textSql } from '../src/search/search-indexer.ts';
import { openSqliteStore } from '../src/store/open.ts';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { directConversationId, type AppendRequest } from '../src/store/store.ts';
import { rng } from './seeded-random.ts';

/** What the indexer's function gives (search-indexer.ts: a body that is not JSON has no text). */
function extracted(kind: string, body: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return '';
  }
  return searchableText(kind, parsed);
}

const POOL = ['a', 'Z', ' ', '"', '\\', '/', '\n', '\t', '\r', '\b', '\f', '\u0000', '\u0001', '\u001f', '\u007f', 'é', '中', '文', '\u2028', '\u2029', '\ufeff', '😀', '\ud800', '\udc00', '{', '}', ',', ':', "'", '%', '_'];

it('sqlite: the indexer\'s text in SQL equals searchableText(JSON.parse(body)) for every body, and calls JavaScript only off the plain text form', () => {
  const db = new Database(':memory:');
  let calls = 0;
  db.function('f', { deterministic: true }, (kind: unknown, body: unknown) => {
    calls++;
    return typeof kind === 'string' && typeof body === 'string' ? extracted(kind, body) : '';
  });
  const stmt = db.prepare(`SELECT ${textSql('f')} AS t FROM (SELECT ? AS kind, ? AS body)`);
  const text = (kind: string, body: string): unknown => (stmt.get(kind, body) as { t: unknown }).t;
  // The reference as the indexer stored it before: the function's result as SQLite holds it.
  const viaFunction = db.prepare('SELECT f(kind, body) AS t FROM (SELECT ? AS kind, ? AS body)');
  const reference = (kind: string, body: string): unknown => {
    const c = calls;
    const t = (viaFunction.get(kind, body) as { t: unknown }).t;
    calls = c;
    return t;
  };
  const rand = rng(23);
  // Bodies as the send path writes them: JSON.stringify({ text }), any characters.
  for (let i = 0; i < 3000; i++) {
    let s = '';
    for (let j = Math.floor(rand() * 24); j > 0; j--) s += POOL[Math.floor(rand() * POOL.length)]!;
    const body = JSON.stringify({ text: s });
    const before = calls;
    const got = text('text', body);
    assert.equal(got, reference('text', body), JSON.stringify(body));
    if (!/[\ud800-\udfff]/.test(s.replace(/\ud83d\ude00/g, ''))) assert.equal(got, s);
    // JSON.stringify escapes lone surrogates and control characters (\uXXXX): those bodies go through JavaScript.
    if (!body.includes('\\u')) assert.equal(calls, before, `no call into JavaScript for ${JSON.stringify(body)}`);
  }
  // Anything else: the same text as the function's (through it, or through SQL when it is the plain form).
  const others: [string, string][] = [
    ['text', '{"text": "spaced"}'],
    ['text', '{"text":"a","text":"b"}'],
    ['text', '{"text":"a","x":1}'],
    ['text', '{"x":1,"text":"a"}'],
    ['text', '{"text":5}'],
    ['text', '{"text":null}'],
    ['text', '{"text":true}'],
    ['text', '{"text":["a"]}'],
    ['text', '{"text":{"text":"a"}}'],
    ['text', '{"text":"\\u0041bc"}'],
    ['text', '{"text":"\\ud800"}'],
    ['text', '{"text":"\\ud83d\\ude00"}'],
    ['text', '{"text":"\\/"}'],
    ['text', '{text:"json5"}'],
    ["text", "{'text':'json5'}"],
    ['text', '{"text":"a",}'],
    ['text', '{"text":"unterminated"'],
    ['text', '{"text":"a"} '],
    ['text', ' {"text":"a"}'],
    ['text', '[1,2]'],
    ['text', '"text"'],
    ['text', 'null'],
    ['text', ''],
    ['text', 'not json'],
    ['image', '{"caption":"a cat","text":"no"}'],
    ['image', '{"text":"not a caption"}'],
    ['file', '{"name":"report.pdf"}'],
    ['location', '{"name":"Home","address":"1 Main St"}'],
    ['redpacket', '{"greeting":"good luck"}'],
    ['system', '{"text":"a notice"}'],
    ['Text', '{"text":"case"}'],
    ['voice', '{"text":"no"}'],
  ];
  for (const [kind, body] of others) assert.equal(text(kind, body), reference(kind, body), `${kind} ${body}`);
  // The plain form with no \u escape takes the SQL path.
  const before = calls;
  const plain = 'plain "quoted" \\ / 中文 😀 \n\t';
  assert.equal(text('text', JSON.stringify({ text: plain })), plain);
  assert.equal(calls, before);
  db.close();
});

it('sqlite: the deferred indexer on a real store calls no JavaScript for text messages as sent, and indexes them all', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'magpie-search-text-sql-'));
  const store = await openSqliteStore({ path: join(dir, 'magpie.db'), ringCapacity: 1000, writerThread: true, checkpointMs: 0, searchText: searchableText, searchIndexDelayMs: 600_000 });
  const db = new SqliteEngine(join(dir, 'magpie.db'), { private: true, checkpointMs: 0, deferredWrites: true });
  try {
    for (const id of ['a', 'b']) await store.createUser({ id, username: id, passwordHash: 'x', nickname: id, createdAt: 0 });
    const batch: AppendRequest[] = [];
    for (let i = 0; i < 300; i++) {
      const kind = i % 10 === 9 ? 'image' : 'text';
      const body = kind === 'text' ? { text: `needle ${i} "quoted" \\ 中文 😀` } : { caption: `needle caption ${i}` };
      batch.push({ sender: 'a', clientMsgId: `t${i}`, conv: directConversationId('a', 'b'), directMembers: ['a', 'b'], kind, body, bodyJson: JSON.stringify(body), time: Date.now(), id: `m-text-sql-${i}` });
    }
    for (const o of await store.appendMessages(batch)) assert.ok(o.ok);
    let calls = 0;
    const define = db.defineFunction.bind(db);
    db.defineFunction = (name, fn) => define(name, (kind: unknown, body: unknown) => (calls++, fn(kind, body)));
    const indexer = new SearchIndexer(db, searchableText, 1000, 1e6);
    assert.equal(await indexer.runBatch(), false);
    assert.equal(calls, 30, 'only the 30 image messages went through JavaScript');
    const docs = await db.all<{ seq: number; body: string }>('SELECT seq, body FROM search.search_docs ORDER BY seq');
    assert.equal(docs.length, 300);
    for (const d of docs) {
      const i = Number(d.seq) - 1;
      assert.equal(d.body, i % 10 === 9 ? `needle caption ${i}` : `needle ${i} "quoted" \\ 中文 😀`);
    }
  } finally {
    await db.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
