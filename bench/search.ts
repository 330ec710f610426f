/**
 * Message search over a large database: p50/p99 of `GET /api/search`'s query (the search
 * store, no HTTP) over N messages, SQLite (FTS5 trigram) and PostgreSQL (pg_trgm), CJK and
 * Latin terms, global (all of a user's conversations) and in-chat (one conversation).
 *
 *   npm run bench:search -- [--messages 1000000] [--convs 10000] [--users 2000] [--queries 200] [--engine both|sqlite|postgres]
 *
 * Data is written in bulk straight into the message store's tables (direct conversations,
 * both member rows, `messages` bodies), then indexed with the backfill path (timed), then
 * queried as random users. Texts: half Latin (pseudo-words plus a few planted words of known
 * frequency), half Chinese (random common characters plus planted phrases).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import { SearchService, SqlSearchStore, loadConfig, openDatabase, searchableText, type SqlEngine } from '@magpie/server';

const { values: a } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000000' },
    convs: { type: 'string', default: '10000' },
    users: { type: 'string', default: '2000' },
    queries: { type: 'string', default: '200' },
    engine: { type: 'string', default: 'both' },
    pg: { type: 'string', default: process.env.MAGPIE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test' },
  },
});
const N = Number(a.messages);
const CONVS = Number(a.convs);
const USERS = Number(a.users);
const Q = Number(a.queries);

// Deterministic PRNG (mulberry32).
let seed = 42;
const rnd = (): number => {
  seed |= 0;
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

const SYL = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'to', 'vi', 'za', 'po', 'qu', 'de', 'fi', 'gu', 'ha', 'je', 'wo', 'xi', 'ya', 'bo'];
const WORDS = Array.from({ length: 3000 }, () => Array.from({ length: 2 + Math.floor(rnd() * 3) }, () => pick(SYL)).join(''));
const HAN = '的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严';
const LATIN_PLANT: [string, number][] = [['meeting', 0.05], ['invoice', 0.005], ['zanzibar', 0.0002]];
const CJK_PLANT: [string, number][] = [['开会', 0.05], ['发票', 0.005], ['火锅店', 0.002]];

function text(): string {
  if (rnd() < 0.5) {
    const words = Array.from({ length: 4 + Math.floor(rnd() * 10) }, () => pick(WORDS));
    for (const [w, p] of LATIN_PLANT) if (rnd() < p * 2) words.splice(Math.floor(rnd() * words.length), 0, w);
    return words.join(' ');
  }
  let s = Array.from({ length: 6 + Math.floor(rnd() * 20) }, () => HAN[Math.floor(rnd() * HAN.length)]).join('');
  for (const [w, p] of CJK_PLANT) if (rnd() < p * 2) {
    const at = Math.floor(rnd() * s.length);
    s = s.slice(0, at) + w + s.slice(at);
  }
  return s;
}

const user = (i: number): string => `u${String(i).padStart(6, '0')}`;

/** The message store's tables: migration 0004-core creates them with the rest of the schema (kept for callers). */
async function messageTables(_db: SqlEngine): Promise<void> {}

