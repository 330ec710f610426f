/**
 * A white-box diagnostic (beside the store's source, like store-commit-pages.ts): what one group
 * commit costs on SQLite as a function of how many messages it carries, for a normal group of M
 * members — the per-commit part (every member's user row, entry and list-version index entry,
 * once per commit) against the per-message part (M inbox pointers). In-process, the writer
 * thread's code on this thread; CPU is this process's user + system time.
 *
 *   node --import tsx packages/server/tools/group-commit-cost.ts --members 500 --sizes 1,2,4,8,16 --messages 400
 *
 * --acks 1 (default): after each commit every member's device ACKs it (one ACK flush per commit,
 * as the ACK service coalesces them), reported apart. Prints, per batch size, CPU per commit and per
 * message, and the statements that took the most time per commit (wall time, noisy on a loaded machine).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { SqliteEngine } from '../src/db/sqlite-engine.ts';
import { SqlStore } from '../src/store/sql-store.ts';
import type { AppendRequest } from '../src/store/store.ts';

const { values: a } = parseArgs({ options: { acks: { type: 'string', default: '1' }, members: { type: 'string', default: '500' }, sizes: { type: 'string', default: '1,2,4,8,16' }, messages: { type: 'string', default: '400' } } });
const M = Number(a.members);
const sizes = a.sizes!.split(',').map(Number);
const perSize = Number(a.messages);
const dir = mkdtempSync(join(tmpdir(), 'group-commit-'));
const engine = new SqliteEngine(join(dir, 'm.db'), { synchronous: 'full', checkpointMs: 500 });
const store = new SqlStore(engine, { ringCapacity: 5000, ownsEngine: true });
await store.migrate();
const uid = (i: number) => `gu${String(i).padStart(6, '0')}`;
for (let i = 0; i < M; i++) await store.createUser({ id: uid(i), username: uid(i), passwordHash: 'x', nickname: 'x', createdAt: Date.now() });
const conv = 'g:bench';
const members = Array.from({ length: M - 1 }, (_, i) => uid(i + 1));
let n = 0;
const req = (sender: string, extra: Partial<AppendRequest> = {}): AppendRequest => {
  n++;
  const body = { text: `message ${n} with some typical chat text` };
  return { sender, clientMsgId: `c${n}`, conv, kind: 'text', body, bodyJson: JSON.stringify(body), time: Date.now(), id: `m${String(n).padStart(9, '0')}`, ...extra } as AppendRequest;
};
const [created] = await store.appendMessages([req(uid(0), { kind: 'system', body: {}, bodyJson: '{}', effect: { op: 'create', group: { name: 'bench', avatar: '', joinPolicy: 'open', inviteNeedsApproval: false, historyVisibility: 'since_join', maxMembers: 100_000, superThreshold: 100_000 }, members } })]);
if (!created?.ok) throw new Error(`group not created: ${JSON.stringify(created)}`);

// Wall time per statement text (the engine's prepared statements), per commit.
const e = engine as unknown as { prepare: (sql: string) => { run: Function; all: Function; get: Function } };
const orig = e.prepare.bind(e);
const times = new Map<string, number>();
let on = false;
const wrapped = new Map<string, unknown>();
e.prepare = (sql: string) => {
  const s = orig(sql) as Record<string | symbol, unknown>;
  let w = wrapped.get(sql);
  if (!w) {
    const key = sql.replace(/\s+/g, ' ').slice(0, 60) + (sql.includes('), (') ? ` [${(sql.match(/\), \(/g)?.length ?? 0) + 1} rows]` : '');
    w = new Proxy(s, { get(t, p) { const v = t[p]; if (p === 'run' || p === 'all' || p === 'get') return (...args: unknown[]) => { const t0 = performance.now(); const r = (v as Function).apply(t, args); if (on) times.set(key, (times.get(key) ?? 0) + performance.now() - t0); return r; }; return typeof v === 'function' ? (v as Function).bind(t) : v; } });
    wrapped.set(sql, w);
  }
  return w as ReturnType<typeof orig>;
};

for (const size of sizes) {
  // warm-up commits of this size, then the measured ones
  for (let k = 0; k < 5; k++) await store.appendMessages(Array.from({ length: size }, (_, j) => req(uid(1 + (j % (M - 1))))));
  const commits = Math.max(5, Math.round(perSize / size));
  times.clear();
  let appendCpu = 0;
  let ackCpu = 0;
  on = true;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let k = 0; k < commits; k++) {
    const ca = process.cpuUsage();
    const out = await store.appendMessages(Array.from({ length: size }, (_, j) => req(uid(1 + ((k * size + j) % (M - 1))))));
    const cb = process.cpuUsage(ca);
    appendCpu += cb.user + cb.system;
    if (!out.every((o) => o.ok)) throw new Error('append refused');
    if (a.acks === '1') {
      const top = new Map<string, number>();
      for (const o of out) if (o.ok) for (const p of o.pointers) if (p.userId !== o.message.sender) top.set(p.userId, Math.max(top.get(p.userId) ?? 0, p.inboxSeq));
      const c1 = process.cpuUsage();
      await store.recordAcks([...top].map(([userId, inboxSeq]) => ({ userId, deviceId: 'd1', inboxSeq })));
      const c2 = process.cpuUsage(c1);
      ackCpu += c2.user + c2.system;
    }
  }
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  on = false;
  const cpuMs = (c.user + c.system) / 1000;
  console.log(`${M} members, ${size} message(s) per commit: CPU ${(cpuMs / commits).toFixed(2)} ms per commit, ${((cpuMs / (commits * size)) * 1000).toFixed(0)} µs per message (append ${(appendCpu / 1000 / commits).toFixed(2)} ms, ACK flush ${(ackCpu / 1000 / commits).toFixed(2)} ms per commit); wall ${(wall / commits).toFixed(2)} ms per commit`);
  const top = [...times].sort((x, y) => y[1] - x[1]).slice(0, 6);
  for (const [k, ms] of top) console.log(`    ${(ms / commits).toFixed(2).padStart(7)} ms/commit  ${k}`);
}
await store.close();
rmSync(dir, { recursive: true, force: true });
