/**
 * A white-box diagnostic of the store (it wraps the SQLite engine's internals, so it lives beside
 * the server's source, not in bench/, which measures public entry points only).
 *
 * What one group commit writes, on SQLite, in-process (the writer thread's code on this thread):
 * per statement its wall time per message (noisy on a loaded machine), the process's CPU per
 * message, and with --walstat 1 the WAL frames per commit (each a 4 KB page write plus its share
 * of the fsync and of the checkpoint's copy) and, every 20 batches, which table or index each
 * page of one append + ACK flush belongs to (dbstat). Appends 1:1 messages, then ACKs them.
 *
 *   node --import tsx packages/server/tools/store-commit-pages.ts --users 32 --batch 96 --batches 300 --walstat 1
 *   node --import tsx packages/server/tools/store-commit-pages.ts --users 10000 --batch 500 --batches 200 --walstat 1
 *
 * --search 0: without search documents. --acks 0: no ACK flushes.
 * --toggle NAME: each batch sets or clears the environment variable NAME at random, and the
 * append's CPU is reported per setting (an A/B of a switch the code reads, in one process and
 * database; random, not alternating: FTS merges and ring trims recur periodically); with ACK
 * flushes on, their CPU per setting too. Every run also reports the CPU (user + sys) of each
 * COMMIT (the WAL frames: ~5 µs each on this machine) beside its wall time (with the fsync).
 * --walstat 1 checkpoints (TRUNCATE) after every batch so the WAL holds one batch's frames.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { SqlStore } from '../src/store/sql-store.ts';
import { searchableText } from '../src/search/extract.ts';
import { directConversationId, type AppendRequest } from '../src/store/store.ts';

const { values: a } = parseArgs({ options: { toggle: { type: 'string', default: '' }, walstat: { type: 'string', default: '0' }, users: { type: 'string', default: '32' }, batch: { type: 'string', default: '256' }, batches: { type: 'string', default: '200' }, search: { type: 'string', default: '1' }, acks: { type: 'string', default: '1' } } });
const U = Number(a.users), B = Number(a.batch), NB = Number(a.batches);
const dir = mkdtempSync(join(tmpdir(), 'stmts-'));
const engine = new SqliteEngine(join(dir, 'm.db'), { synchronous: 'full', checkpointMs: a.walstat === '1' ? 0 : 500 });
const store = new SqlStore(engine, { ringCapacity: 5000, ownsEngine: true, ...(a.search === '1' ? { searchText: searchableText } : {}) });
await store.migrate();
const uid = (i: number) => `bu${String(i).padStart(7, '0')}`;
for (let i = 0; i < U; i++) await store.createUser({ id: uid(i), username: uid(i), passwordHash: 'x', nickname: 'x', createdAt: Date.now() });

const times = new Map<string, { n: number; ms: number; rows: number }>();
const rec = (k: string, ms: number, rows = 0) => { const t = times.get(k) ?? { n: 0, ms: 0, rows: 0 }; t.n++; t.ms += ms; t.rows += rows; times.set(k, t); };
let on = false;
const e = engine as any;
const origPrepare = e.prepare.bind(e);
const wrapped = new Map<string, any>();
e.prepare = (sql: string) => {
  const s = origPrepare(sql);
  let w = wrapped.get(sql);
  if (!w) {
    const key = sql.replace(/\s+/g, ' ').slice(0, 70) + (sql.includes('VALUES (') ? ` [${(sql.match(/\), \(/g)?.length ?? 0) + 1} rows]` : '');
    w = new Proxy(s, { get(t, p) { const v = t[p]; if (p === 'run' || p === 'all' || p === 'get') return (...args: unknown[]) => { const t0 = performance.now(); const r = v.apply(t, args); if (on) rec(key, performance.now() - t0); return r; }; return typeof v === 'function' ? v.bind(t) : v; } });
    wrapped.set(sql, w);
  }
  return w;
};
const db = e.db;
const origExec = db.exec.bind(db);
let phase = 'append';
const walPath = join(dir, 'm.db') + '-wal';
const { statSync } = await import('node:fs');
const walSize = () => { try { return statSync(walPath).size; } catch { return 0; } };
if (a.walstat === '1') db.pragma('wal_autocheckpoint = 0');
db.exec = (sql: string) => { const w0 = a.walstat === '1' ? walSize() : 0; const t0 = performance.now(); const k0 = process.cpuUsage(); const r = origExec(sql); if (on) { rec(`exec ${sql} ${phase}`, performance.now() - t0); if (sql === 'COMMIT') { const k = process.cpuUsage(k0); rec(`CPU ms (user+sys) of COMMIT ${phase}`, (k.user + k.system) / 1000); } if (a.walstat === '1' && sql === 'COMMIT') rec(`WAL frames ${phase}`, 0, (walSize() - w0) / 4120); } return r; };

let sent = 0;
const pairs = U / 2;
const vcpu = [{ u: 0, s: 0, n: 0, w: 0 }, { u: 0, s: 0, n: 0, w: 0 }];
const acpu = [{ u: 0, s: 0, n: 0, w: 0 }, { u: 0, s: 0, n: 0, w: 0 }];
let appendMs = 0, ackMs = 0, txs = 0; let cpu0 = process.cpuUsage();
for (let b = 0; b < NB; b++) {
  if (b === Math.floor(NB / 5)) { on = true; times.clear(); appendMs = 0; ackMs = 0; txs = 0; sent = 0; cpu0 = process.cpuUsage(); }
  const batch: AppendRequest[] = [];
  for (let j = 0; j < B; j++) {
    const s = U <= 64 ? (j % pairs) * 2 : Math.floor(Math.random() * U);
    const from = uid(s), to = uid(s ^ 1);
    batch.push({ sender: from, clientMsgId: `c${b}-${j}`, conv: directConversationId(from, to), directMembers: [from, to], kind: 'text', body: { text: `hello ${b} ${j} some text of a typical chat message` }, bodyJson: JSON.stringify({ text: `hello ${b} ${j} some text of a typical chat message` }), time: Date.now(), id: `m${b}-${j}` } as AppendRequest);
  }
  const variant = a.toggle && Math.random() < 0.5 ? 1 : 0;
  if (a.toggle) { if (variant) process.env[a.toggle] = '1'; else delete process.env[a.toggle]; }
  const c0 = process.cpuUsage();
  const t = performance.now();
  const out = await store.appendMessages(batch);
  appendMs += performance.now() - t;
  if (on) { const c = process.cpuUsage(c0); const v = vcpu[variant]!; v.u += c.user; v.s += c.system; v.n += B; v.w += performance.now() - t; }
  sent += B; txs++;
  if (a.acks === '1') {
    const inbox = new Map<string, number>();
    for (const o of out) if (o.ok) for (const p of o.pointers) if (p.userId !== o.message.sender) inbox.set(p.userId, Math.max(inbox.get(p.userId) ?? 0, p.inboxSeq));
    const acks = [...inbox].map(([userId, inboxSeq]) => ({ userId, deviceId: 'bench', inboxSeq }));
    phase = 'acks';
    const ta = performance.now();
    const ca = process.cpuUsage();
    await store.recordAcks(acks);
    ackMs += performance.now() - ta;
    if (on) { const c = process.cpuUsage(ca); const v = acpu[variant]!; v.u += c.user; v.s += c.system; v.n += B; v.w += performance.now() - ta; }
    phase = 'append';
  }
  if (a.walstat === '1' && on && b % 20 === 0) {
    const { readFileSync } = await import('node:fs');
    const buf = readFileSync(walPath);
    const pages = new Set<number>();
    for (let off = 32; off + 24 <= buf.length; off += 24 + 4096) pages.add(buf.readUInt32BE(off));
    const owner = new Map<number, string>();
    for (const r of db.prepare('SELECT name, pageno FROM dbstat').all() as { name: string; pageno: number }[]) owner.set(r.pageno, r.name);
    const per = new Map<string, number>();
    for (const pg of pages) { const n = owner.get(pg) ?? '?'; per.set(n, (per.get(n) ?? 0) + 1); }
    console.log(`batch ${b}: ${pages.size} distinct pages in WAL (append+acks): ` + [...per].sort((x, y) => y[1] - x[1]).map(([n, c]) => `${n} ${c}`).join(', '));
  }
  if (a.walstat === '1') { (e.handle.db).pragma('wal_checkpoint(TRUNCATE)'); }
}
const cpu = process.cpuUsage(cpu0);
if (a.toggle) for (const v of [0, 1]) { const x = vcpu[v]!; console.log(`variant ${a.toggle}=${v}: append CPU user ${(x.u / x.n).toFixed(1)} sys ${(x.s / x.n).toFixed(1)} µs/msg, wall ${(x.w * 1000 / x.n).toFixed(1)} µs/msg`); }
if (a.toggle && a.acks === '1') for (const v of [0, 1]) { const x = acpu[v]!; console.log(`variant ${a.toggle}=${v}: ACK flush CPU user ${(x.u / x.n).toFixed(1)} sys ${(x.s / x.n).toFixed(1)} µs/msg, wall ${(x.w * 1000 / x.n).toFixed(1)} µs/msg`); }
console.log(`CPU user ${(cpu.user / sent).toFixed(1)} sys ${(cpu.system / sent).toFixed(1)} µs/msg (process, incl. checkpointer)`);
console.log(`users ${U} batch ${B} search ${a.search}: append ${(appendMs * 1000 / sent).toFixed(1)} µs/msg (${(appendMs / txs).toFixed(2)} ms/tx), acks ${(ackMs * 1000 / sent).toFixed(1)} µs/msg`);
const rows = [...times].sort((x, y) => y[1].ms - x[1].ms);
for (const [k, t] of rows) if (k.startsWith('WAL')) console.log(`${k}: ${(t.rows / t.n).toFixed(0)} frames per commit, ${(t.rows / sent).toFixed(2)} per msg`); else console.log(`${(t.ms * 1000 / sent).toFixed(2).padStart(8)} µs/msg ${String(t.n).padStart(7)} calls ${(t.ms * 1000 / t.n).toFixed(1).padStart(8)} µs/call  ${k}`);
await store.close();
rmSync(dir, { recursive: true, force: true });
