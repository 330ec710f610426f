/**
 * Red-packet open benchmark through the HTTP API of the real server (SQLite, synchronous=FULL
 * by default): opens/s, open latency p50/p99/max and the server's own CPU per open for
 *   hot:  one packet with --shares shares, every share opened by a different user;
 *   many: --packets packets of --per-packet shares each, opened at once in random order.
 *
 *   npm run bench:redpacket
 *   npm run bench:redpacket -- --scenario hot --shares 50000
 *   npm run bench:redpacket -- --in-process        (store level, no HTTP: see below)
 *
 * 1. a fresh data dir; users and one session token each are seeded through the server's
 *    Store API before it starts (bench/lib/group-setup.ts seedUsers: no scrypt per user);
 * 2. the compiled server as a child process (bench/lib/group-setup.ts startBenchServer, rate
 *    limits raised; the payment PIN off: bench/pin-check.ts measures that);
 * 3. the groups through the groups API, the sender's top-up through the operator API, the
 *    packets through POST /api/redpackets;
 * 4. this process is the load generator: --concurrency virtual clients, each with its own
 *    keep-alive connection, POST /api/redpackets/:id/open with
 *    `Authorization: Bearer <the opener's session token>`, closed loop: a client sends the
 *    next open when the answer to the last one arrived. A `busy` answer is retried after
 *    1 ms and its latency counts from the first try. (Each connection carries many users'
 *    opens, one after another: the server authenticates every request anyway.)
 *    --client raw (default): each connection is a bare TCP socket that writes the request as
 *    one string and reads the answer by its Content-Length (bench/lib/raw-http.ts): ~30–50 µs
 *    of generator CPU per open on the shared 2-core machine; --client http: node:http Agents
 *    (one socket each), ~100–130 µs per open — about what the server spends, on the same two
 *    cores, and its event-loop delay (p99 ~200 ms against ~15–35 ms) became part of every
 *    latency measured. The server sees the same requests either way.
 *    Before each timed phase, --warmup shares (2000) of another packet in the same group are
 *    opened through the same connections, untimed: the server's open path is compiled and
 *    warm when the clock starts. Without it the first ~1000 opens (every client firing at a
 *    cold server at once) made most of the p99 and swung it from run to run.
 * 5. after each scenario: the operator reconciliation (GET /api/admin/reconcile) must be ok,
 *    and the claims must add up (every share opened once, the amounts sum to the total).
 *
 * CPU: the server's from /proc/<pid>/stat (user + system, all its threads) over the open
 * phase only — "µs per open" and "opens per server CPU-second" are the server's alone. The
 * load generator's CPU (this process) is printed on its own line and never mixed in. Both
 * share the machine's two cores with each other and with anything else running.
 *
 * --in-process: the old store-level mode — RedPacketService.open called directly in this
 * process (membership check, grab filter, group commit, SqlWalletStore.open), no HTTP, no
 * authentication, no JSON. Its "opens per CPU-second" divides by this process's CPU (which
 * is the whole path there). Labelled "in-process" in every line it prints.
 *
 * Options (defaults): --scenario both|hot|many (both) --shares 20000 --packets 100
 *   --per-packet 200 --concurrency 1000 --client raw|http (raw) --warmup N (2000; 0 = none)
 *   --synchronous full|normal (full) --data-dir DIR
 *   --keep-data --json FILE --server-cpu-prof DIR (the server runs with node --cpu-prof)
 *   --quiet-wait SEC --in-process. MAGPIE_BENCH_SERVER_MAIN=<tree>/packages/server/dist/main.js
 *   runs another tree's compiled server under this load generator (bench/alternate.mjs
 *   --script-from WORKTREE sets it; the database is seeded with this checkout's schema, so only
 *   between commits with the same migrations).
 *
 * Output per scenario (bench/alternate.mjs reads the first scenario's lines):
 *   opens/s  ·  open latency … p50 … p99 …  ·  p99 by third (of the opens started in each third
 *   of the timed phase: where the tail lies)  ·  server CPU … µs per open, … opens per server
 *   CPU-second  ·  generator CPU …  ·  generator loop delay p99/max (how long an answer can wait
 *   in this process before its latency is taken)  ·  load average …
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import type { Message, OpenResult } from '@magpie/protocol';
import { openStore, openWalletStore, RedPacketService, type MessagePoster, type Principal } from '@magpie/server';
import { seedConfig } from './lib/server.ts';
import { cpuMsOf, threadCpuDelta, threadCpuMsOf } from './lib/proc.ts';
import { fmt, gitDescribe, log, makeGroup, seedUsers, startBenchServer, waitQuiet } from './lib/group-setup.ts';
import { benchToken, benchUserId } from './lib/users.ts';
import { RawHttpConnection } from './lib/raw-http.ts';

const { values: a } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'both' },
    shares: { type: 'string', default: '20000' },
    packets: { type: 'string', default: '100' },
    'per-packet': { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '1000' },
    synchronous: { type: 'string', default: 'full' },
    'data-dir': { type: 'string' },
    'keep-data': { type: 'boolean', default: false },
    json: { type: 'string' },
    'in-process': { type: 'boolean', default: false },
    http: { type: 'boolean', default: true }, // the default; kept so old command lines still run
    'quiet-wait': { type: 'string', default: '0' },
    'server-cpu-prof': { type: 'string' },
    client: { type: 'string', default: 'raw' },
    warmup: { type: 'string', default: '2000' },
  },
});
const SCENARIO = a.scenario!;
if (!['both', 'hot', 'many'].includes(SCENARIO)) throw new Error('--scenario is both, hot or many');
const SHARES = Number(a.shares);
/** Shares of the untimed warm-up packet opened through the same connections before each timed phase. */
const WARMUP = Number(a.warmup);
const PACKETS = Number(a.packets);
const PER_PACKET = Number(a['per-packet']);
const CONCURRENCY = Number(a.concurrency);
const SYNC = a.synchronous === 'normal' ? 'normal' : 'full';
const CLIENT = a.client === 'http' ? 'http' : 'raw';
if (a.client !== 'raw' && a.client !== 'http') throw new Error('--client is raw or http');
const WANT_HOT = SCENARIO !== 'many';
const WANT_MANY = SCENARIO !== 'hot';
/** Users 1..USERS open; user 0 sends. */
const USERS = Math.max(WANT_HOT ? SHARES : 0, WANT_MANY ? PACKETS * PER_PACKET : 0);
const NONCE = randomBytes(4).toString('hex');

