/**
 * Issue 15: the PostgreSQL store's start-up warm-up (store/pg-warmup.ts) runs the real append
 * and ACK-flush code in rollback-only transactions: it stores and acknowledges messages inside
 * them, commits nothing, leaves no row behind, and the real data moves on as before.
 *
 * Needs PostgreSQL (MAGPIE_TEST_PG); skips with a message without it.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { openPostgresStore } from '../src/store/open.ts';
import { PIPELINE_COMMIT } from '../src/db/dialect.ts';
import type { SqlStore } from '../src/store/sql-store.ts';
import { post, seedGroup } from './append-requests.ts';
import { PG_URL, freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

const skip = (await pgUnavailable()) ?? false;

/** Every table of the schema with its row count. */
async function counts(sql: ReturnType<typeof rawClient>['sql'], schema: string): Promise<Record<string, number>> {
  const tables = await sql<{ t: string }[]>`SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ${schema} AND table_type = 'BASE TABLE' ORDER BY 1`;
  const out: Record<string, number> = {};
  for (const { t } of tables) {
    const [r] = await sql.unsafe(`SELECT count(*)::int AS n FROM "${t}"`);
    out[t] = (r as unknown as { n: number }).n;
  }
  return out;
}

it('a rollback-only transaction: PIPELINE_COMMIT only sends the pipeline, later statements see the writes, nothing commits', { skip }, async () => {
  const schema = freshSchemaName('pgwarm');
  const raw = rawClient(schema);
  let store: SqlStore | undefined;
  try {
    store = await openPostgresStore({ url: PG_URL, schema, ringCapacity: 100 });
    const db = store.db;
    const seen = await db.transaction(
      async (tx) => {
        await tx.run("INSERT INTO users (id, username, username_key, password_hash, nickname, created_at) VALUES ('rb1', 'rb1', 'rb1', '', 'x', 1)");
        await tx.run(PIPELINE_COMMIT);
        await tx.run("INSERT INTO users (id, username, username_key, password_hash, nickname, created_at) VALUES ('rb2', 'rb2', 'rb2', '', 'x', 1)");
        return (await tx.get<{ n: number }>("SELECT count(*)::int AS n FROM users WHERE id IN ('rb1', 'rb2')"))?.n;
      },
      { rollback: true },
    );
    assert.equal(seen, 2);
    const [r] = await raw.sql`SELECT count(*)::int AS n FROM users`;
    assert.equal(r?.n, 0);
  } finally {
    await store?.close();
    await raw.drop();
  }
});

it('warmUp stores and acknowledges messages in its transactions, commits nothing, and the real data works after it', { skip }, async () => {
  const schema = freshSchemaName('pgwarm');
  const raw = rawClient(schema);
  let store: SqlStore | undefined;
  try {
    store = await openPostgresStore({ url: PG_URL, schema, ringCapacity: 100, max: 4 });
    await seedGroup(store, 'g:real');
    const before = await counts(raw.sql, schema);
    const warnings: unknown[] = [];
    const w = await store.warmUp({ connections: 4, rounds: 3, members: 5, warn: (msg, err) => warnings.push([msg, err]) });
    assert.deepEqual(warnings, []);
    assert.deepEqual(w.failed, []);
    // Per transaction: the group's creation notice, then 1, 2, 1 posts; one ACK flush per round.
    assert.equal(w.messages, 4 * (1 + 1 + 2 + 1));
    assert.equal(w.ackFlushes, 4 * 3);
    assert.ok(w.ms > 0);
    assert.deepEqual(await counts(raw.sql, schema), before);
    const [left] = await raw.sql`SELECT count(*)::int AS n FROM users WHERE id LIKE 'pgwarm-%'`;
    assert.equal(left?.n, 0);
    // The real group still gets its messages and delivered counts.
    const [o] = await store.appendMessages([post('alice', 'g:real')]);
    assert.ok(o?.ok);
    const acks = o.pointers.filter((p) => p.userId !== 'alice').map((p) => ({ userId: p.userId, deviceId: 'd', inboxSeq: p.inboxSeq }));
    const { counts: c } = await store.recordAcks(acks);
    assert.deepEqual(c.map((x) => [x.conv, x.seq, x.count]).at(-1), ['g:real', o.message.seq, 2]);
  } finally {
    await store?.close();
    await raw.drop();
  }
});

it('warmUp on SQLite does nothing', async () => {
  const { openSqliteStore } = await import('../src/store/open.ts');
  const store = await openSqliteStore({ path: ':memory:', ringCapacity: 100 });
  try {
    const w = await store.warmUp();
    assert.equal(w.messages, 0);
  } finally {
    await store.close();
  }
});
