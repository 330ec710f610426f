/**
 * The search semantics suite (src/search/), run against SQLite (search-sqlite.test.ts) and
 * PostgreSQL (search-postgres.test.ts): CJK and Latin substrings, visibility (membership,
 * join time, history visibility, removal, cleared history, delete for me), recall and edit
 * hooks, filters and paging. Membership rows are written as the message store writes them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '@magpie/protocol';
import type { SqlEngine } from '../src/db/index.ts';
import { SqlSearchStore } from '../src/search/search-store.ts';
import { SearchService } from '../src/search/search-service.ts';
import { randomBytes } from 'node:crypto';
import { SqlStore } from '../src/store/sql-store.ts';
import { directConversationId, type AppendRequest } from '../src/store/store.ts';

export interface SearchFixture {
  db: SqlEngine;
  cleanup(): Promise<void>;
}

/** The message store's tables: migration 0004-core creates them with the rest of the schema (kept for callers). */
export async function messageTables(_db: SqlEngine): Promise<void> {}

export function runSearchContract(name: string, open: () => Promise<SearchFixture>, storeOpts: { scanLimit?: number } = {}): void {
  describe(`search semantics: ${name}`, () => {
    let fx: SearchFixture;
    let svc: SearchService;
    let store: SqlSearchStore;
    let t = 1_000_000;
    const seqs = new Map<string, number>();
    const send = (conv: string, sender: string, text: string, kind = 'text'): Message => {
      const seq = (seqs.get(conv) ?? 0) + 1;
      seqs.set(conv, seq);
      const body = kind === 'text' ? { text } : kind === 'file' ? { fallback: '[file]', upload: 'u1', name: text } : { event: 'x' };
      const m: Message = { id: `m${conv}${seq}`, conv, seq, sender, kind, body, time: ++t, clientMsgId: `c${t}` };
      svc.indexCommitted(m);
      return m;
    };
    const member = (conv: string, user: string, joinedSeq = 0, leftSeq: number | null = null) =>
      fx.db.run('INSERT INTO members (conv_id, user_id, joined_at, joined_seq, left_seq) VALUES (?, ?, 0, ?, ?) ON CONFLICT (conv_id, user_id) DO UPDATE SET joined_seq = excluded.joined_seq, left_seq = excluded.left_seq', [conv, user, joinedSeq, leftSeq]);
    const group = (conv: string, visibility: 'since_join' | 'all') =>
      fx.db.run(`INSERT INTO groups (conv_id, name, owner, join_policy, max_members, created_at, history_visibility) VALUES (?, 'g', 'a', 'open', 100, 0, ?)`, [conv, visibility]);
    const find = async (user: string, query: string, extra: Record<string, unknown> = {}) => {
      await svc.flush();
      return (await svc.search(user, { query, ...extra })).hits.map((h) => `${h.conv}#${h.seq}`);
    };

    before(async () => {
      fx = await open();
      store = new SqlSearchStore(fx.db, storeOpts);
      svc = new SearchService(store);
      // Direct conversation of a and b; group g1 (since_join) with a, b, c joining at seq 3; group g2 (all) with a and c joining late.
      await member('d:a:b', 'a');
      await member('d:a:b', 'b');
      send('d:a:b', 'a', '明天下午三点开会');
      send('d:a:b', 'b', 'Hello WORLD, meeting at 3');
      send('d:a:b', 'a', '订单 12345 已发货');
      await group('g:1', 'since_join');
      await member('g:1', 'a', 1);
      await member('g:1', 'b', 1);
      send('g:1', 'a', 'secret plan before c joined');
      send('g:1', 'b', '早上好');
      send('g:1', 'a', 'system', 'system');
      await member('g:1', 'c', 3);
      send('g:1', 'a', 'public plan after c joined');
      await group('g:2', 'all');
      await member('g:2', 'a', 1);
      send('g:2', 'a', 'old plan in an open group');
      await member('g:2', 'c', 2);
      await svc.flush();
    });
    after(async () => {
      await fx.cleanup();
    });

    it('finds CJK and Latin substrings, case-insensitively, newest first', async () => {
      assert.deepEqual(await find('a', '三点开会'), ['d:a:b#1']);
      assert.deepEqual(await find('b', 'world'), ['d:a:b#2']);
      assert.deepEqual(await find('a', '发货'), ['d:a:b#3'], 'a two-character CJK term (below the trigram) still matches');
      assert.deepEqual(await find('a', 'plan'), ['g:2#1', 'g:1#4', 'g:1#1']);
      assert.deepEqual(await find('a', 'plan after'), ['g:1#4'], 'every term must match');
      assert.deepEqual(await find('a', '100%'), [], 'LIKE wildcards are literal');
    });

    it('respects membership, join time and history visibility', async () => {
      assert.deepEqual(await find('c', '三点开会'), [], 'not a member of the direct conversation');
      assert.deepEqual(await find('c', 'plan'), ['g:2#1', 'g:1#4'], 'since_join hides g:1 before the join; all shows g:2');
      assert.deepEqual(await find('x', 'plan'), []);
    });

    it('a former member finds up to their removal only', async () => {
      await member('g:1', 'b', 1, 4);
      send('g:1', 'a', 'plan after b left');
      assert.deepEqual(await find('b', 'plan'), ['g:1#4', 'g:1#1']);
      await member('g:1', 'b', 1);
      assert.deepEqual(await find('b', 'plan'), ['g:1#5', 'g:1#4', 'g:1#1']);
    });

    it('cleared history and delete-for-me hide from that user only', async () => {
      await fx.db.run('INSERT INTO entries (user_id, conv_id, cleared_seq) VALUES (?, ?, ?)', ['b', 'd:a:b', 2]);
      assert.deepEqual(await find('b', '订单'), ['d:a:b#3']);
      assert.deepEqual(await find('b', 'world'), []);
      assert.deepEqual(await find('a', 'world'), ['d:a:b#2']);
      await svc.hideForUser('a', 'd:a:b', 2);
      assert.deepEqual(await find('a', 'world'), []);
      await svc.hideForUser('a', 'd:a:b', 2);
    });

    it('recall removes, edit replaces the text (even right after the send)', async () => {
      const m = send('d:a:b', 'a', 'typo messsage here');
      await svc.updateMessageText(m.conv, m.seq, 'text', { text: 'fixed message here' });
      assert.deepEqual(await find('a', 'messsage'), []);
      assert.deepEqual(await find('a', 'fixed message'), [`d:a:b#${m.seq}`]);
      const r = send('d:a:b', 'b', 'oops wrong chat 撤回');
      await svc.removeMessage(r.conv, r.seq);
      assert.deepEqual(await find('a', '撤回'), []);
      await svc.updateMessageText(m.conv, m.seq, 'text', { text: '' });
      assert.deepEqual(await find('a', 'fixed message'), []);
    });

    it('filters by conversation, sender, kind and date', async () => {
      send('d:a:b', 'b', 'report.pdf', 'file');
      assert.deepEqual(await find('a', 'plan', { conv: 'g:1' }), ['g:1#5', 'g:1#4', 'g:1#1']);
      assert.deepEqual(await find('a', 'plan', { sender: 'a', conv: 'g:2' }), ['g:2#1']);
      assert.deepEqual(await find('a', 'report', { kind: 'file' }).then((x) => x.length), 1);
      assert.deepEqual(await find('a', 'report', { kind: 'text' }), []);
      const all = (await svc.search('a', { query: 'plan' })).hits;
      const newest = all[0]!.time;
      assert.deepEqual(await find('a', 'plan', { from: newest }), [`${all[0]!.conv}#${all[0]!.seq}`]);
      assert.equal((await find('a', 'plan', { to: newest })).length, all.length - 1);
    });

    it('pages with a cursor, without repeats', async () => {
      for (let i = 0; i < 7; i++) send('g:2', 'c', `paging 分页 ${i}`);
      const seen: string[] = [];
      let before: string | undefined;
      for (let i = 0; i < 5; i++) {
        await svc.flush();
        const page = await svc.search('a', { query: '分页', limit: 3, ...(before ? { before } : {}) });
        seen.push(...page.hits.map((h) => h.text));
        if (!page.next) break;
        before = page.next;
      }
      assert.deepEqual(seen, [6, 5, 4, 3, 2, 1, 0].map((i) => `paging 分页 ${i}`));
    });

    it('bad input is a typed error', async () => {
      for (const input of [{ query: '   ' }, { query: 'x'.repeat(201) }, { query: 'ok', before: 'nope' }, { query: 'ok', from: 5, to: 5 }]) {
        await assert.rejects(svc.search('a', input), (e: { code?: string }) => e.code === 'invalid');
      }
    });

    it('backfill rebuilds the index from the messages table', async () => {
      await fx.db.run('DELETE FROM search_docs');
      await fx.db.run(`INSERT INTO messages (conv_id, seq, id, sender_id, client_msg_id, kind, body, time) VALUES ('d:a:b', 1, 'bf1', 'a', 'bf1', 'text', ?, 5), ('d:a:b', 2, 'bf2', 'b', 'bf2', 'system', '{"event":"x"}', 6), ('g:1', 1, 'bf3', 'a', 'bf3', 'text', ?, 7)`, [JSON.stringify({ text: '回填测试 backfill' }), JSON.stringify({ text: 'backfill in group' })]);
      const out = await store.backfill(searchableTextForTest, { batch: 1 });
      assert.deepEqual(out, { scanned: 3, indexed: 2 });
      assert.deepEqual(await find('a', 'backfill'), ['g:1#1', 'd:a:b#1']);
      assert.deepEqual(await find('a', '回填'), ['d:a:b#1']);
    });
  });

  describe(`search documents of new messages (PostgreSQL: in the group commit; SQLite: the deferred indexer): ${name}`, () => {
    let fx: SearchFixture;
    let msgs: SqlStore;
    let svc: SearchService;
    const tag = randomBytes(4).toString('hex');
    const [a, b, c] = ['a', 'b', 'c'].map((x) => `${x}-${tag}`) as [string, string, string];
    let n = 0;
    const req = (sender: string, to: string, body: unknown, kind = 'text', extra: Partial<AppendRequest> = {}): AppendRequest => {
      n++;
      return { sender, clientMsgId: `c${n}`, conv: directConversationId(sender, to), directMembers: [sender, to], kind, body, bodyJson: JSON.stringify(body), time: 2_000_000 + n, id: `m-${tag}-${n}`, ...extra };
    };
    const find = async (user: string, query: string) => (await svc.search(user, { query })).hits.map((h) => `${h.conv === directConversationId(a, b) ? 'ab' : h.conv}#${h.seq}`);

    before(async () => {
      fx = await open();
      // SQLite: the indexer's timer never fires here (60 s): only the search's own catch-up indexes.
      msgs = new SqlStore(fx.db, { ringCapacity: 100, searchText: searchableTextForTest, searchIndexDelayMs: 60_000 });
      // SQLite: the store's search index (its own file, written by its thread), read through its reader.
      svc = new SearchService(new SqlSearchStore(fx.db, { ...storeOpts, ...(msgs.searchIndex && { index: msgs.searchIndex }) }), { syncIndex: () => msgs.syncSearchIndex() });
      for (const u of [a, b, c]) await msgs.createUser({ id: u, username: u, passwordHash: 'x', nickname: u, createdAt: 0 });
    });
    after(async () => {
      await msgs.close();
      await fx.cleanup();
    });

    it('a committed message is searchable at once, with no index write of its own in its commit on SQLite', async () => {
      assert.equal(msgs.indexesSearch, true);
      const out = await msgs.appendMessages([req(a, b, { text: `${tag} 明天开会` }), req(b, a, { text: `reply ${tag}` }), req(a, b, { event: 'x' }, 'system'), req(a, b, { fallback: '[file]', upload: 'u1', name: `report-${tag}.pdf` }, 'file')]);
      assert.ok(out.every((o) => o.ok));
      const docs = async () => Number((await (msgs.searchIndex?.reader ?? fx.db).get<{ n: number | string }>('SELECT COUNT(*) AS n FROM search_docs WHERE conv_id = ?', [directConversationId(a, b)]))?.n);
      // SQLite: the commit wrote no document; PostgreSQL: it wrote them.
      assert.equal(await docs(), fx.db.dialect === 'sqlite' ? 0 : 3);
      // Nothing was queued (svc.indexCommitted was never called), yet every document is found.
      assert.deepEqual(await find(a, tag), ['ab#4', 'ab#2', 'ab#1']);
      assert.deepEqual(await find(b, '明天开会'), ['ab#1']);
      assert.deepEqual(await find(c, tag), [], 'a non-member finds nothing');
      const [stored] = await msgs.readHistory(directConversationId(a, b), { after: 0, limit: 1 });
      assert.deepEqual(stored?.body, { text: `${tag} 明天开会` }, 'the row holds the JSON the caller made');
    });

    it('a repeated send indexes nothing twice; a refused one indexes nothing', async () => {
      const first = req(a, b, { text: `again ${tag}` });
      const [o1] = await msgs.appendMessages([first]);
      const [o2] = await msgs.appendMessages([{ ...first, id: 'other' }]);
      assert.ok(o1?.ok && o2?.ok && o2.duplicate);
      assert.deepEqual(await find(a, `again ${tag}`), [`ab#${o1.message.seq}`]);
      const [refused] = await msgs.appendMessages([req(c, a, { text: `intruder ${tag}` }, 'text', { conv: directConversationId(a, b), directMembers: undefined })]);
      assert.equal(refused?.ok, false);
      assert.deepEqual(await find(a, 'intruder'), []);
    });

    it('recall, edit and delete for me still change what is found', async () => {
      const [o] = await msgs.appendMessages([req(a, b, { text: `lifecycle ${tag}` })]);
      assert.ok(o?.ok);
      const seq = o.message.seq;
      await svc.updateMessageText(o.message.conv, seq, 'text', { text: `edited ${tag}` });
      assert.deepEqual(await find(a, `lifecycle ${tag}`), []);
      assert.deepEqual(await find(a, `edited ${tag}`), [`ab#${seq}`]);
      await svc.hideForUser(b, o.message.conv, seq);
      assert.deepEqual(await find(b, `edited ${tag}`), []);
      assert.deepEqual(await find(a, `edited ${tag}`), [`ab#${seq}`]);
      await svc.removeMessage(o.message.conv, seq);
      assert.deepEqual(await find(a, `edited ${tag}`), []);
    });
  });
}

import { searchableText as searchableTextForTest } from '../src/search/extract.ts';