interface Result {
  scenario: string;
  opens: number;
  seconds: number;
  opensPerSecond: number;
  p50ms: number;
  p99ms: number;
  /** p99 of the opens started in each third of the open phase (where the tail lies). */
  p99ByThird: [number, number, number];
  maxms: number;
  busyRetries: number;
  allClaimed: number;
  /** HTTP: the server process's CPU (/proc/<pid>/stat) over the open phase. In-process: this process's. */
  serverCpuMs: number;
  serverUsPerOpen: number;
  opensPerServerCpuSecond: number;
  serverCpuPct: number;
  /** HTTP only: this process (the load generator), not part of the server's figures. */
  generatorCpuMs: number | null;
  /**
   * This process's event-loop delay over the open phase (p99 and max, ms): time an answer can
   * sit in the generator before its latency is taken — part of every latency printed.
   */
  generatorLoopP99ms: number;
  generatorLoopMaxms: number;
  /** HTTP only: the server's CPU over the open phase by thread name (main loop, V8 GC workers, libuv pool, SQLite writer). */
  serverThreads: string | null;
  load: string;
}

const loadNow = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Run `jobs` (user, packet) opens with CONCURRENCY closed-loop clients (client k uses
 * `open(k, …)`); latency per claim. `serverPid` null: the server path runs in this process.
 */
