/**
 * The retention store on both engines: the purge lease (one holder; renewal; takeover only
 * after it lapses; a batch of a node that lost it deletes nothing), batches that purge a
 * prefix of the conversation (stopping at the first message inside the retention), side
 * rows and inbox pointers going with their messages, and per-user rows after the batches.
 * PostgreSQL skips with a message when unreachable (fails with MAGPIE_REQUIRE_SERVICES=1).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { SqlEngine } from '../src/db/engine.ts';
import { SqlStore } from '../src/store/sql-store.ts';
import { directConversationId } from '../src/store/store.ts';
import { RetentionStore } from '../src/retention/retention-store.ts';
import type { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { LocalSearchIndex } from '../src/search/sqlite-search-db.ts';
import { searchableText } from '../src/search/extract.ts';
import { pgDb, sqliteDb } from './sql-engines.ts';
import { freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

const DAY = 24 * 3600 * 1000;
const NOW = Date.now();
const pgSkip = await pgUnavailable();

function suite(name: string, open: () => Promise<{ db: SqlEngine; drop: () => Promise<void> }>, skip: string | false) {
  describe(`retention store (${name})`, { skip }, () => {
    let db: SqlEngine;
    let drop: () => Promise<void>;
    let store: SqlStore;
    let rs: RetentionStore;
    /** SQLite: the search file (attached to the engine's connection) and its indexer, which applies the purges logged for it. */
    let index: LocalSearchIndex | undefined;
    let docsTable = 'search_docs';
    const conv = directConversationId('ua', 'ub');
    const count = async (sql: string, params: unknown[] = []) => Number((await db.get<{ n: number | string }>(sql, params))!.n);

    before(async () => {
      ({ db, drop } = await open());
      store = new SqlStore(db, { ringCapacity: 1000 });
      rs = new RetentionStore(db);
      if (db.dialect === 'sqlite') {
        index = new LocalSearchIndex(db as SqliteEngine, searchableText);
        docsTable = 'search.search_docs';
      }
      for (const id of ['ua', 'ub']) await store.createUser({ id, username: id, passwordHash: 'x', nickname: id, createdAt: NOW });
      // Ten messages: 1–7 old, 8 recent, 9 old again (sent with a skewed clock), 10 recent.
      const old = (s: number) => [1, 2, 3, 4, 5, 6, 7, 9].includes(s);
      for (let s = 1; s <= 10; s++) {
        const out = await store.appendMessages([
          { sender: s % 2 ? 'ua' : 'ub', clientMsgId: `c${s}`, conv, directMembers: ['ua', 'ub'], kind: 'text', body: { text: `m${s}` }, time: old(s) ? NOW - 40 * DAY + s : NOW - 1000 + s, id: `msg${s}` },
        ]);
        assert.equal(out[0]!.ok, true);
      }
      // Side rows for message 2 (purged) and 9 (kept).
      for (const s of [2, 9]) {
        await db.run('INSERT INTO lifecycle_reactions (conv_id, seq, emoji, user_id, at) VALUES (?, ?, ?, ?, ?)', [conv, s, '👍', 'ub', NOW]);
        await db.run('INSERT INTO lifecycle_edits (conv_id, seq, version, text, until_at) VALUES (?, ?, 1, ?, ?)', [conv, s, 'before', NOW]);
        await db.run('INSERT INTO receipt_messages (conv, seq, sender, epoch, bitmap, read_count) VALUES (?, ?, ?, 0, ?, 0)', [conv, s, 'ua', Buffer.alloc(1)]);
        await db.run(`INSERT INTO ${docsTable} (conv_id, seq, sender_id, kind, time, body) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (conv_id, seq) DO NOTHING`, [conv, s, 'ua', 'text', NOW, `m${s}`]);
        await db.run('INSERT INTO media_refs (upload_id, conv, message_id, created_at) VALUES (?, ?, ?, ?)', [`up${s}`, conv, `msg${s}`, NOW]);
        await db.run('INSERT INTO group_change_users (conv_id, msg_id, user_id) VALUES (?, ?, ?)', [conv, `msg${s}`, 'ub']);
        await db.run('INSERT INTO message_mentions (user_id, conv_id, seq) VALUES (?, ?, ?)', ['ub', conv, s]);
        await db.run('INSERT INTO search_hidden (user_id, conv_id, seq) VALUES (?, ?, ?)', ['ub', conv, s]);
      }
    });
    after(async () => {
      await index?.close();
      await store.close();
      await drop();
    });

    it('the lease: one holder at a time, renewed by its holder, taken over only once it lapsed', async () => {
      assert.equal(await rs.acquire('node-a', NOW, 1000), true);
      assert.equal(await rs.acquire('node-b', NOW + 500, 1000), false, 'a live lease of another node');
      assert.equal(await rs.acquire('node-a', NOW + 900, 1000), true, 'renewed by its holder');
      assert.deepEqual(await rs.leaseHolder(NOW + 1000), { holder: 'node-a', until: NOW + 1900 });
      assert.equal(await rs.acquire('node-b', NOW + 1899, 1000), false);
      assert.equal(await rs.acquire('node-b', NOW + 1900, 1000), true, 'lapsed: another node takes over');
      // node-a's batch now finds the lease gone: nothing is deleted.
      const r = await rs.purgeBatch(conv, Number.MAX_SAFE_INTEGER, NOW - 30 * DAY, 3, { holder: 'node-a', now: NOW + 2000, ttlMs: 1000 });
      assert.deepEqual(r, { lost: true });
      assert.equal(await count('SELECT COUNT(*) AS n FROM messages WHERE conv_id = ?', [conv]), 10);
      await rs.release('node-b');
      assert.equal(await rs.leaseHolder(NOW), null);
    });

    it('batches purge a prefix up to the first message inside the retention, with side rows and inbox pointers', async () => {
      const lease = { holder: 'node-a', now: NOW, ttlMs: 60_000 };
      const cutoff = NOW - 30 * DAY;
      const inboxBefore = await db.all<{ user_id: string; inbox_seq: number | string; seq: number | string }>('SELECT user_id, inbox_seq, seq FROM inbox WHERE conv_id = ? ORDER BY user_id, inbox_seq', [conv]);
      // The prefix ends before the first recent message (8); its inbox pointers go first.
      assert.equal(await rs.prefixEnd(conv, 0, cutoff), 7);
      assert.equal(await rs.prefixEnd(conv, 0, NOW + 1), 10, 'everything is older: up to the last message');
      await rs.purgeInbox(conv, 7, 1, async () => {});
      const batches = [];
      for (;;) {
        const r = await rs.purgeBatch(conv, 7, cutoff, 3, lease);
        assert.equal(r.lost, false);
        batches.push(r);
        if (r.lost || r.done) break;
      }
      assert.deepEqual(
        batches.map((b) => (b.lost ? null : [b.purged, b.purgedSeq, b.done])),
        [
          [3, 3, false],
          [3, 6, false],
          [1, 7, true],
        ],
      );
      assert.deepEqual((await db.all<{ seq: number | string }>('SELECT seq FROM messages WHERE conv_id = ? ORDER BY seq', [conv])).map((r) => Number(r.seq)), [8, 9, 10], 'an old message after a recent one stays (the purge removes a prefix)');
      assert.deepEqual(await rs.purgeState(conv), { conv, purgedSeq: 7, purgedCount: 7, purgedAt: NOW });
      assert.equal(await store.purgedSeq(conv), 7);
      // SQLite: the purge logged its ranges for the search file's indexer, which drops their documents in its next batch.
      if (index) {
        assert.equal(await count(`SELECT COUNT(*) AS n FROM ${docsTable} WHERE conv_id = ? AND seq = 2`, [conv]), 1, 'not in the purge transaction');
        assert.equal(await count('SELECT COUNT(*) AS n FROM search_purges'), 3, 'one log row per batch');
        await index.sync();
      }
      for (const t of ['lifecycle_reactions', 'lifecycle_edits', docsTable]) {
        assert.deepEqual((await db.all<{ seq: number | string }>(`SELECT seq FROM ${t} WHERE conv_id = ?`, [conv])).map((r) => Number(r.seq)).filter((s) => s <= 9 && s !== 8 && s !== 10), [9], t);
      }
      assert.deepEqual((await db.all<{ seq: number | string }>('SELECT seq FROM receipt_messages WHERE conv = ?', [conv])).map((r) => Number(r.seq)), [9]);
      assert.deepEqual((await db.all<{ message_id: string }>('SELECT message_id FROM media_refs WHERE conv = ?', [conv])).map((r) => r.message_id), ['msg9']);
      assert.deepEqual((await db.all<{ msg_id: string }>('SELECT msg_id FROM group_change_users WHERE conv_id = ?', [conv])).map((r) => r.msg_id), ['msg9'], 'group-change user lists go with their notices');
      // Inbox pointers to seq ≤ 7 are gone in both inboxes; each user's purge mark is the highest removed inboxSeq.
      const after = await db.all<{ user_id: string; seq: number | string }>('SELECT user_id, seq FROM inbox WHERE conv_id = ? ORDER BY user_id, inbox_seq', [conv]);
      assert.ok(after.every((r) => Number(r.seq) > 7) && after.length === inboxBefore.filter((r) => Number(r.seq) > 7).length);
      for (const u of ['ua', 'ub']) {
        const top = Math.max(...inboxBefore.filter((r) => r.user_id === u && Number(r.seq) <= 7).map((r) => Number(r.inbox_seq)));
        assert.equal(await store.inboxPurgedSeq(u), top, u);
      }
      // Per-user rows (mentions, hidden search results) go after the batches.
      assert.equal(await count('SELECT COUNT(*) AS n FROM message_mentions WHERE conv_id = ?', [conv]), 2);
      await rs.purgeMemberRows(conv, 7, 1, async () => {});
      assert.deepEqual((await db.all<{ seq: number | string }>('SELECT seq FROM message_mentions WHERE conv_id = ?', [conv])).map((r) => Number(r.seq)), [9]);
      assert.deepEqual((await db.all<{ seq: number | string }>('SELECT seq FROM search_hidden WHERE conv_id = ?', [conv])).map((r) => Number(r.seq)), [9]);
      // Nothing more is due.
      assert.deepEqual(await rs.purgeBatch(conv, 7, cutoff, 3, lease), { lost: false, purged: 0, purgedSeq: 7, done: true });
      assert.equal(await rs.prefixEnd(conv, 7, cutoff), 7, 'nothing due');
    });

    it('candidates: every conversation when a kind has a retention, else only positive overrides', async () => {
      assert.deepEqual(await rs.candidates('', 10, false), []);
      await rs.setOverride({ conv, days: 5, setBy: 'token', reason: 'legal hold ended', setAt: NOW });
      assert.deepEqual(await rs.candidates('', 10, false), [{ conv, kind: 'direct', overrideDays: 5, purgedSeq: 7 }]);
      assert.deepEqual((await rs.candidates('', 10, true)).map((c) => c.conv), [conv]);
      assert.equal((await rs.override(conv))?.reason, 'legal hold ended');
      assert.equal(await rs.clearOverride(conv), true);
      assert.equal(await rs.clearOverride(conv), false);
      assert.deepEqual(await rs.candidates('', 10, true), [{ conv, kind: 'direct', overrideDays: null, purgedSeq: 7 }]);
    });
  });
}

suite(
  'sqlite',
  async () => {
    const db = await sqliteDb();
    return { db, drop: async () => {} };
  },
  false,
);

suite(
  'postgres',
  async () => {
    const schema = freshSchemaName('retention');
    const db = await pgDb(schema);
    const raw = rawClient(schema);
    return { db, drop: raw.drop };
  },
  pgSkip ?? false,
);
