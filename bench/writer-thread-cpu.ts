/**
 * CPU per appended message of each thread of this process — the event loop ("main"), the SQLite
 * writer thread, the WAL checkpointer, V8's helpers — through the real writer thread
 * (openSqliteStore with writerThread, search documents on), without network or load generator:
 * per-thread utime+stime from /proc/self/task, so other load on the machine inflates it less than
 * wall-clock figures. Appends only (no ACK flushes).
 *
 *   node --import tsx bench/writer-thread-cpu.ts [--root DIR] [--batch 96] [--batches 800] [--users 32]
 *
 * --root: a checkout whose compiled server (@magpie/server as that checkout resolves it) to load,
 * e.g. a tree of bench/alternate.mjs under $TMPDIR/magpie-alternate/<sha>, to compare commits
 * (from the commit that exports openSqliteStore on); default this one.
 * --users 32: 16 pairs, each batch round-robin over them (the saturated 1:1 bench's shape);
 * more users: random pairs (the open-loop bench's shape: --users 10000 --batch 500).
 * The first fifth of the batches is warm-up.
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { benchUid, openWriterBench, threadTicks } from './lib/writer-bench.ts';

const { values: a } = parseArgs({
  options: {
    root: { type: 'string', default: new URL('..', import.meta.url).pathname },
    batch: { type: 'string', default: '96' },
    batches: { type: 'string', default: '800' },
    users: { type: 'string', default: '32' },
  },
});
const root = a.root!;
const B = Number(a.batch);
const NB = Number(a.batches);
const U = Number(a.users);
const { store, dir } = await openWriterBench(root, 'magpie-writer-cpu-', U);
const uid = benchUid;

const ticks = threadTicks;

let t0 = ticks();
let sent = 0;
const started = Date.now();
for (let b = 0; b < NB; b++) {
  if (b === Math.floor(NB / 5)) {
    t0 = ticks();
    sent = 0;
  }
  const batch = [];
  for (let j = 0; j < B; j++) {
    const s = U <= 64 ? (j % (U / 2)) * 2 : 2 * Math.floor((Math.random() * U) / 2);
    const [from, to] = j % 2 === 0 ? [uid(s), uid(s + 1)] : [uid(s + 1), uid(s)];
    const body = { text: `hello ${b} ${j} some text of a typical chat message` };
    const conv = `d:${uid(s)}:${uid(s + 1)}`;
    batch.push({ sender: from, clientMsgId: `c${b}-${j}`, conv, directMembers: [from, to], kind: 'text', body, bodyJson: JSON.stringify(body), time: Date.now(), id: `m${b}-${j}` });
  }
  const out = (await store.appendMessages(batch)) as { ok: boolean }[];
  if (!out.every((o) => o.ok)) throw new Error('an append failed');
  sent += B;
}
// SQLite's deferred search indexer (issue 23) writes the last documents after the last commit:
// counted too (a server without it has nothing to catch up).
if (typeof store.syncSearchIndex === 'function') await store.syncSearchIndex();
const t1 = ticks();
const main = String(process.pid);
const rows = [...t1].map(([t, v]) => [t, ((v - (t0.get(t) ?? 0)) * 10_000) / sent] as const).filter(([, v]) => v >= 0.5).sort((x, y) => y[1] - x[1]);
console.log(`${root}: batch ${B}, ${U} users, ${sent} messages measured (${((Date.now() - started) / 1000).toFixed(1)} s in all)`);
console.log(`CPU µs per message by thread (the largest besides main: the writer thread): ${rows.map(([t, v]) => `${t === main ? 'main' : `tid ${t}`} ${v.toFixed(1)}`).join(', ')}`);
console.log(`CPU µs per message, all threads: ${rows.reduce((x, [, v]) => x + v, 0).toFixed(1)}`);
console.log(`RSS ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`);
await store.close();
rmSync(dir, { recursive: true, force: true });