async function drive(
  scenario: string,
  jobs: { user: number; packet: string }[],
  open: (client: number, user: number, packet: string) => Promise<OpenResult>,
  serverPid: number | null,
): Promise<Result> {
  const lat: number[] = [];
  /** performance.now() at each claimed open's first try, parallel to `lat`. */
  const startedAt: number[] = [];
  let next = 0;
  let busy = 0;
  let allClaimed = 0;
  const loadBefore = loadNow();
  const server0 = serverPid === null ? 0 : cpuMsOf(serverPid);
  const threads0 = serverPid === null ? null : threadCpuMsOf(serverPid);
  const gen0 = process.cpuUsage();
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const started = performance.now();
  const client = async (k: number): Promise<void> => {
    for (;;) {
      const job = jobs[next++];
      if (!job) return;
      const t0 = performance.now();
      for (;;) {
        const r = await open(k, job.user, job.packet);
        if (r.result === 'claimed') {
          lat.push(performance.now() - t0);
          startedAt.push(t0);
          break;
        }
        if (r.result === 'all_claimed') {
          allClaimed++;
          break;
        }
        busy++;
        await new Promise((res) => setTimeout(res, 1));
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, k) => client(k)));
  const wallMs = performance.now() - started;
  loop.disable();
  const gen = process.cpuUsage(gen0);
  const genMs = (gen.user + gen.system) / 1000;
  const serverCpuMs = serverPid === null ? genMs : cpuMsOf(serverPid) - server0;
  const serverThreads = serverPid === null || !threads0 ? null : threadCpuDelta(threads0, threadCpuMsOf(serverPid));
  const thirds: [number[], number[], number[]] = [[], [], []];
  for (let i = 0; i < lat.length; i++) thirds[Math.min(2, Math.floor(((startedAt[i]! - started) / wallMs) * 3))]!.push(lat[i]!);
  const p99ByThird = thirds.map((t) => +pct(t.sort((x, y) => x - y), 99).toFixed(1)) as [number, number, number];
  lat.sort((x, y) => x - y);
  return {
    scenario,
    opens: lat.length,
    seconds: +(wallMs / 1000).toFixed(3),
    opensPerSecond: Math.round(lat.length / (wallMs / 1000)),
    p50ms: +pct(lat, 50).toFixed(2),
    p99ms: +pct(lat, 99).toFixed(2),
    p99ByThird,
    maxms: +(lat.at(-1) ?? 0).toFixed(2),
    busyRetries: busy,
    allClaimed,
    serverCpuMs,
    serverUsPerOpen: +((serverCpuMs * 1000) / Math.max(1, lat.length)).toFixed(1),
    opensPerServerCpuSecond: Math.round(lat.length / (serverCpuMs / 1000)),
    serverCpuPct: +((serverCpuMs / wallMs) * 100).toFixed(0),
    generatorCpuMs: serverPid === null ? null : genMs,
    generatorLoopP99ms: +(loop.percentile(99) / 1e6).toFixed(1),
    generatorLoopMaxms: +(loop.max / 1e6).toFixed(1),
    serverThreads,
    load: `${loadBefore} → ${loadNow()}`,
  };
}

/** With --server-cpu-prof: where the open phase lies in the server's profile (seconds since its fork). */
let profWindow = '';

function print(r: Result, serverPid: number | null): void {
  console.log('');
  console.log(`=== ${r.scenario} ===`);
  console.log(`opens/s          ${r.opensPerSecond} (${r.opens} opens in ${fmt(r.seconds, 2)} s; ${r.busyRetries} busy retries, ${r.allClaimed} all_claimed)`);
  console.log(`open latency     p50 ${fmt(r.p50ms, 1)} ms, p99 ${fmt(r.p99ms, 1)} ms, max ${fmt(r.maxms, 1)} ms`);
  console.log(`p99 by third     ${r.p99ByThird.map((x) => fmt(x, 1)).join(' / ')} ms (opens started in the first / middle / last third of the open phase)`);
  if (serverPid === null) {
    console.log(`in-process CPU   ${fmt(r.serverUsPerOpen, 1)} µs per open, ${r.opensPerServerCpuSecond} opens per CPU-second of this process (in-process: the store-level path, no HTTP/auth/JSON; ${r.serverCpuPct}% of one core)`);
  } else {
    console.log(`server CPU       ${fmt(r.serverUsPerOpen, 1)} µs per open, ${r.opensPerServerCpuSecond} opens per server CPU-second (${r.serverCpuPct}% of one core; /proc/${serverPid}/stat, the server process only)`);
    if (r.serverThreads) console.log(`server threads   ${r.serverThreads}`);
    const g = r.generatorCpuMs!;
    console.log(`generator CPU    ${fmt((g * 1000) / Math.max(1, r.opens), 1)} µs per open (${fmt((g / (r.seconds * 1000)) * 100, 0)}% of one core; the load generator, this process, --client ${CLIENT} — not in the server figures)`);
  }
  console.log(`generator loop   delay p99 ${fmt(r.generatorLoopP99ms, 1)} ms, max ${fmt(r.generatorLoopMaxms, 1)} ms (this process's event loop: an answer waits this long before its latency is taken)`);
  if (profWindow) console.log(`profile window   ${profWindow} (node --import tsx bench/cpuprofile-top.ts <the .cpuprofile> ${profWindow})`);
  console.log(`load average     ${r.load}${Number(r.load.split(' ')[0]) > 1.5 ? ' — NOT a quiet machine' : ''}`);
}

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

