/**
 * Migration 0026 (issue 15, PostgreSQL only): the per-message updates of `entries` (and of
 * `users`, `devices`, `delivery_marks`, `conversations`) can be HOT updates — `entries_version`,
 * which indexed the `version` every message raises, is gone, and the tables leave room on
 * their pages (fillfactor 80). Checked on the real PostgreSQL: the schema before and after, and
 * a store-level workload (group posts, ACKs) whose entry and user updates are HOT afterwards
 * (before it, no entry update was). The list sync still pages by version. On SQLite the
 * migration changes nothing.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PostgresEngine } from '../src/db/postgres-engine.ts';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { migrate } from '../src/db/migrate.ts';
import { MIGRATIONS } from '../src/db/migrations/index.ts';
import { HOT_FILLFACTOR, HOT_TABLES } from '../src/db/migrations/0026-pg-hot-updates.ts';
import { SqlStore } from '../src/store/sql-store.ts';
import { post, seedGroup } from './append-requests.ts';
import { PG_URL, freshSchemaName, pgUnavailable, rawClient } from './pg-test-helpers.ts';

const skip = (await pgUnavailable()) ?? false;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('0026 (PostgreSQL): entries_version is dropped, the per-message tables get fillfactor 80, and entry/user updates are HOT', { skip, timeout: 120_000 }, async () => {
  const schema = freshSchemaName('magpie_mig0026');
  const engine = await PostgresEngine.open({ url: PG_URL, schema, max: 4 });
  const raw = rawClient(schema);
  let store: SqlStore | null = null;
  try {
    await migrate(engine, MIGRATIONS.filter((m) => m.name < '0026'));
    const indexes = async () => (await raw.sql<{ indexname: string }[]>`SELECT indexname FROM pg_indexes WHERE schemaname = ${schema} AND tablename = 'entries' ORDER BY indexname`).map((r) => r.indexname);
    const options = async () =>
      new Map((await raw.sql<{ relname: string; opts: string[] | null }[]>`SELECT c.relname, c.reloptions AS opts FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ${schema} AND c.relkind = 'r'`).map((r) => [r.relname, r.opts ?? []]));
    assert.deepEqual(await indexes(), ['entries_pkey', 'entries_version'], 'before: the version index exists');
    assert.deepEqual((await options()).get('entries'), []);

    const { applied } = await migrate(engine, MIGRATIONS);
    assert.deepEqual(applied, ['0026-pg-hot-updates']);
    assert.deepEqual(await indexes(), ['entries_pkey'], 'after: only the primary key');
    const opts = await options();
    for (const t of HOT_TABLES) assert.deepEqual(opts.get(t), [`fillfactor=${HOT_FILLFACTOR}`], t);
    assert.deepEqual(opts.get('messages'), [], 'other tables keep the default');
    assert.deepEqual((await migrate(engine, MIGRATIONS)).applied, [], 'applied once');

    // A store-level workload: posts into a group of three, every member acknowledging.
    store = new SqlStore(engine, { ringCapacity: 1000, ownsEngine: true });
    await seedGroup(store);
    const N = 30;
    for (let i = 0; i < N; i++) {
      const [out] = await store.appendMessages([post(['alice', 'bob', 'carol'][i % 3]!, 'g:one')]);
      assert.equal(out?.ok, true);
      await store.recordAcks(['alice', 'bob', 'carol'].map((u) => ({ userId: u, deviceId: 'p', inboxSeq: i + 2 })));
    }
    // The list sync pages by version without the index: every entry once, in version order.
    const page1 = await store.conversationChanges('bob', 0, 10);
    assert.deepEqual(page1.entries.map((e) => e.conv), ['g:one']);
    assert.equal((await store.conversationChanges('bob', page1.version, 10)).entries.length, 0);

    // The backends report their table statistics when they end: close the pool, then read them.
    await store.close();
    store = null;
    let stats: { relname: string; upd: number; hot: number }[] = [];
    for (let t = 0; t < 50; t++) {
      stats = (await raw.sql<{ relname: string; upd: string; hot: string }[]>`SELECT relname, n_tup_upd::text AS upd, n_tup_hot_upd::text AS hot FROM pg_stat_user_tables WHERE schemaname = ${schema} AND relname IN ('entries', 'users')`).map(
        (r) => ({ relname: r.relname, upd: Number(r.upd), hot: Number(r.hot) }),
      );
      if (stats.length === 2 && stats.every((s) => s.upd >= 3 * N)) break;
      await sleep(100);
    }
    for (const s of stats) {
      assert.ok(s.upd >= 3 * N, `${s.relname}: ${s.upd} updates reported`);
      assert.ok(s.hot >= 0.9 * s.upd, `${s.relname}: ${s.hot} of ${s.upd} updates HOT`);
    }
  } finally {
    if (store) await store.close();
    else await engine.close().catch(() => {});
    await raw.drop();
  }
});

it('0026 (SQLite): no change — entries_version stays', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mig0026-'));
  const db = new SqliteEngine(join(dir, 'm.db'));
  try {
    await migrate(db, MIGRATIONS);
    const idx = await db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries' AND name = 'entries_version'");
    assert.equal(idx.length, 1);
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
});
