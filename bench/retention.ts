/**
 * Retention purge throughput: messages purged per second by the purge job (lease, batches,
 * side rows, inbox pointers), on SQLite and optionally PostgreSQL, and what it does to live
 * writes: the latency of single-message appends made meanwhile, against the same appends
 * with no purge running.
 *
 *   node --import tsx bench/retention.ts \
 *     [--engine sqlite|postgres] [--convs 200] [--per 500] [--batch 500] [--pause 50]
 *
 * Seeds `convs` one-to-one conversations with `per` messages each, all older than the
 * retention, plus a search entry and a reaction per message; then runs one purge.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import { Registry } from 'prom-client';
import { directConversationId, loadConfig, openDatabase, PurgeJob, RetentionConfigSchema, RetentionStore, retentionMetrics, SqlStore, type AppendRequest, type SqlEngine } from '@magpie/server';
import { Histogram } from './lib/hist.ts';

const { values: a } = parseArgs({
  options: {
    engine: { type: 'string', default: 'sqlite' },
    convs: { type: 'string', default: '200' },
    per: { type: 'string', default: '500' },
    batch: { type: 'string', default: '500' },
    pause: { type: 'string', default: '50' },
  },
});
const CONVS = Number(a.convs);
const PER = Number(a.per);
const DAY = 24 * 3600 * 1000;
const PG_URL = process.env.MAGPIE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

const dir = mkdtempSync(join(tmpdir(), 'magpie-retention-bench-'));
const schema = `bench_ret_${process.pid}`;
// The server's database for these settings, migrated (SQLite magpie.db in `dir`, or a PostgreSQL schema of its own).
const db: SqlEngine = await openDatabase(loadConfig({}, { dataDir: dir, store: a.engine === 'postgres' ? PG_URL : 'sqlite', sqliteSynchronous: 'full' }), { schema });
const store = new SqlStore(db, { ringCapacity: 100_000 });

const old = Date.now() - 100 * DAY;
const users = Array.from({ length: CONVS + 1 }, (_, i) => `bu${String(i).padStart(6, '0')}`);
for (const id of users) await store.createUser({ id, username: id, passwordHash: 'x', nickname: id, createdAt: old });
const seedStart = performance.now();
let n = 0;
for (let c = 0; c < CONVS; c++) {
  const [x, y] = [users[c]!, users[c + 1]!];
  const conv = directConversationId(x, y);
  for (let i = 0; i < PER; i += 100) {
    const batch: AppendRequest[] = [];
    for (let j = i; j < Math.min(PER, i + 100); j++, n++) batch.push({ sender: j % 2 ? x : y, clientMsgId: `c${n}`, conv, directMembers: [x, y], kind: 'text', body: { text: `old message ${n}` }, time: old + n, id: `bm${n}` });
    await store.appendMessages(batch);
    await db.transaction(async (tx) => {
      for (let j = i; j < Math.min(PER, i + 100); j++) {
        // PostgreSQL: the index in the database; SQLite: the purge only logs ranges for the search file's indexer (migration 0025).
        if (db.dialect === 'postgres') await tx.run('INSERT INTO search_docs (conv_id, seq, sender_id, kind, time, body) VALUES (?, ?, ?, ?, ?, ?)', [conv, j + 1, x, 'text', old, `old message ${j}`]);
        await tx.run('INSERT INTO lifecycle_reactions (conv_id, seq, emoji, user_id, at) VALUES (?, ?, ?, ?, ?)', [conv, j + 1, '👍', y, old]);
      }
    });
  }
}
const total = CONVS * PER;
console.log(`seeded ${total} messages in ${CONVS} conversations in ${((performance.now() - seedStart) / 1000).toFixed(1)} s (${a.engine})`);

// Live writes: one single-message append every 5 ms into a conversation outside the retention.
const live = directConversationId(users[0]!, 'live-peer');
await store.createUser({ id: 'live-peer', username: 'live-peer', passwordHash: 'x', nickname: 'x', createdAt: Date.now() });
let liveN = 0;
async function liveWrites(ms: number): Promise<Histogram> {
  const h = new Histogram();
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t = performance.now();
    await store.appendMessages([{ sender: users[0]!, clientMsgId: `live${liveN}`, conv: live, directMembers: [users[0]!, 'live-peer'], kind: 'text', body: { text: 'live' }, time: Date.now(), id: `live${liveN++}` }]);
    h.record(performance.now() - t);
    await new Promise((r) => setTimeout(r, 5));
  }
  return h;
}
const baseline = await liveWrites(3000);

const config = RetentionConfigSchema.parse({ directDays: 30, batchSize: Number(a.batch), pauseMs: Number(a.pause) });
const job = new PurgeJob(new RetentionStore(db), config, 'bench', retentionMetrics(new Registry()));
let running = true;
const during = new Histogram();
const writer = (async () => {
  while (running) {
    const h = await liveWrites(200);
    for (let i = 0; i < h.counts.length; i++) during.counts[i]! += h.counts[i]!;
    during.count += h.count;
    during.sum += h.sum;
    during.max = Math.max(during.max, h.max);
  }
})();
const t0 = performance.now();
const report = await job.run();
const secs = (performance.now() - t0) / 1000;
running = false;
await writer;

const fmt = (h: Histogram) => {
  const s = h.summary();
  return `p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms, max ${s.max.toFixed(1)} ms (${s.count} appends)`;
};
console.log(JSON.stringify(report));
console.log(`purged ${report.messages} of ${total} messages in ${secs.toFixed(2)} s: ${Math.round(report.messages / secs)} messages/s (batch ${a.batch}, pause ${a.pause} ms, ${report.batches} batches)`);
console.log(`live appends without purge: ${fmt(baseline)}`);
console.log(`live appends during purge:  ${fmt(during)}`);
console.log(`load average: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

await store.close();
if (a.engine === 'postgres') {
  const sql = postgres(PG_URL, { max: 1, onnotice: () => {} });
  await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await sql.end();
}
await db.close();
rmSync(dir, { recursive: true, force: true });