/** Each of `packets` is opened by `per` distinct users (a random window of 1..USERS). */
function windowJobs(packets: string[], per: number): { user: number; packet: string }[] {
  return shuffle(
    packets.flatMap((packet) => {
      const offset = Math.floor(Math.random() * (USERS - per + 1));
      return Array.from({ length: per }, (_, i) => ({ user: 1 + offset + i, packet }));
    }),
  );
}

// ------------------------------------------------------------------ HTTP (the default)

const ADMIN = 'bench-admin-token-0123456789';

async function overHttp(dataDir: string): Promise<Result[]> {
  log(`seeding ${USERS + 1} users and sessions`);
  await seedUsers(join(dataDir, 'magpie.db'), 0, USERS + 1, NONCE);
  const server = await startBenchServer({
    dataDir,
    cpuProfDir: a['server-cpu-prof'],
    env: {
      MAGPIE_ADMIN_TOKEN: ADMIN,
      MAGPIE_SQLITE_SYNCHRONOUS: SYNC,
      MAGPIE_PAYMENTS_PIN_REQUIRED: '0',
      MAGPIE_REDPACKET_MAX_COUNT: String(Math.max(SHARES, PER_PACKET, WARMUP)),
      MAGPIE_REDPACKET_MAX_TOTAL: String(Math.max(SHARES, PER_PACKET, WARMUP) * 100),
    },
  });
  const base = new URL(server.url);
  let agents: http.Agent[] = [];
  let raws: RawHttpConnection[] = [];
  const hostHeader = `Host: ${base.host}\r\n`;
  const setupAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const call = <T>(method: string, path: string, token: string, body?: unknown, agent: http.Agent = setupAgent): Promise<T> =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const headers: Record<string, string> = { authorization: `Bearer ${token}` };
      if (payload) headers['content-type'] = 'application/json';
      const req = http.request({ host: base.hostname, port: base.port, path, method, agent, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => (res.statusCode === 200 || res.statusCode === 201 ? resolve(JSON.parse(text) as T) : reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`))));
      });
      req.on('error', reject);
      req.end(payload);
    });
  const token = (i: number): string => benchToken(NONCE, i);
  const results: Result[] = [];
  try {
    /**
     * Fresh connections right before each open phase, 100 at a time (phones that are already
     * online): a keep-alive connection left idle through a long setup is closed by the server.
     */
    const connect = async (): Promise<void> => {
      for (const ag of agents) ag.destroy();
      for (const c of raws) c.close();
      if (CLIENT === 'raw') {
        raws = Array.from({ length: CONCURRENCY }, () => new RawHttpConnection(base.hostname, Number(base.port)));
        const health = `GET /api/health HTTP/1.1\r\n${hostHeader}\r\n`;
        for (let i = 0; i < raws.length; i += 100) await Promise.all(raws.slice(i, i + 100).map((c) => c.request(health)));
        return;
      }
      agents = Array.from({ length: CONCURRENCY }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
      for (let i = 0; i < agents.length; i += 100) await Promise.all(agents.slice(i, i + 100).map((ag) => call('GET', '/api/health', '', undefined, ag)));
    };
    await call('POST', '/api/admin/wallet/topup', ADMIN, { userId: benchUserId(0), amount: 100_000_000, reference: `bench-${NONCE}` });
    const members = (n: number): string[] => Array.from({ length: n }, (_, i) => benchUserId(i + 1));
    const send = (clientMsgId: string, conv: string, count: number) =>
      call<{ packet: { id: string } }>('POST', '/api/redpackets', token(0), { clientMsgId, conv, split: 'random', total: count * 100, count });
    const WARMUP_N = Math.min(WARMUP, USERS);
    let warmConv: string | null = null;
    let warmups = 0;
    const warmGroup = async (): Promise<string> => (warmConv ??= await makeGroup(server.url, token(0), 'bench warm-up', members(WARMUP_N)));
    const timed = async (scenario: string, jobs: { user: number; packet: string }[]): Promise<Result> => {
      const wconv = WARMUP > 0 ? await warmGroup() : null;
      await connect();
      if (wconv !== null) {
        // The server's open path compiled and its caches warm, the connections used: without
        // this, the first thousand opens (1000 clients firing at a cold server at once) make
        // most of the p99 and swing it from run to run. The warm-up packet lives in a group of
        // its openers only, so its end (the status message, fanned out to the group) is small,
        // and it is over before the clock starts.
        const warm = (await send(`warm-${NONCE}-${warmups++}`, wconv, WARMUP_N)).packet.id;
        const w = await drive('warm-up', shuffle(Array.from({ length: WARMUP_N }, (_, i) => ({ user: i + 1, packet: warm }))), open, server.pid);
        await new Promise((r) => setTimeout(r, 1000));
        log(`warm-up: ${w.opens} opens of another packet (untimed; p99 ${fmt(w.p99ms, 1)} ms)`);
      }
      const from = (Date.now() - server.forkedAt) / 1000;
      const r = await drive(scenario, jobs, open, server.pid);
      if (a['server-cpu-prof']) profWindow = `--from ${from.toFixed(1)} --to ${((Date.now() - server.forkedAt) / 1000).toFixed(1)}`;
      return r;
    };
    const openHttp = (k: number, user: number, packet: string) => call<OpenResult>('POST', `/api/redpackets/${packet}/open`, token(user), undefined, agents[k]!);
    /** --client raw: the same request node:http sends (POST, Bearer token, empty body), written as one string. */
    const openRaw = async (k: number, user: number, packet: string): Promise<OpenResult> => {
      const path = `/api/redpackets/${packet}/open`;
      const r = await raws[k]!.request(`POST ${path} HTTP/1.1\r\n${hostHeader}authorization: Bearer ${token(user)}\r\ncontent-length: 0\r\n\r\n`);
      if (r.status !== 200) throw new Error(`POST ${path}: ${r.status} ${r.body}`);
      return JSON.parse(r.body) as OpenResult;
    };
    const open = CLIENT === 'raw' ? openRaw : openHttp;
    const check = async (packets: string[], per: number): Promise<void> => {
      for (const id of packets) {
        const d = await call<{ packet: { total: number; remainingCount: number; status: string }; claims: { user: string; amount: number }[] }>('GET', `/api/redpackets/${id}`, token(0));
        const sum = d.claims.reduce((s, c) => s + c.amount, 0);
        const users = new Set(d.claims.map((c) => c.user)).size;
        if (d.claims.length !== per || users !== per || sum !== d.packet.total || d.packet.status !== 'finished') {
          throw new Error(`packet ${id}: ${d.claims.length} claims by ${users} users summing to ${sum} of ${d.packet.total}, status ${d.packet.status}`);
        }
      }
      const report = await call<{ ok: boolean; checks: unknown }>('GET', '/api/admin/reconcile', ADMIN);
      if (!report.ok) throw new Error(`reconciliation failed: ${JSON.stringify(report.checks)}`);
      log(`checked: ${packets.length} packet(s) fully claimed, each share by a different user, amounts sum to the totals; reconciliation ok`);
    };
    if (WANT_HOT) {
      const conv = await makeGroup(server.url, token(0), 'bench hot', members(SHARES));
      const hot = (await send(`hot-${NONCE}`, conv, SHARES)).packet.id;
      const jobs = shuffle(Array.from({ length: SHARES }, (_, i) => ({ user: i + 1, packet: hot })));
      const r = await timed(`HTTP hot: 1 packet × ${SHARES} shares, ${CONCURRENCY} clients`, jobs);
      print(r, server.pid);
      results.push(r);
      await check([hot], SHARES);
    }
    if (WANT_MANY) {
      const conv = await makeGroup(server.url, token(0), 'bench many', members(USERS));
      const packets: string[] = [];
      for (let k = 0; k < PACKETS; k++) packets.push((await send(`many-${NONCE}-${k}`, conv, PER_PACKET)).packet.id);
      const r = await timed(`HTTP many: ${PACKETS} packets × ${PER_PACKET} shares, ${CONCURRENCY} clients`, windowJobs(packets, PER_PACKET));
      print(r, server.pid);
      results.push(r);
      await check(packets, PER_PACKET);
    }
  } finally {
    for (const ag of agents) ag.destroy();
    for (const c of raws) c.close();
    setupAgent.destroy();
    await server.stop();
  }
  return results;
}

// ------------------------------------------------------------------ in-process (store level)

const stubPoster: MessagePoster & { posts: number } = {
  posts: 0,
  async send(p: Principal, input) {
    stubPoster.posts++;
    const message: Message = { id: `m${stubPoster.posts}`, conv: input.conv ?? '', seq: stubPoster.posts, sender: p.userId, kind: input.kind, body: input.body, time: Date.now(), clientMsgId: input.clientMsgId };
    return { message, duplicate: false };
  },
};

const principal = (id: string): Principal => ({ userId: id, deviceId: 'd', platform: 'web', tokenHash: '', appVersion: 'bench' });

const IN_PROCESS_CONV = 'g:bench-in-process';

async function inProcess(dataDir: string): Promise<Result[]> {
  await seedUsers(join(dataDir, 'magpie.db'), 0, USERS + 1, NONCE);
  // The group's rows straight into the file (this mode has no server and no groups API).
  const db = new Database(join(dataDir, 'magpie.db'));
  db.transaction(() => {
    const now = Date.now();
    db.prepare("INSERT INTO conversations (id, kind, last_seq, created_at) VALUES (?, 'group', 0, ?)").run(IN_PROCESS_CONV, now);
    const member = db.prepare('INSERT INTO members (conv_id, user_id, joined_at) VALUES (?, ?, ?)');
    for (let i = 0; i <= USERS; i++) member.run(IN_PROCESS_CONV, benchUserId(i), now);
  })();
  db.close();
  const config = seedConfig(dataDir, { ringCapacity: 5000, sqliteSynchronous: SYNC });
  const store = await openStore(config);
  const wallet = await openWalletStore(config);
  const service = new RedPacketService(wallet, store, stubPoster, {
    expiryMs: 24 * 3600_000,
    maxCount: 1_000_000,
    maxTotal: Number.MAX_SAFE_INTEGER,
    grabHoldMs: 10_000,
    grabWaitMs: 2000,
    maxBalance: Number.MAX_SAFE_INTEGER,
    overAdmitRatio: 0.1,
    overAdmitMin: 2,
    sweepIntervalMs: 60_000,
    postRetryAfterMs: 30_000,
    postGiveUpMs: 600_000,
    commitDelayMs: 0,
    maxBatch: 500,
  });
  const sender = benchUserId(0);
  await wallet.topUp({ reference: 'bench-seed', userId: sender, amount: 1_000_000_000, now: Date.now() });
  const conv = IN_PROCESS_CONV;
  const open = (_k: number, u: number, p: string) => service.open(benchUserId(u), p);
  const results: Result[] = [];
  if (WANT_HOT) {
    const hot = await service.send(principal(sender), { clientMsgId: 'hot', conv, split: 'random', total: SHARES * 100, count: SHARES });
    const jobs = shuffle(Array.from({ length: SHARES }, (_, i) => ({ user: i + 1, packet: hot.packet.id })));
    results.push(await drive(`in-process hot: 1 packet × ${SHARES} shares (store level, no HTTP)`, jobs, open, null));
    print(results.at(-1)!, null);
  }
  if (WANT_MANY) {
    const many: string[] = [];
    for (let k = 0; k < PACKETS; k++) many.push((await service.send(principal(sender), { clientMsgId: `many-${k}`, conv, split: 'random', total: PER_PACKET * 100, count: PER_PACKET })).packet.id);
    results.push(await drive(`in-process many: ${PACKETS} packets × ${PER_PACKET} shares (store level, no HTTP)`, windowJobs(many, PER_PACKET), open, null));
    print(results.at(-1)!, null);
  }
  const report = await wallet.reconcile(Date.now());
  if (!report.ok) throw new Error(`reconciliation failed: ${JSON.stringify(report.checks.filter((c) => !c.ok))}`);
  log(`reconciliation: ok (${report.totals.claims} claims, ${report.totals.entries} ledger entries)`);
  await service.stop();
  await wallet.close();
  await store.close();
  return results;
}

// ------------------------------------------------------------------ main

await waitQuiet(Number(a['quiet-wait']));
const dataDir = a['data-dir'] ?? mkdtempSync(join(tmpdir(), 'magpie-bench-rp-'));
log(`red-packet bench (${a['in-process'] ? 'IN-PROCESS, store level' : 'through HTTP, server child process'}): server code ${process.env.MAGPIE_BENCH_SERVER_MAIN ? `${process.env.MAGPIE_BENCH_SERVER_MAIN} (MAGPIE_BENCH_SERVER_MAIN)` : gitDescribe()}, synchronous=${SYNC}, concurrency ${CONCURRENCY}, load average ${loadNow()}`);
const results = a['in-process'] ? await inProcess(dataDir) : await overHttp(dataDir);
if (a.json) writeFileSync(a.json, JSON.stringify({ at: new Date().toISOString(), mode: a['in-process'] ? 'in-process' : 'http', synchronous: SYNC, concurrency: CONCURRENCY, results }, null, 2));
if (!a['keep-data'] && !a['data-dir']) rmSync(dataDir, { recursive: true, force: true });
process.exit(0);
