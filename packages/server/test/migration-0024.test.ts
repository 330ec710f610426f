import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { migrate } from '../src/db/migrate.ts';
import { MIGRATIONS } from '../src/db/migrations/index.ts';
import { SqlStore } from '../src/store/sql-store.ts';

/**
 * Migration 0024 (SQLite): `inbox` is rebuilt WITHOUT ROWID with a `mine` flag per pointer,
 * which the ACK flush uses to leave a user's own messages out (store/ack-writer.ts). Pointers
 * written before it get the flag from their message's sender: after the upgrade, acknowledging
 * them raises the others' messages only — the user's own group message neither counts nor
 * reports a delivery.
 */
it('0024: pointers from before the upgrade are kept, in key order, with `mine` from their message', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mig0024-'));
  const db = new SqliteEngine(join(dir, 'm.db'));
  try {
    await migrate(db, MIGRATIONS.filter((m) => m.name < '0024'));
    for (const u of ['ua', 'ub', 'uc']) await db.run('INSERT INTO users (id, username, username_key, password_hash, nickname, created_at, inbox_seq) VALUES (?, ?, ?, ?, ?, 0, 2)', [u, u, u, 'x', u]);
    await db.run("INSERT INTO conversations (id, kind, last_seq, created_at) VALUES ('g:x', 'group', 2, 0)");
    for (const u of ['ua', 'ub', 'uc']) {
      await db.run("INSERT INTO members (conv_id, user_id, joined_at) VALUES ('g:x', ?, 0)", [u]);
      await db.run("INSERT INTO entries (user_id, conv_id, last_seq) VALUES (?, 'g:x', 2)", [u]);
    }
    await db.run("INSERT INTO groups (conv_id, name, owner, join_policy, member_count, max_members, created_at) VALUES ('g:x', 'x', 'ua', 'open', 3, 10, 0)");
    const msg = (seq: number, sender: string) =>
      db.run("INSERT INTO messages (conv_id, seq, id, sender_id, client_msg_id, kind, body, time) VALUES ('g:x', ?, ?, ?, ?, 'text', '{}', 0)", [seq, `m${seq}`, sender, `c${seq}`]);
    await msg(1, 'ua');
    await msg(2, 'ub');
    // Inserted out of key order: the copy is in key order.
    for (const [u, s] of [['uc', 2], ['ua', 1], ['ub', 2], ['uc', 1], ['ub', 1], ['ua', 2]] as const) await db.run("INSERT INTO inbox (user_id, inbox_seq, conv_id, seq) VALUES (?, ?, 'g:x', ?)", [u, s, s]);

    const { applied } = await migrate(db, MIGRATIONS);
    assert.deepEqual(applied, MIGRATIONS.filter((m) => m.name >= '0024').map((m) => m.name), 'every later migration runs, 0024 first');
    assert.equal(applied[0], '0024-inbox-without-rowid');
    const rows = await db.all<{ user_id: string; inbox_seq: number; seq: number; mine: number }>('SELECT user_id, inbox_seq, seq, mine FROM inbox');
    assert.deepEqual(rows.map((r) => [r.user_id, Number(r.inbox_seq), Number(r.seq), Number(r.mine)]), [
      ['ua', 1, 1, 1],
      ['ua', 2, 2, 0],
      ['ub', 1, 1, 0],
      ['ub', 2, 2, 1],
      ['uc', 1, 1, 0],
      ['uc', 2, 2, 0],
    ]);
    const sql = await db.get<{ sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'inbox'");
    assert.match(sql!.sql, /WITHOUT ROWID/);

    const store = new SqlStore(db, { ringCapacity: 1000 });
    const out = await store.recordAcks([
      { userId: 'ua', deviceId: 'p', inboxSeq: 2 },
      { userId: 'ub', deviceId: 'p', inboxSeq: 2 },
    ]);
    assert.deepEqual(out.delivered, [
      { conv: 'g:x', seq: 2, sender: 'ub', by: 'ua' },
      { conv: 'g:x', seq: 1, sender: 'ua', by: 'ub' },
    ]);
    assert.deepEqual(out.counts, [
      { conv: 'g:x', seq: 1, sender: 'ua', count: 1 },
      { conv: 'g:x', seq: 2, sender: 'ub', count: 1 },
    ]);
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
});
