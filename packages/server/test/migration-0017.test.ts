import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SqlEngine } from '../src/db/engine.ts';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { PostgresEngine } from '../src/db/postgres-engine.ts';
import { migrate } from '../src/db/migrate.ts';
import { MIGRATIONS } from '../src/db/migrations/index.ts';
import { SqlStore } from '../src/store/sql-store.ts';
import { PG_URL, freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

/**
 * Migration 0017 repairs the conversation-list rows that releases before it wrote when
 * lifecycle events (recall, edit, reaction) arrived: counted as unread, a deleted entry
 * revived, an event as the entry's last row. The database is brought to 0013, seeded with
 * exactly what those releases stored, then migrated; the real store reads the result.
 */
const BEFORE = MIGRATIONS.filter((m) => m.name < '0017');

async function seedLegacy(db: SqlEngine): Promise<void> {
  const user = (id: string, version: number) =>
    db.run('INSERT INTO users (id, username, username_key, password_hash, nickname, created_at, conv_version) VALUES (?, ?, ?, ?, ?, 0, ?)', [id, id, id, 'x', id, version]);
  await user('ua', 10);
  await user('ub', 20);
  await user('uc', 30);
  const msg = (conv: string, seq: number, sender: string, kind: string, body: unknown, mentionAll = 0) =>
    db.run('INSERT INTO messages (conv_id, seq, id, sender_id, client_msg_id, kind, body, time, mention_all) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', [
      conv,
      seq,
      `${conv}/${seq}`,
      sender,
      `c-${conv}-${seq}`,
      kind,
      JSON.stringify(body),
      1000 + seq,
      mentionAll,
    ]);
  const entry = (user: string, conv: string, e: { read: number; unread: number; mentions?: number; last: number; deleted?: number; cleared?: number; version: number }) =>
    db.run('INSERT INTO entries (user_id, conv_id, read_seq, unread, mentions, last_seq, deleted, cleared_seq, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', [
      user,
      conv,
      e.read,
      e.unread,
      e.mentions ?? 0,
      e.last,
      e.deleted ?? 0,
      e.cleared ?? 0,
      e.version,
    ]);
  // A direct chat: two texts by A, B reacted (the old code marked it read for B), A edited seq 2 (counted as B's unread).
  await db.run("INSERT INTO conversations (id, kind, last_seq, created_at) VALUES ('d:ua:ub', 'direct', 4, 0)");
  await msg('d:ua:ub', 1, 'ua', 'text', { text: 'hi' });
  await msg('d:ua:ub', 2, 'ua', 'text', { text: 'yo, edited', edited: 1004 });
  await msg('d:ua:ub', 3, 'ub', 'reaction', { changes: [{ seq: 1, emoji: '👍', user: 'ub', on: true, count: 1 }] });
  await msg('d:ua:ub', 4, 'ua', 'edit', { seq: 2, text: 'yo, edited', editedAt: 1004 });
  await entry('ub', 'd:ua:ub', { read: 3, unread: 1, last: 4, version: 19 });
  await entry('ua', 'd:ua:ub', { read: 4, unread: 0, last: 4, version: 9 });
  // A normal group: a notice, A mentions B, A reacts. B's counters include the reaction;
  // C had deleted the conversation at seq 2 and the reaction brought it back.
  await db.run("INSERT INTO conversations (id, kind, last_seq, created_at) VALUES ('g:x', 'group', 3, 0)");
  await msg('g:x', 1, 'ua', 'system', { event: 'created' });
  await msg('g:x', 2, 'ua', 'text', { text: 'hello B' });
  await db.run("INSERT INTO message_mentions (user_id, conv_id, seq) VALUES ('ub', 'g:x', 2)");
  await msg('g:x', 3, 'ua', 'reaction', { changes: [{ seq: 2, emoji: '🎉', user: 'ua', on: true, count: 1 }] });
  await entry('ub', 'g:x', { read: 0, unread: 3, mentions: 1, last: 3, version: 18 });
  await entry('uc', 'g:x', { read: 2, unread: 1, last: 3, cleared: 2, version: 29 });
  // Untouched by events: left exactly as it is.
  await db.run("INSERT INTO conversations (id, kind, last_seq, created_at) VALUES ('d:ua:uc', 'direct', 1, 0)");
  await msg('d:ua:uc', 1, 'ua', 'text', { text: 'plain' });
  await entry('uc', 'd:ua:uc', { read: 0, unread: 1, last: 1, version: 28 });
}

async function checkRepair(db: SqlEngine): Promise<void> {
  await migrate(db, BEFORE);
  await seedLegacy(db);
  const { applied } = await migrate(db, MIGRATIONS);
  assert.deepEqual(applied, MIGRATIONS.filter((m) => m.name >= '0017').map((m) => m.name), 'every later migration runs, 0017 first');
  assert.equal(applied[0], '0017-event-counts');
  const store = new SqlStore(db, { ringCapacity: 1000 });
  const list = async (u: string) => new Map((await store.conversationChanges(u, 0, 100)).entries.map((e) => [e.conv, e]));

  const b = await list('ub');
  const bd = b.get('d:ua:ub')!;
  assert.equal(bd.unread, 0, 'the edit event no longer counts');
  assert.equal(bd.lastMessage?.seq, 2, 'the last message is the edited text');
  assert.equal((bd.lastMessage?.body as { text: string }).text, 'yo, edited');
  assert.ok(bd.version > 20, 'repaired entries move to a new list version');
  const bg = b.get('g:x')!;
  assert.equal(bg.unread, 2, 'the notice and the text; not the reaction');
  assert.equal(bg.mentions, 1);
  assert.equal(bg.lastMessage?.seq, 2);
  assert.notEqual(bg.version, bd.version);

  const a = await list('ua');
  const ad = a.get('d:ua:ub')!;
  assert.equal(ad.unread, 0);
  assert.ok(ad.version > 10, 'an entry whose last row was an event re-syncs (its preview changed)');

  const c = await list('uc');
  const cg = c.get('g:x')!;
  assert.equal(cg.deleted, true, 'only an event came after the delete: deleted again');
  assert.equal(cg.unread, 0);
  assert.equal(c.get('d:ua:uc')!.version, 28, 'untouched entries keep their version');
  assert.equal(c.get('d:ua:uc')!.unread, 1);
  // Versions stay gap-free per user: every repaired entry took the next one.
  const versions = [...b.values()].map((e) => e.version).sort((x, y) => x - y);
  assert.deepEqual(versions, [21, 22]);
}

describe('migration 0017: conversation-list counters without events', () => {
  it('repairs a SQLite database', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'magpie-m0017-'));
    const db = new SqliteEngine(join(dir, 'm.db'), { checkpointMs: 0 });
    try {
      await checkRepair(db);
    } finally {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('repairs a PostgreSQL database', async (t) => {
    const skip = await pgUnavailable();
    if (skip) return t.skip(skip);
    const schema = freshSchemaName('m0017');
    const db = await PostgresEngine.open({ url: PG_URL, schema, max: 2 });
    try {
      await checkRepair(db);
    } finally {
      await db.close();
      await rawClient(schema).drop();
    }
  });
});
