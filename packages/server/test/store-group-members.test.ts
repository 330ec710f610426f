/**
 * SQLite appends keep a normal group's member list between batches (SqlStore.groupMembers,
 * issue 23): a batch reads the member rows only when the conversation moved since the batch
 * that kept them (anything appended by another store) or when it carries a group effect. The
 * list must never deliver to a removed member nor miss a new one.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import type { Queryable } from '../src/db/engine.ts';
import { SqlStore } from '../src/store/sql-store.ts';
import type { AppendOutcome, AppendRequest, GroupEffect } from '../src/store/store.ts';
import { createGroup, post } from './append-requests.ts';

it('sqlite: a normal group’s members are read once and kept until an effect or another store’s append; joins, leaves, kicks and mutes take effect at once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'magpie-group-members-'));
  const engine = new SqliteEngine(join(dir, 'magpie.db'));
  const statements: string[] = [];
  const transaction = engine.transaction.bind(engine);
  engine.transaction = ((fn: (tx: Queryable) => Promise<unknown>, opts?: object) =>
    transaction((tx) => {
      const spy: Queryable = {
        dialect: tx.dialect,
        textList: (values) => tx.textList(values),
        all: (sql, params) => (statements.push(sql), tx.all(sql, params)),
        values: (sql, params) => (statements.push(sql), tx.values(sql, params)),
        get: (sql, params) => (statements.push(sql), tx.get(sql, params)),
        run: (sql, params) => (statements.push(sql), tx.run(sql, params)),
        exec: (sql) => (statements.push(sql), tx.exec(sql)),
      };
      return fn(spy);
    }, opts)) as typeof engine.transaction;
  const store = new SqlStore(engine, { ringCapacity: 100 });
  /** A second store on the same database (its appends are not this store's). */
  const other = new SqlStore(engine, { ringCapacity: 100 });
  const listsMembers = () => statements.filter((s) => /SELECT \* FROM members WHERE conv_id IN/.test(s)).length;
  const conv = 'g:kept';
  const ok = (o: AppendOutcome | undefined) => {
    assert.ok(o?.ok, JSON.stringify(o));
    return o;
  };
  const recipients = (o: AppendOutcome | undefined) => ok(o).pointers.map((p) => p.userId).sort();
  async function send(reqs: AppendRequest[], by = store): Promise<AppendOutcome[]> {
    statements.length = 0;
    return by.appendMessages(reqs);
  }
  const effect = (sender: string, e: GroupEffect) => post(sender, conv, { kind: 'system', body: {}, effect: e });
  const add = (users: string[]): GroupEffect => ({ op: 'add', users, maxMembers: 100, superThreshold: 500 });
  try {
    await store.migrate();
    for (const id of ['ka', 'kb', 'kc', 'kd', 'ke']) await store.createUser({ id, username: id, passwordHash: 'x', nickname: id, createdAt: 1 });
    ok((await send([createGroup('ka', conv, ['kb', 'kc'])]))[0]);

    // The first batch after the creation lists the members; the next ones do not.
    assert.deepEqual(recipients((await send([post('ka', conv)]))[0]), ['ka', 'kb', 'kc']);
    assert.equal(listsMembers(), 1);
    const two = await send([post('kb', conv), post('kc', conv)]);
    assert.deepEqual(two.map(recipients), [
      ['ka', 'kb', 'kc'],
      ['ka', 'kb', 'kc'],
    ]);
    assert.equal(listsMembers(), 0);

    // A join: the batch with the effect reads the rows; the new member gets the next message.
    const joined = await send([effect('ka', add(['kd'])), post('kd', conv)]);
    assert.deepEqual(recipients(joined[1]), ['ka', 'kb', 'kc', 'kd']);
    assert.equal(listsMembers(), 1);
    // (The batch after an effect reads them again: an effect's batch keeps no list.)
    assert.deepEqual(recipients((await send([post('ka', conv)]))[0]), ['ka', 'kb', 'kc', 'kd']);
    assert.equal(listsMembers(), 1);
    assert.deepEqual(recipients((await send([post('kb', conv)]))[0]), ['ka', 'kb', 'kc', 'kd']);
    assert.equal(listsMembers(), 0);

    // A kick, then a post in the same batch and in the next: the removed member gets neither.
    const kicked = await send([effect('ka', { op: 'remove', users: ['kb'] }), post('kc', conv)]);
    assert.deepEqual(recipients(kicked[1]), ['ka', 'kc', 'kd']);
    assert.deepEqual(recipients((await send([post('ka', conv)]))[0]), ['ka', 'kc', 'kd']);
    assert.deepEqual(recipients((await send([post('kd', conv)]))[0]), ['ka', 'kc', 'kd']);
    assert.equal(listsMembers(), 0);
    const refused = (await send([post('kb', conv)]))[0]!;
    assert.equal(refused.ok, false, 'a removed member may not post');

    // A leave.
    ok((await send([effect('kd', { op: 'leave' })]))[0]);
    assert.deepEqual(recipients((await send([post('ka', conv)]))[0]), ['ka', 'kc']);

    // A mute (no member joins or leaves): the muted member's next post is refused.
    ok((await send([effect('ka', { op: 'mute', user: 'kc', until: Date.now() + 60_000 })]))[0]);
    assert.equal((await send([post('kc', conv)]))[0]!.ok, false, 'a muted member may not post');
    ok((await send([effect('ka', { op: 'mute', user: 'kc', until: 0 })]))[0]);
    ok((await send([post('kc', conv)]))[0]);

    // Another store adds a member: this store's next batch sees the conversation moved and reads the rows.
    ok((await send([effect('ka', add(['ke']))], other))[0]);
    assert.deepEqual(recipients((await send([post('ka', conv)]))[0]), ['ka', 'kc', 'ke']);
    assert.equal(listsMembers(), 1);
    // And a plain post through the other store moves it too.
    ok((await send([post('ke', conv)], other))[0]);
    assert.deepEqual(recipients((await send([post('kc', conv)]))[0]), ['ka', 'kc', 'ke']);
    assert.equal(listsMembers(), 1);
    assert.deepEqual(recipients((await send([post('kc', conv)]))[0]), ['ka', 'kc', 'ke']);
    assert.equal(listsMembers(), 0);

    assert.deepEqual((await store.members(conv)).sort(), ['ka', 'kc', 'ke']);
  } finally {
    await other.close();
    await store.close();
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  }
});
