/**
 * Cluster benchmark on PostgreSQL + NATS (or SQLite, one node): N real node processes, clients
 * spread over them, one load generator in this process.
 *
 *   node --import tsx bench/cluster.ts --scenario group --nodes 3          # normal-group latency
 *   node --import tsx bench/cluster.ts --scenario dm --nodes 2             # direct-message throughput
 *   node --import tsx bench/cluster.ts --scenario dm --store sqlite        # the same on SQLite (one node)
 *   node --import tsx bench/cluster.ts --scenario group --nodes 3 --slow 200  # and list the messages over 200 ms
 *
 * group: a --members (90) member normal group, every member online, member i on node i mod N;
 *   --senders (10) members send at a total --rate (20) msg/s for --duration (20) s (open loop);
 *   reports the time from send to the LAST member's delivery, p50/p99/max.
 * dm: --pairs (50) pairs; the sender on node 0, the receiver on node 1 (with ≥ 2 nodes); each
 *   sender keeps --window (8) sends in flight for --duration s; reports delivered msg/s.
 * Both scenarios print, per node, the PostgreSQL statements and transactions it sent per message
 * during the load (its /metrics, MAGPIE_DB_STATEMENT_STATS) and its CPU, and the database's commits
 * and rows read by sequential scans per table per message (pg_stat_database, pg_stat_user_tables:
 * a statement that scans a whole table shows up there); group also prints where
 * the time goes, per stage, from every node's trace journal (GET /api/admin/messages/:id/trace):
 * send arrival → commit start (the wait for the node's group commit) → commit end → fan-out →
 * the bus event handled by each node's gateway (first and last member there) → the last member's
 * client got it. All processes run on this machine, so their wall clocks agree.
 * Needs PostgreSQL (MAGPIE_TEST_PG, default postgres://postgres@127.0.0.1:5432/test) and NATS
 * (MAGPIE_TEST_NATS, default nats://127.0.0.1:4222); creates and drops its own database.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import postgres from 'postgres';
import WebSocket from 'ws';
import { SERVER_MAIN, ensureBuilt, serverEnv, serverExecArgv } from './lib/server.ts';

// The compiled server, as `npm start` runs it (bench/lib/server.ts).
const MAIN = SERVER_MAIN;
const PG = process.env.MAGPIE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const NATS = process.env.MAGPIE_TEST_NATS ?? 'nats://127.0.0.1:4222';

/** Operator token of the bench's nodes (the trace API). */
const ADMIN_TOKEN = randomBytes(16).toString('hex');

const { values: a } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'group' },
    store: { type: 'string', default: 'postgres' },
    nodes: { type: 'string', default: '1' },
    members: { type: 'string', default: '90' },
    senders: { type: 'string', default: '10' },
    rate: { type: 'string', default: '20' },
    pairs: { type: 'string', default: '50' },
    window: { type: 'string', default: '8' },
    duration: { type: 'string', default: '20' },
    /** Sample pg_stat_activity of the bench database every 10 ms during the run and print what sessions wait on. */
    waits: { type: 'boolean', default: false },
    /**
     * Sample the bench database's backends every 10 ms during the load: each one's CPU time
     * (/proc/PID/schedstat, ns: PostgreSQL on this machine) and its node (application_name) and
     * latest statement (pg_stat_activity); print the backends' CPU by node and by statement, and
     * per backend (how many did anything). CPU between two samples goes to the statement
     * pg_stat_activity shows at the second (the one running, or the last one run).
     */
    'pg-cpu': { type: 'boolean', default: false },
    /**
     * group: connect the --senders to node 1 only (members are otherwise spread, i mod N): every
     * append of the group then comes from one node, as it would if a group's posts were routed
     * to one owner node, while fan-out and ACKs still cross nodes.
     */
    'senders-one-node': { type: 'boolean', default: false },
    /**
     * Log every lock wait longer than MS ms in the bench database (ALTER DATABASE … SET
     * log_lock_waits = on, deadlock_timeout = MS; superuser): PostgreSQL writes "still waiting
     * for …" lines to its own log (e.g. /var/log/postgresql/), with the waiting and holding pids.
     */
    'lock-log': { type: 'string' },
    /** Log every statement of the bench database that ran longer than MS ms inside PostgreSQL (log_min_duration_statement; superuser; PostgreSQL's own log). */
    'slow-log': { type: 'string' },
    /**
     * group: also report send → last member over the messages sent after the first SEC seconds
     * of the load (the full-window figures stay the headline): the first half second of a run
     * is the nodes' and their new PostgreSQL connections' warm-up (cold JIT, first statements),
     * more of it with more nodes.
     */
    warmup: { type: 'string', default: '2' },
    /** group: also print one line per message slower than this many ms (send → last member), in send order, with its stages and each node's last gateway write. */
    slow: { type: 'string' },
    /** How many of each node's most sent statements to print (per message). */
    statements: { type: 'string', default: '6' },
    /**
     * group: also print each node's CPU per message over the load after its first SEC seconds
     * (fresh node processes compile their hot paths, V8's optimizing compiler, during the first
     * seconds of load: each node process pays that once, which a short run counts per message).
     */
    'cpu-after': { type: 'string', default: '0' },
    /** Run every node with `node --cpu-prof` into DIR/node<i>; prints the load window per node for bench/cpuprofile-top.ts --from/--to. */
    'cpu-prof': { type: 'string' },
  },
});
const nodesN = Number(a.nodes);
const duration = Number(a.duration) * 1000;