/** Conversations between random pairs; messages spread evenly over them, in seq order. */
async function generate(db: SqlEngine): Promise<{ convs: { id: string; a: string; b: string }[] }> {
  seed = 42;
  const convs: { id: string; a: string; b: string }[] = [];
  const seen = new Set<string>();
  while (convs.length < CONVS) {
    const x = Math.floor(rnd() * USERS);
    let y = Math.floor(rnd() * USERS);
    if (y === x) y = (y + 1) % USERS;
    const [p, q] = x < y ? [user(x), user(y)] : [user(y), user(x)];
    const id = `d:${p}:${q}`;
    if (seen.has(id)) continue;
    seen.add(id);
    convs.push({ id, a: p, b: q });
  }
  const ROWS = 400;
  for (let i = 0; i < convs.length; i += ROWS) {
    const chunk = convs.slice(i, i + ROWS);
    await db.transaction(async (tx) => {
      await tx.run(`INSERT INTO conversations (id, kind, last_seq, created_at) VALUES ${chunk.map(() => `(?, 'direct', 0, 0)`).join(', ')}`, chunk.map((c) => c.id));
      await tx.run(`INSERT INTO members (conv_id, user_id, joined_at) VALUES ${chunk.map(() => '(?, ?, 0), (?, ?, 0)').join(', ')}`, chunk.flatMap((c) => [c.id, c.a, c.id, c.b]));
    });
  }
  const perConv = Math.ceil(N / CONVS);
  const t0 = Date.now() - N * 1000;
  let n = 0;
  const PER_TX = 20_000;
  while (n < N) {
    await db.transaction(async (tx) => {
      const end = Math.min(N, n + PER_TX);
      for (; n < end; ) {
        const rows: unknown[] = [];
        let k = 0;
        for (; k < 300 && n < end; k++, n++) {
          const c = convs[n % CONVS]!;
          const seq = Math.floor(n / CONVS) + 1;
          const sender = rnd() < 0.5 ? c.a : c.b;
          rows.push(c.id, seq, `m${n}`, sender, `c${n}`, 'text', JSON.stringify({ text: text() }), t0 + n * 1000);
        }
        await tx.run(`INSERT INTO messages (conv_id, seq, id, sender_id, client_msg_id, kind, body, time) VALUES ${Array.from({ length: k }, () => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`, rows);
      }
    });
    if (n % 200_000 === 0) process.stderr.write(`  ${n} messages\n`);
  }
  await db.run(`UPDATE conversations SET last_seq = (SELECT COALESCE(MAX(seq), 0) FROM messages m WHERE m.conv_id = conversations.id)`);
  void perConv;
  return { convs };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function run(engine: 'sqlite' | 'postgres'): Promise<void> {
  let db: SqlEngine;
  let cleanup: () => Promise<void>;
  if (engine === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'magpie-search-bench-'));
    db = await openDatabase(loadConfig({}, { dataDir: dir, store: 'sqlite', sqliteSynchronous: 'normal', sqliteCheckpointMs: 500 }));
    cleanup = async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    };
  } else {
    const name = `magpie_bench_search_${process.pid}`;
    const admin = postgres(a.pg!, { max: 1, onnotice: () => {} });
    await admin.unsafe(`CREATE DATABASE "${name}"`);
    const url = new URL(a.pg!);
    url.pathname = `/${name}`;
    db = await openDatabase(loadConfig({}, { dataDir: tmpdir(), store: url.toString(), pg: { pools: { shared: 4 } } }));
    cleanup = async () => {
      await db.close();
      await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end({ timeout: 2 });
    };
  }
  try {
    await messageTables(db);
    let t = performance.now();
    const { convs } = await generate(db);
    const genS = (performance.now() - t) / 1000;
    t = performance.now();
    const store = new SqlSearchStore(db);
    const bf = await store.backfill(searchableText, { batch: 5000 });
    const backfillS = (performance.now() - t) / 1000;
    if (engine === 'postgres') await db.exec('ANALYZE');
    console.log(`\n[${engine}] ${N} messages in ${CONVS} direct conversations of ${USERS} users: generated in ${genS.toFixed(1)} s; backfill indexed ${bf.indexed} in ${backfillS.toFixed(1)} s (${Math.round(bf.indexed / backfillS)} docs/s)`);
    const svc = new SearchService(store);

    // Live indexing cost: documents queued as committed messages, written in one transaction per turn.
    seed = 7;
    const live = 20_000;
    t = performance.now();
    for (let i = 0; i < live; i++) {
      const c = convs[i % CONVS]!;
      svc.indexCommitted({ id: `x${i}`, conv: c.id, seq: 1_000_000 + i, sender: c.a, kind: 'text', body: { text: text() }, time: Date.now(), clientMsgId: `x${i}` });
      if (i % 200 === 199) await svc.flush();
    }
    await svc.flush();
    const liveUs = ((performance.now() - t) * 1000) / live;
    console.log(`[${engine}] live indexing, batches of 200: ${liveUs.toFixed(1)} µs per message (${Math.round(1e6 / liveUs)} msg/s on one connection)`);

    const queries: [string, string][] = [
      ['CJK 2 chars, common (开会)', '开会'],
      ['CJK 2 chars, rarer (发票)', '发票'],
      ['CJK 3 chars (火锅店)', '火锅店'],
      ['Latin common (meeting)', 'meeting'],
      ['Latin rarer (invoice)', 'invoice'],
      ['Latin rare (zanzibar)', 'zanzibar'],
      ['Latin, no match (qqqqxx)', 'qqqqxx'],
    ];
    // SQLite: the default plan (small scopes scanned with LIKE) and the trigram index alone.
    const plans: [string, SearchService][] = engine === 'sqlite' ? [['default', svc], ['index only', new SearchService(new SqlSearchStore(db, { scanLimit: -1 }))]] : [['default', svc]];
    console.log(`| engine | plan | query | scope | p50 ms | p99 ms | mean hits |`);
    console.log(`|---|---|---|---|---|---|---|`);
    for (const [plan, service] of plans) {
      seed = 99;
      for (const [label, q] of queries) {
        for (const scope of ['global', 'in-chat'] as const) {
          const times: number[] = [];
          let hits = 0;
          for (let i = 0; i < Q; i++) {
            const c = convs[Math.floor(rnd() * CONVS)]!;
            const s0 = performance.now();
            const page = await service.search(c.a, { query: q, limit: 20, ...(scope === 'in-chat' ? { conv: c.id } : {}) });
            times.push(performance.now() - s0);
            hits += page.hits.length;
          }
          console.log(`| ${engine} | ${plan} | ${label} | ${scope} | ${pct(times, 50).toFixed(2)} | ${pct(times, 99).toFixed(2)} | ${(hits / Q).toFixed(1)} |`);
        }
      }
    }
  } finally {
    await cleanup();
  }
}

console.log(`search bench: ${N} messages, ${Q} queries per row; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} on ${(await import('node:os')).cpus().length} cores`);
for (const e of a.engine === 'both' ? (['sqlite', 'postgres'] as const) : [a.engine as 'sqlite' | 'postgres']) await run(e);
console.log(`load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