interface Node {
  url: string;
  ws: string;
  proc: ChildProcess;
  dir: string;
  /** performance.now() when the process was forked (its profile starts about then). */
  forkedAt: number;
  profDir?: string;
}

async function startNode(env: Record<string, string>, index: number): Promise<Node> {
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'magpie-bench-cluster-'));
  const profDir = a['cpu-prof'] ? resolve(a['cpu-prof'], `node${index + 1}`) : undefined;
  if (profDir) mkdirSync(profDir, { recursive: true });
  const forkedAt = performance.now();
  const proc = fork(MAIN, [], {
    execArgv: serverExecArgv(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []),
    env: serverEnv({ MAGPIE_PORT: '0', MAGPIE_HOST: '127.0.0.1', MAGPIE_DATA_DIR: dir, MAGPIE_LOG_LEVEL: 'warn', MAGPIE_USER_RATE: '100000', MAGPIE_USER_BURST: '100000', MAGPIE_IP_RATE: '100000', MAGPIE_IP_BURST: '100000', MAGPIE_ADMIN_TOKEN: ADMIN_TOKEN, MAGPIE_DB_STATEMENT_STATS: '1', PGAPPNAME: `magpie-node${index + 1}`, ...env }),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    proc.on('message', (m: { ready?: string }) => m.ready && resolve(m.ready.replace('localhost', '127.0.0.1')));
    proc.on('exit', (c) => reject(new Error(`node exited with ${c}`)));
  });
  return { url, ws: url.replace('http', 'ws') + '/ws', proc, dir, forkedAt, ...(profDir ? { profDir } : {}) };
}

async function api(base: string, method: string, path: string, body?: unknown, token?: string): Promise<any> {
  const r = await fetch(base + path, { method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
  const j = await r.json();
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

async function account(base: string): Promise<{ userId: string; token: string }> {
  const username = `b${randomBytes(5).toString('hex')}`;
  await api(base, 'POST', '/api/register', { username, password: 'bench-password-1' });
  const r = await api(base, 'POST', '/api/login', { username, password: 'bench-password-1', deviceId: 'd1', platform: 'web' });
  return { userId: r.userId, token: r.token };
}

class Client {
  private next = 1;
  private readonly pending = new Map<number, (f: any) => void>();
  onMsg: (f: any) => void = () => {};
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      const parsed = JSON.parse(d.toString());
      for (const f of Array.isArray(parsed) ? parsed : [parsed]) {
        if ((f.type === 'reply' || f.type === 'error') && this.pending.has(f.id)) {
          this.pending.get(f.id)!(f);
          this.pending.delete(f.id);
        } else if (f.type === 'msg') {
          this.onMsg(f);
          this.ws.send(JSON.stringify({ type: 'ack', inboxSeq: f.inboxSeq }));
        }
      }
    });
  }
  static async open(url: string, token: string): Promise<Client> {
    const ws = new WebSocket(url);
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    const c = new Client(ws);
    const w = await c.request({ type: 'hello', versions: [1], token, inboxSeq: 0, caps: ['ack', 'batch'] });
    if (w.type !== 'reply') throw new Error(JSON.stringify(w));
    return c;
  }
  request(f: Record<string, unknown>): Promise<any> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.ws.send(JSON.stringify({ ...f, id }));
    });
  }
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((x, y) => x - y);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
}

async function main(): Promise<void> {
  const db = `magpie_bench_${randomBytes(4).toString('hex')}`;
  const admin = postgres(PG, { max: 1, onnotice: () => {} });
  let env: Record<string, string> = {};
  if (a.store === 'postgres') {
    await admin.unsafe(`CREATE DATABASE "${db}"`);
    if (a['lock-log']) {
      await admin.unsafe(`ALTER DATABASE "${db}" SET log_lock_waits = on`);
      await admin.unsafe(`ALTER DATABASE "${db}" SET deadlock_timeout = '${Number(a['lock-log'])}ms'`);
      console.log(`lock waits over ${Number(a['lock-log'])} ms of database ${db} go to PostgreSQL's log`);
    }
    if (a['slow-log']) {
      await admin.unsafe(`ALTER DATABASE "${db}" SET log_min_duration_statement = ${Number(a['slow-log'])}`);
      console.log(`statements over ${Number(a['slow-log'])} ms in database ${db} go to PostgreSQL's log`);
    }
    const u = new URL(PG);
    u.pathname = `/${db}`;
    env = { MAGPIE_STORE: u.toString(), ...(nodesN > 1 ? { MAGPIE_NATS: NATS } : {}) };
  }
  const nodes: Node[] = [];
  for (let i = 0; i < nodesN; i++) nodes.push(await startNode(env, i));
  const load0 = loadavg()[0]!.toFixed(1);
  let sampler: { stop(): Promise<void> } | null = null;
  let cpuSampler: { stop(msgs: number): Promise<void> } | null = null;
  let cpu0: number[] = [];
  /** Each node's CPU by thread name when the load started. */
  let threads0: Map<string, number>[] = [];
  /** This process (the load generator) and the NATS server on this machine, if found (/proc). */
  const natsPid = findPid('nats-server');
  let others0: { gen: NodeJS.CpuUsage; nats: number } | null = null;
  const pg: { cpu0: Map<number, number> | null } = { cpu0: null };
  let loadAt = 0;
  let stmts0: Map<string, number>[] = [];
  let db0: DbStats | null = null;
  // Called when the load starts (after accounts and connections are set up).
  const loadStarts = async (): Promise<void> => {
    if (a.store === 'postgres') pg.cpu0 = await backendCpu(admin, db);
    if (a.store === 'postgres') stmts0 = await Promise.all(nodes.map(statementCounts));
    if (a.store === 'postgres') db0 = await dbStats(admin, db);
    if (a.waits && a.store === 'postgres') sampler = sampleWaits(db);
    if (a['pg-cpu'] && a.store === 'postgres') cpuSampler = sampleBackendCpu(db);
    cpu0 = nodes.map((n) => cpuSeconds(n.proc.pid!));
    threads0 = nodes.map((n) => threadCpu(n.proc.pid!));
    others0 = { gen: process.cpuUsage(), nats: natsPid === null ? NaN : cpuSeconds(natsPid) };
    loadAt = performance.now();
    // (An outside profiler, e.g. perf record -p on each node, may start here.)
    console.log(`load starts; node pids ${nodes.map((n) => n.proc.pid).join(' ')}`);
  };
  try {
    if (a.scenario === 'group') await groupScenario(nodes, loadStarts);
    else await dmScenario(nodes, loadStarts);
  } finally {
    if (sampler) await (sampler as { stop(): Promise<void> }).stop();
    if (cpuSampler) await (cpuSampler as { stop(msgs: number): Promise<void> }).stop(sentCount);
    if (a.waits) await printNodeMetrics(nodes);
    if (cpu0.length) console.log(`node CPU during the load (s): ${nodes.map((n, i) => (cpuSeconds(n.proc.pid!) - cpu0[i]!).toFixed(1)).join(', ')}${sentCount > 0 ? ` (${nodes.map((n, i) => (((cpuSeconds(n.proc.pid!) - cpu0[i]!) * 1000) / sentCount).toFixed(1)).join(', ')} ms per message)` : ''}`);
    if (threads0.length && sentCount > 0) {
      // Where each node's CPU went by thread: the event loop ("node"/"MainThread"), V8's GC and compiler helpers, libuv's pool.
      for (const [i, n] of nodes.entries()) {
        const now = threadCpu(n.proc.pid!);
        const d = [...now].map(([k, v]) => [k, v - (threads0[i]!.get(k) ?? 0)] as const).filter(([, v]) => v > 0).sort((x, y) => y[1] - x[1]);
        console.log(`  node ${i + 1} CPU by thread (ms per message): ${d.map(([k, v]) => (k === 'main wakeups' ? `main thread context switches ${(v / sentCount).toFixed(0)}` : `${k} ${((v * 1000) / sentCount).toFixed(1)}`)).join(', ')}`);
      }
    }
    // (Set in loadStarts: TypeScript cannot see that from here.)
    const o = others0 as { gen: NodeJS.CpuUsage; nats: number } | null;
    if (o && sentCount > 0) {
      const g = process.cpuUsage(o.gen);
      const gen = (g.user + g.system) / 1e6;
      const nats = natsPid === null ? NaN : cpuSeconds(natsPid) - o.nats;
      console.log(`load generator CPU during the load (s): ${gen.toFixed(1)} (${((gen * 1000) / sentCount).toFixed(1)} ms per message); NATS server: ${Number.isFinite(nats) ? `${nats.toFixed(1)} (${((nats * 1000) / sentCount).toFixed(1)} ms per message; shared with anything else on it)` : 'not found'}`);
    }
    if (stmts0.length && sentCount > 0) await printStatements(nodes, stmts0, sentCount);
    const d0 = db0 as DbStats | null;
    if (d0 && sentCount > 0) {
      const d1 = await dbStats(admin, db);
      const per = (x: number) => (x / sentCount).toFixed(1);
      console.log(
        `PostgreSQL (pg_stat_database / pg_stat_user_tables, ~1 s stats lag): ${per(d1.commits - d0.commits)} commits per message; rows read per message by sequential scans: ` +
          `${[...d1.seqRead].map(([t, v]) => [t, v - (d0.seqRead.get(t) ?? 0)] as const).filter(([, v]) => v > 0).sort((x, y) => y[1] - x[1]).slice(0, 6).map(([t, v]) => `${t} ${per(v)}`).join(', ') || 'none'}`,
      );
    }
    if (pg.cpu0) {
      // The bench database's backends (those that lived through the load; PostgreSQL on this machine).
      const now = await backendCpu(admin, db);
      let sum = 0;
      const byApp = new Map<string, { n: number; cpu: number; started: number }>();
      for (const [pid, s] of now) {
        // A backend that started during the load counts from its start (its connection's first statements included).
        const d = s - (pg.cpu0.get(pid) ?? 0);
        sum += d;
        const app = backendApp.get(pid) || '?';
        const e = byApp.get(app) ?? { n: 0, cpu: 0, started: 0 };
        e.n++;
        e.cpu += d;
        if (!pg.cpu0.has(pid)) e.started++;
        byApp.set(app, e);
      }
      const ended = [...pg.cpu0.keys()].filter((pid) => !now.has(pid)).length;
      console.log(`PostgreSQL backends' CPU during the load (s): ${sum.toFixed(1)} (${now.size} backends at the end; ${ended} ended during the load, their CPU not counted)`);
      const per = (x: number) => (sentCount > 0 ? ((x * 1000) / sentCount).toFixed(1) : '?');
      console.log(`  by application_name: ${[...byApp].sort((x, y) => x[0].localeCompare(y[0])).map(([k, e]) => `${k} ${e.n} backends (${e.started} new) ${e.cpu.toFixed(2)} s = ${per(e.cpu)} ms/msg`).join('; ')}`);
    }
    if (loadAt > 0) {
      const end = loadEndAt || performance.now();
      for (const n of nodes) {
        if (n.profDir) console.log(`  profile: node --import tsx bench/cpuprofile-top.ts ${n.profDir}/*.cpuprofile --from ${((loadAt - n.forkedAt) / 1000).toFixed(1)} --to ${((end - n.forkedAt) / 1000).toFixed(1)}`);
      }
    }
    console.log(`load average at start ${load0}, at end ${loadavg()[0]!.toFixed(1)} (2 cores, shared with other work)`);
    await Promise.all(nodes.map((n) => new Promise((r) => (n.proc.once('exit', r), n.proc.kill('SIGTERM')))));
    for (const n of nodes) rmSync(n.dir, { recursive: true, force: true });
    if (a.store === 'postgres') await admin.unsafe(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
    await admin.end({ timeout: 2 });
  }
}

/** Messages the scenario sent (group) or delivered (dm) during the load: the per-message denominators. */
let sentCount = 0;

/** A node's PostgreSQL statements so far, by statement (its /metrics, MAGPIE_DB_STATEMENT_STATS=1). */
async function statementCounts(n: Node): Promise<Map<string, number>> {
  const text = await (await fetch(`${n.url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^magpie_db_statements_total\{statement="((?:[^"\\]|\\.)*)"\} (\S+)$/gm)) out.set(m[1]!.replace(/\\(.)/g, '$1'), Number(m[2]));
  return out;
}

/** Per node: statements and transactions (BEGIN) per message during the load, and the most sent statements. */
async function printStatements(nodes: Node[], before: Map<string, number>[], msgs: number): Promise<void> {
  console.log(`PostgreSQL statements per message (${msgs} messages), per node:`);
  for (const [i, n] of nodes.entries()) {
    const now = await statementCounts(n);
    const delta = [...now].map(([k, v]) => [k, v - (before[i]!.get(k) ?? 0)] as const).filter(([, v]) => v > 0).sort((x, y) => y[1] - x[1]);
    const total = delta.reduce((s, [, v]) => s + v, 0);
    const begins = delta.find(([k]) => k.startsWith('BEGIN'))?.[1] ?? 0;
    console.log(`  node ${i + 1}: ${(total / msgs).toFixed(1)} statements, ${(begins / msgs).toFixed(2)} transactions per message; top: ${delta.slice(0, Number(a.statements)).map(([k, v]) => `${(v / msgs).toFixed(2)} ${k.slice(0, 38)}`).join(' | ')}`);
  }
}

/** --waits: each node's commit batches and times, and event-loop delay (its /metrics). */
async function printNodeMetrics(nodes: Node[]): Promise<void> {
  for (const [i, n] of nodes.entries()) {
    const text = await (await fetch(`${n.url}/metrics`)).text();
    const v = (name: string) => Number(/^(\S+) (\S+)$/m.exec(text.split('\n').filter((l) => l.startsWith(name + ' ')).join('\n'))?.[2] ?? NaN);
    const commits = v('magpie_commit_seconds_count');
    console.log(
      `  node ${i + 1}: ${commits} commits, mean batch ${(v('magpie_commit_batch_size_sum') / commits).toFixed(1)}, mean commit ${((v('magpie_commit_seconds_sum') / commits) * 1000).toFixed(0)} ms; ` +
        `event-loop delay p50 ${(v('magpie_process_nodejs_eventloop_lag_p50_seconds') * 1000).toFixed(0)} / p99 ${(v('magpie_process_nodejs_eventloop_lag_p99_seconds') * 1000).toFixed(0)} / max ${(v('magpie_process_nodejs_eventloop_lag_max_seconds') * 1000).toFixed(0)} ms`,
    );
  }
}

interface DbStats {
  commits: number;
  /** Table → rows read by sequential scans so far. */
  seqRead: Map<string, number>;
}

/** The bench database's committed transactions and each table's rows read by sequential scans (PostgreSQL's cumulative statistics). */
async function dbStats(admin: postgres.Sql, db: string): Promise<DbStats> {
  // Other sessions' statistics reach the shared counters within about a second of their transactions.
  await sleep(1100);
  const [c] = await admin<{ n: string }[]>`SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = ${db}`;
  // pg_stat_user_tables covers only the current database: ask the bench database itself.
  const u = new URL(PG);
  u.pathname = `/${db}`;
  const q = postgres(u.toString(), { max: 1, onnotice: () => {} });
  try {
    const rows = await q<{ relname: string; n: string }[]>`SELECT relname, seq_tup_read::text AS n FROM pg_stat_user_tables`;
    return { commits: Number(c?.n ?? 0), seqRead: new Map(rows.map((r) => [r.relname, Number(r.n)])) };
  } finally {
    await q.end({ timeout: 2 });
  }
}

/** CPU seconds of each backend of database `db` (pg_stat_activity pids, read from /proc: PostgreSQL on this machine). */
async function backendCpu(admin: postgres.Sql, db: string): Promise<Map<number, number>> {
  const rows = await admin<{ pid: number; app: string }[]>`SELECT pid, application_name AS app FROM pg_stat_activity WHERE datname = ${db}`;
  const out = new Map<number, number>();
  for (const r of rows) {
    const s = cpuSeconds(r.pid);
    if (!Number.isNaN(s)) out.set(r.pid, s);
    backendApp.set(r.pid, r.app);
  }
  return out;
}
/** application_name of each backend seen (the bench gives node i's connections `magpie-node<i>`, PGAPPNAME). */
const backendApp = new Map<number, string>();

/** utime + stime of a process, in seconds (Linux /proc). */
/** The pid of a process on this machine whose command is `name` (its first one), or null. */
function findPid(name: string): number | null {
  try {
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() === name) return Number(d);
      } catch {
        // gone meanwhile
      }
    }
  } catch {
    // no /proc
  }
  return null;
}

/** utime + stime of each thread of a process by thread name (/proc/PID/task/TID/comm; threads of one name summed), in seconds. */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        // Every thread of node 20 is called "node": the main thread is the one whose id is the pid.
        const name = Number(tid) === pid ? 'main' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim().replace(/\d+$/, '#').replace(/^node$/, 'other');
        const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
        out.set(`${name} user`, (out.get(`${name} user`) ?? 0) + Number(rest[11]) / 100);
        out.set(`${name} sys`, (out.get(`${name} sys`) ?? 0) + Number(rest[12]) / 100);
      } catch {
        // thread gone
      }
    }
    // The main thread's context switches: about one per wake-up of its event loop (+ being preempted).
    const st = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
    out.set('main wakeups', Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? NaN) + Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1] ?? NaN));
  } catch {
    // no /proc
  }
  return out;
}

function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return NaN;
  }
}

/**
 * --waits: what the bench database's sessions are doing, sampled every 10 ms (pg_stat_activity):
 * sessions by node (application_name `magpie-nodeN`), state and wait event; for lock waits the
 * lock waited for (pg_locks, not granted), the statement waited in, and the blockers' node,
 * state and statement.
 */
function sampleWaits(db: string): { stop(): Promise<void> } {
  const sql = postgres(PG, { max: 1, onnotice: () => {} });
  const counts = new Map<string, number>();
  /** Lock waits by what the blocking session was doing. */
  const blockers = new Map<string, number>();
  let samples = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const rows = await sql<{ app: string; state: string; wet: string | null; we: string | null; q: string; b: string | null; lk: string | null }[]>`
        SELECT a.application_name AS app, a.state, a.wait_event_type AS wet, a.wait_event AS we, left(regexp_replace(a.query, '[[:space:]]+', ' ', 'g'), 70) AS q,
          CASE WHEN a.wait_event_type = 'Lock' THEN (SELECT string_agg(b.application_name || ' ' || b.state || coalesce(' ' || b.wait_event_type || ':' || b.wait_event, '') || ' ' || left(regexp_replace(b.query, '[[:space:]]+', ' ', 'g'), 50), ' | ')
            FROM pg_stat_activity b WHERE b.pid = ANY(pg_blocking_pids(a.pid))) END AS b,
          CASE WHEN a.wait_event_type = 'Lock' THEN (SELECT string_agg(l.locktype || coalesce(' ' || l.relation::regclass::text, '') || ' ' || l.mode, ', ')
            FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted) END AS lk
        FROM pg_stat_activity a WHERE a.datname = ${db} AND a.pid <> pg_backend_pid() AND a.state <> 'idle'`;
      samples++;
      for (const r of rows) {
        const k = `${r.app || '?'}: ` + (r.state !== 'active' ? `${r.state}${r.wet === 'Client' || !r.wet ? '' : ` ${r.wet}:${r.we}`} after ${r.q}` : r.wet === 'Lock' ? `Lock:${r.we} in ${r.q}` : `active ${r.wet ?? 'CPU'}:${r.we ?? ''}${r.wet === 'Client' ? ` in ${r.q}` : ''}`);
        counts.set(k, (counts.get(k) ?? 0) + 1);
        if (r.b) {
          const kb = `${r.app || '?'}: ${r.lk ?? ''} in ${r.q.slice(0, 40)}  ⟵ held by: ${r.b}`;
          blockers.set(kb, (blockers.get(kb) ?? 0) + 1);
        }
      }
      await sleep(10);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      await sql.end({ timeout: 2 });
      console.log(`pg_stat_activity: ${samples} samples; mean sessions per sample in each state:`);
      for (const [k, n] of [...counts].sort((x, y) => y[1] - x[1]).slice(0, 20)) console.log(`  ${(n / samples).toFixed(2)}  ${k}`);
      if (blockers.size > 0) console.log('lock waits by blocker (mean waiting sessions per sample; the blocker\'s state and statement):');
      for (const [k, n] of [...blockers].sort((x, y) => y[1] - x[1]).slice(0, 12)) console.log(`  ${(n / samples).toFixed(3)}  ${k}`);
    },
  };
}

/** CPU time of a process in ns (/proc/PID/schedstat's first field), or NaN. */
function schedNs(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return NaN;
  }
}

/** --pg-cpu with --cpu-after: set when the load passes --cpu-after (from), and the messages sent after it (msgs). */
const pgCpuLate = { from: false, msgs: 0 };

/** --pg-cpu: the bench database's backends' CPU by node, by statement and per backend (see the option). */
function sampleBackendCpu(db: string): { stop(msgs: number): Promise<void> } {
  const sql = postgres(PG, { max: 1, onnotice: () => {} });
  /** Last CPU reading (ns) of each backend, its node and when it started (ms since the epoch). */
  const last = new Map<number, { ns: number; app: string; started: number }>();
  /** CPU (ns) per backend over the window, and by node + statement. */
  const perPid = new Map<number, { app: string; ns: number; started: number; hits: number }>();
  const byStmt = new Map<string, number>();
  /** CPU (ns) by node after --cpu-after. */
  const late = new Map<string, number>();
  let samples = 0;
  let stopped = false;
  const t0 = Date.now();
  const loop = (async () => {
    while (!stopped) {
      const rows = await sql<{ pid: number; app: string; q: string; st: Date }[]>`
        SELECT pid, application_name AS app, left(regexp_replace(query, '[[:space:]]+', ' ', 'g'), 60) AS q, backend_start AS st
        FROM pg_stat_activity WHERE datname = ${db} AND pid <> pg_backend_pid()`;
      samples++;
      for (const r of rows) {
        const ns = schedNs(r.pid);
        if (Number.isNaN(ns)) continue;
        const prev = last.get(r.pid);
        const app = r.app || '?';
        last.set(r.pid, { ns, app, started: r.st.getTime() });
        // A backend first seen after the first sample started meanwhile: all its CPU counts (its connection set-up too).
        const d = prev ? ns - prev.ns : samples > 1 ? ns : 0;
        const e = perPid.get(r.pid) ?? { app, ns: 0, started: r.st.getTime(), hits: 0 };
        e.ns += d;
        if (d > 0) e.hits++;
        perPid.set(r.pid, e);
        if (d > 0) byStmt.set(`${app}: ${r.q}`, (byStmt.get(`${app}: ${r.q}`) ?? 0) + d);
        if (pgCpuLate.from) late.set(app, (late.get(app) ?? 0) + d);
      }
      await sleep(10);
    }
  })();
  return {
    async stop(msgs: number) {
      stopped = true;
      await loop;
      await sql.end({ timeout: 2 });
      const per = (ns: number) => (msgs > 0 ? (ns / 1e6 / msgs).toFixed(2) : '?');
      console.log(`backend CPU (--pg-cpu, /proc schedstat every ~10 ms, ${samples} samples, ${msgs} messages), ms per message:`);
      const apps = new Map<string, { n: number; ns: number; busy: number; fresh: number; top: number[] }>();
      for (const e of perPid.values()) {
        const x = apps.get(e.app) ?? { n: 0, ns: 0, busy: 0, fresh: 0, top: [] };
        x.n++;
        x.ns += e.ns;
        if (e.ns > 0) x.busy++;
        if (e.started > t0) x.fresh++;
        x.top.push(e.ns);
        apps.set(e.app, x);
      }
      for (const [app, x] of [...apps].sort((p, q) => p[0].localeCompare(q[0]))) {
        const s = x.top.sort((p, q) => q - p).map((v) => per(v));
        console.log(`  ${app}: ${per(x.ns)} in ${x.n} backends (${x.busy} used CPU, ${x.fresh} opened during the load); per backend: ${s.join(' ')}`);
      }
      if (pgCpuLate.msgs > 0) {
        const lateSum = [...late.values()].reduce((x, y) => x + y, 0);
        console.log(`  after the first ${a['cpu-after']} s (${pgCpuLate.msgs} messages): ${[...late].sort((p, q) => p[0].localeCompare(q[0])).map(([app, ns]) => `${app} ${(ns / 1e6 / pgCpuLate.msgs).toFixed(2)}`).join(', ')} (sum ${(lateSum / 1e6 / pgCpuLate.msgs).toFixed(2)}) ms per message`);
      }
      console.log('  by node and latest statement:');
      for (const [k, ns] of [...byStmt].sort((p, q) => q[1] - p[1]).slice(0, 30)) console.log(`    ${per(ns)}  ${k}`);
    },
  };
}

/** When the scenario's load (and its tail) ended, before the clients close. */
let loadEndAt = 0;

async function groupScenario(nodes: Node[], loadStarts: () => Promise<void>): Promise<void> {
  const m = Number(a.members);
  const users = [];
  for (let i = 0; i < m; i++) users.push(await account(nodes[i % nodes.length]!.url));
  if (a['senders-one-node']) console.log(`group: the ${a.senders} senders are connected to node 1`);
  const g = (await api(nodes[0]!.url, 'POST', '/api/groups', { name: 'bench', members: users.slice(1).map((u) => u.userId) }, users[0]!.token)).group;
  const senders = Number(a.senders);
  const nodeOf = (i: number): Node => nodes[a['senders-one-node'] && i < senders ? 0 : i % nodes.length]!;
  const clients = await Promise.all(users.map((u, i) => Client.open(nodeOf(i).ws, u.token)));
  const sentAt = new Map<string, number>();
  const got = new Map<string, number>();
  /** clientMsgId → message id; message id → when its last member got it (wall clock). */
  const msgIdOf = new Map<string, string>();
  const lastAt = new Map<string, number>();
  const lat: number[] = [];
  /** send → last member of the messages sent after the warm-up (--warmup). */
  const warmLat: number[] = [];
  const warmupMs = Number(a.warmup) * 1000;
  let start = Infinity;
  const first: number[] = [];
  const replied: number[] = [];
  for (const c of clients) {
    c.onMsg = (f) => {
      const id = f.message.clientMsgId;
      const t0 = sentAt.get(id);
      if (t0 === undefined) return;
      const n = (got.get(id) ?? 0) + 1;
      got.set(id, n);
      if (n === 1) first.push(performance.now() - t0);
      if (n === m - 1) {
        lat.push(performance.now() - t0);
        if (t0 - start >= warmupMs) warmLat.push(performance.now() - t0);
        msgIdOf.set(id, f.message.id);
        lastAt.set(f.message.id, performance.timeOrigin + performance.now());
      }
    };
  }
  const interval = 1000 / Number(a.rate);
  await loadStarts();
  start = performance.now();
  let k = 0;
  let errors = 0;
  const cpuAfterMs = Number(a['cpu-after']) * 1000;
  let late: { k: number; cpu: number[] } | null = null;
  while (performance.now() - start < duration) {
    if (cpuAfterMs > 0 && !late && performance.now() - start >= cpuAfterMs) {
      late = { k, cpu: nodes.map((n) => cpuSeconds(n.proc.pid!)) };
      pgCpuLate.from = true;
    }
    const due = start + k * interval;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const id = `g${k}`;
    sentAt.set(id, performance.now());
    const t0 = performance.now();
    void clients[k % senders]!.request({ type: 'send', clientMsgId: id, conv: g.conv, kind: 'text', body: { text: 'bench message' } }).then((r) => {
      if (r.type === 'error') errors++;
      else replied.push(performance.now() - t0);
    });
    k++;
  }
  await sleep(5000);
  console.log(
    `group: ${nodes.length} node(s) ${a.store}, ${m} members, ${a.rate} msg/s for ${a.duration} s: sent ${k}, complete ${lat.length}, errors ${errors}; ` +
      `send → last member p50 ${pct(lat, 50).toFixed(0)} ms, p99 ${pct(lat, 99).toFixed(0)} ms, max ${Math.max(...lat).toFixed(0)} ms`,
  );
  if (warmupMs > 0) console.log(`  after the first ${a.warmup} s (${warmLat.length} messages): send → last member p50 ${pct(warmLat, 50).toFixed(0)} ms, p99 ${pct(warmLat, 99).toFixed(0)} ms, max ${Math.max(...warmLat).toFixed(0)} ms`);
  console.log(`  send → reply (durable) p50 ${pct(replied, 50).toFixed(0)} / p99 ${pct(replied, 99).toFixed(0)} ms; send → first member p50 ${pct(first, 50).toFixed(0)} / p99 ${pct(first, 99).toFixed(0)} ms`);
  sentCount = k;
  if (late) pgCpuLate.msgs = k - late.k;
  if (late && k > late.k) {
    const l = late;
    console.log(`  node CPU per message after the first ${a['cpu-after']} s (${k - l.k} messages): ${nodes.map((n, i) => (((cpuSeconds(n.proc.pid!) - l.cpu[i]!) * 1000) / (k - l.k)).toFixed(1)).join(', ')} ms (sum ${nodes.reduce((s, n, i) => s + ((cpuSeconds(n.proc.pid!) - l.cpu[i]!) * 1000) / (k - l.k), 0).toFixed(1)})`);
  }
  loadEndAt = performance.now();
  await printStages(nodes, [...msgIdOf.entries()].map(([cid, id]) => ({ id, sentAt: performance.timeOrigin + sentAt.get(cid)!, lastAt: lastAt.get(id)! })));
  for (const c of clients) c.ws.close();
}

interface TraceEvent {
  stage: string;
  at: number;
  node: string;
  durMs?: number;
}

/**
 * Where the time of each complete message went, from the nodes' trace journals (wall clock,
 * ms, p50 / p99 / max over messages). "node" is the sender's node; "other nodes" the others.
 */
async function printStages(nodes: Node[], msgs: { id: string; sentAt: number; lastAt: number }[]): Promise<void> {
  const stages = new Map<string, number[]>();
  const add = (k: string, v: number): void => {
    if (!Number.isFinite(v)) return;
    const l = stages.get(k);
    if (l) l.push(v);
    else stages.set(k, [v]);
  };
  /** --slow: [sentAt, line] of the messages slower than slowMs. */
  const slowMs = a.slow === undefined ? undefined : Number(a.slow);
  const slow: [number, string][] = [];
  const t0 = Math.min(...msgs.map((m) => m.sentAt));
  let missing = 0;
  const queue = [...msgs];
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let x = queue.shift(); x; x = queue.shift()) {
        const r = await fetch(`${nodes[0]!.url}/api/admin/messages/${encodeURIComponent(x.id)}/trace`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
        if (r.status !== 200) {
          missing++;
          continue;
        }
        const t = (await r.json()) as { events: TraceEvent[]; nodes: string[] };
        const send = t.events.find((e) => e.stage === 'send');
        const commit = t.events.find((e) => e.stage === 'commit');
        const fanout = t.events.find((e) => e.stage === 'fanout');
        if (!send || !commit || !fanout || t.nodes.length < nodes.length) {
          missing++;
          continue;
        }
        const commitEnd = commit.at + (commit.durMs ?? 0);
        add('client send → node got the frame', send.at - x.sentAt);
        add('frame → commit start (validation, queue behind the batch before)', commit.at - send.at);
        add('commit (the append transaction)', commit.durMs ?? NaN);
        add('commit end → fan-out start', fanout.at - commitEnd);
        add('fan-out (publishing every member event)', fanout.durMs ?? NaN);
        const byNode = new Map<string, number[]>();
        for (const e of t.events) {
          if (e.stage !== 'deliver') continue;
          const l = byNode.get(e.node);
          if (l) l.push(e.at);
          else byNode.set(e.node, [e.at]);
        }
        let lastDeliver = 0;
        for (const [node, ats] of byNode) {
          const where = node === fanout.node ? 'node' : 'other nodes';
          add(`fan-out start → first member's gateway write, ${where}`, Math.min(...ats) - fanout.at);
          add(`fan-out start → last member's gateway write, ${where}`, Math.max(...ats) - fanout.at);
          lastDeliver = Math.max(lastDeliver, ...ats);
        }
        add('last gateway write → last member client got it', x.lastAt - lastDeliver);
        add('total: client send → last member', x.lastAt - x.sentAt);
        if (slowMs !== undefined && x.lastAt - x.sentAt > slowMs) {
          const per = [...byNode].map(([nd, ats]) => `${nd}:${(Math.max(...ats) - fanout.at).toFixed(0)}`).join(' ');
          slow.push([
            x.sentAt,
            `  t=${((x.sentAt - t0) / 1000).toFixed(2)}s total ${(x.lastAt - x.sentAt).toFixed(0)} | via ${send.node}: frame ${(send.at - x.sentAt).toFixed(0)}, queue ${(commit.at - send.at).toFixed(0)}, commit ${(commit.durMs ?? 0).toFixed(0)}, to fan-out ${(fanout.at - commitEnd).toFixed(0)} | last write per node after fan-out start: ${per} | to client ${(x.lastAt - lastDeliver).toFixed(0)}`,
          ]);
        }
      }
    }),
  );
  if (slowMs !== undefined) {
    console.log(`messages slower than ${slowMs} ms (${slow.length}; ms; t = when sent, from the first send):`);
    for (const [, l] of slow.sort((x, y) => x[0] - y[0])) console.log(l);
  }
  console.log(`stages (ms, p50 / p99 / max over ${msgs.length - missing} traced messages${missing ? `, ${missing} without a complete trace` : ''}):`);
  for (const [k, v] of stages) console.log(`  ${pct(v, 50).toFixed(1).padStart(7)} / ${pct(v, 99).toFixed(1).padStart(7)} / ${Math.max(...v).toFixed(1).padStart(7)}  ${k}`);
}

async function dmScenario(nodes: Node[], loadStarts: () => Promise<void>): Promise<void> {
  const pairs = Number(a.pairs);
  const win = Number(a.window);
  const recvNode = nodes[nodes.length > 1 ? 1 : 0]!;
  const senders: { userId: string; token: string }[] = [];
  const receivers: { userId: string; token: string }[] = [];
  for (let i = 0; i < pairs; i++) {
    senders.push(await account(nodes[0]!.url));
    receivers.push(await account(recvNode.url));
  }
  const sc = await Promise.all(senders.map((u) => Client.open(nodes[0]!.ws, u.token)));
  const rc = await Promise.all(receivers.map((u) => Client.open(recvNode.ws, u.token)));
  let delivered = 0;
  let counting = false;
  for (const c of rc) c.onMsg = () => counting && delivered++;
  let stop = false;
  let errors = 0;
  await loadStarts();
  const loops = sc.map(async (c, i) => {
    let n = 0;
    const one = async (): Promise<void> => {
      while (!stop) {
        const r = await c.request({ type: 'send', clientMsgId: `d${i}-${n++}`, to: receivers[i]!.userId, kind: 'text', body: { text: 'bench message' } });
        if (r.type === 'error') errors++;
      }
    };
    await Promise.all(Array.from({ length: win }, one));
  });
  await sleep(3000); // warm-up
  counting = true;
  const t0 = performance.now();
  await sleep(duration);
  const secs = (performance.now() - t0) / 1000;
  const rate = delivered / secs;
  sentCount = delivered;
  counting = false;
  stop = true;
  await Promise.all(loops);
  console.log(`dm: ${nodes.length} node(s) ${a.store}, ${pairs} pairs × ${win} in flight, senders on node 1${nodes.length > 1 ? ', receivers on node 2' : ''}: ${rate.toFixed(0)} msg/s delivered over ${secs.toFixed(0)} s, errors ${errors}`);
  loadEndAt = performance.now();
  for (const c of [...sc, ...rc]) c.ws.close();
}

await main();
