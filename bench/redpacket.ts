/**
 * Red-packet open benchmark (SQLite, synchronous=FULL by default): opens/s and open latency
 * p50/p99/max for
 *   hot:  one packet with --shares shares, every share opened by a different user;
 *   many: --packets packets of --per-packet shares each, opened at once in random order.
 *
 *   npm run bench:redpacket
 *   npm run bench:redpacket -- --shares 50000 --concurrency 2000 --packets 200 --per-packet 200
 *
 * What runs is the server's own open path, in-process: RedPacketService.open → membership
 * check on the messaging store (SqliteStore.isMember, its own connection to the same file)
 * → grab filter → group commit → SqliteWalletStore.open (one IMMEDIATE transaction and one
 * fsync per batch: claim row, compare-and-set on the packet, two ledger entries, wallet
 * credit). Not included: HTTP (see --http) and the status message at the end of a packet
 * (a stub records it; it is one message per packet).
 *
 * Closed loop: --concurrency virtual clients each open, wait for the answer, and take the
 * next user. A client told "busy" (every share left is held by an open in flight) retries
 * after 1 ms; its latency counts from its first try.
 *
 * Options (defaults): --shares 20000 --packets 100 --per-packet 200 --concurrency 1000
 *   --synchronous full|normal (full) --data-dir DIR --keep-data --json FILE
 *   --http (also run both scenarios through the REST API of a server child process)
 *   --server-cpu-prof DIR (write a CPU profile of the server child process)
 *   --quiet-wait SEC (wait up to SEC seconds for the 1-minute load average to drop below 1)
 * The load average before and after each scenario is printed: on a shared 2-core machine a
 * busy neighbour halves the numbers. `opensPerCpuSecond` divides the opens by this process's
 * CPU time (in-process scenarios: the whole server path; HTTP: the load generator only, so
 * ignore it there).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import { fork } from 'node:child_process';
import http from 'node:http';
import Database from 'better-sqlite3';
import type { Message, OpenResult } from '@magpie/protocol';
import { hashToken, openStore, openWalletStore, RedPacketService, type MessagePoster, type Principal } from '@magpie/server';
import { ensureBuilt, SERVER_MAIN, seedConfig, serverEnv } from './lib/server.ts';

const { values: a } = parseArgs({
  options: {
    shares: { type: 'string', default: '20000' },
    packets: { type: 'string', default: '100' },
    'per-packet': { type: 'string', default: '200' },
    concurrency: { type: 'string', default: '1000' },
    synchronous: { type: 'string', default: 'full' },
    'data-dir': { type: 'string' },
    'keep-data': { type: 'boolean', default: false },
    json: { type: 'string' },
    http: { type: 'boolean', default: false },
    'quiet-wait': { type: 'string', default: '0' },
    'server-cpu-prof': { type: 'string' },
  },
});
const SHARES = Number(a.shares);
const PACKETS = Number(a.packets);
const PER_PACKET = Number(a['per-packet']);
const CONCURRENCY = Number(a.concurrency);
const SYNC = a.synchronous === 'normal' ? 'normal' : 'full';
const USERS = Math.max(SHARES, PACKETS * PER_PACKET);

interface Result {
  scenario: string;
  opens: number;
  seconds: number;
  opensPerSecond: number;
  p50ms: number;
  p99ms: number;
  maxms: number;
  busyRetries: number;
  allClaimed: number;
  /** Opens per second of this process's CPU time (user + sys): the capacity of one idle core, unaffected by neighbours' load. */
  opensPerCpuSecond: number;
  load: string;
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summarize(scenario: string, lat: number[], seconds: number, busyRetries: number, allClaimed: number): Result {
  lat.sort((x, y) => x - y);
  return {
    scenario,
    opens: lat.length,
    seconds: +seconds.toFixed(3),
    opensPerSecond: Math.round(lat.length / seconds),
    p50ms: +pct(lat, 50).toFixed(2),
    p99ms: +pct(lat, 99).toFixed(2),
    maxms: +(lat.at(-1) ?? 0).toFixed(2),
    busyRetries,
    allClaimed,
    opensPerCpuSecond: 0,
    load: '',
  };
}

/** Run `jobs` (user, packet) opens with CONCURRENCY virtual clients; latency per claim. */
async function drive(scenario: string, jobs: { user: string; packet: string }[], open: (user: string, packet: string) => Promise<OpenResult>): Promise<Result> {
  const lat: number[] = [];
  let next = 0;
  let busy = 0;
  let allClaimed = 0;
  const loadBefore = loadavg()[0]!.toFixed(1);
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const client = async (): Promise<void> => {
    for (;;) {
      const job = jobs[next++];
      if (!job) return;
      const t0 = performance.now();
      for (;;) {
        const r = await open(job.user, job.packet);
        if (r.result === 'claimed') {
          lat.push(performance.now() - t0);
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
  await Promise.all(Array.from({ length: CONCURRENCY }, client));
  const r = summarize(scenario, lat, (performance.now() - started) / 1000, busy, allClaimed);
  r.load = `${loadBefore}→${loadavg()[0]!.toFixed(1)}`;
  const cpu = process.cpuUsage(cpu0);
  r.opensPerCpuSecond = Math.round(lat.length / ((cpu.user + cpu.system) / 1e6));
  return r;
}

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

const userId = (i: number): string => `bu${i}`;
const HOT_CONV = 'g:bench-hot';
const MANY_CONV = 'g:bench-many';

/** Users, sessions (token = `bench-token-<i>`), and the two group conversations, in one transaction. */
async function seed(dataDir: string, dbPath: string): Promise<void> {
  // Create the schema through the public API; the fixture rows go straight into the file.
  await (await openStore(seedConfig(dataDir))).close();
  const db = new Database(dbPath);
  const now = Date.now();
  db.transaction(() => {
    const user = db.prepare('INSERT INTO users (id, username, password_hash, nickname, created_at) VALUES (?, ?, ?, ?, ?)');
    const session = db.prepare(
      'INSERT INTO sessions (token_hash, user_id, device_id, platform, app_version, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    const conv = db.prepare("INSERT INTO conversations (id, kind, last_seq, created_at) VALUES (?, 'group', 0, ?)");
    const member = db.prepare('INSERT INTO members (conv_id, user_id, joined_at) VALUES (?, ?, ?)');
    conv.run(HOT_CONV, now);
    conv.run(MANY_CONV, now);
    for (let i = 0; i <= USERS; i++) {
      user.run(userId(i), userId(i), 'x', userId(i), now);
      session.run(hashToken(`bench-token-${i}`), userId(i), 'd', 'web', 'bench', now, now + 24 * 3600_000);
      member.run(HOT_CONV, userId(i), now);
      member.run(MANY_CONV, userId(i), now);
    }
  })();
  db.close();
}

const stubPoster: MessagePoster & { posts: number } = {
  posts: 0,
  async send(p: Principal, input) {
    stubPoster.posts++;
    const message: Message = { id: `m${stubPoster.posts}`, conv: input.conv ?? '', seq: stubPoster.posts, sender: p.userId, kind: input.kind, body: input.body, time: Date.now(), clientMsgId: input.clientMsgId };
    return { message, duplicate: false };
  },
};

const principal = (id: string): Principal => ({ userId: id, deviceId: 'd', platform: 'web', tokenHash: '', appVersion: 'bench' });

async function inProcess(dataDir: string): Promise<Result[]> {
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
  const sender = userId(0);
  await wallet.topUp({ reference: 'bench-seed', userId: sender, amount: 1_000_000_000, now: Date.now() });

  const hot = await service.send(principal(sender), { clientMsgId: 'hot', conv: HOT_CONV, split: 'random', total: SHARES * 100, count: SHARES });
  const hotJobs = shuffle(Array.from({ length: SHARES }, (_, i) => ({ user: userId(i + 1), packet: hot.packet.id })));
  const r1 = await drive(`hot: 1 packet × ${SHARES} shares`, hotJobs, (u, p) => service.open(u, p));

  const many: string[] = [];
  for (let k = 0; k < PACKETS; k++) {
    many.push((await service.send(principal(sender), { clientMsgId: `many-${k}`, conv: MANY_CONV, split: 'random', total: PER_PACKET * 100, count: PER_PACKET })).packet.id);
  }
  // Each packet is opened by PER_PACKET distinct users (a random window of the members).
  const manyJobs = shuffle(
    many.flatMap((packet) => {
      const offset = Math.floor(Math.random() * (USERS - PER_PACKET));
      return Array.from({ length: PER_PACKET }, (_, i) => ({ user: userId(1 + offset + i), packet }));
    }),
  );
  const r2 = await drive(`many: ${PACKETS} packets × ${PER_PACKET} shares`, manyJobs, (u, p) => service.open(u, p));

  const report = await wallet.reconcile(Date.now());
  if (!report.ok) throw new Error(`reconciliation failed: ${JSON.stringify(report.checks.filter((c) => !c.ok))}`);
  console.log(`reconciliation: ok (${report.totals.claims} claims, ${report.totals.entries} ledger entries)`);
  await service.stop();
  await wallet.close();
  await store.close();
  return [r1, r2];
}

/** The same two scenarios through the REST API of a server child process (one keep-alive connection per virtual client). */
async function overHttp(dataDir: string): Promise<Result[]> {
  const ADMIN = 'bench-admin-token-0123456789';
  const proc = fork(SERVER_MAIN, [], {
    execArgv: a['server-cpu-prof'] ? ['--cpu-prof', '--cpu-prof-dir', a['server-cpu-prof']] : [],
    env: serverEnv({
      MAGPIE_PORT: '0',
      MAGPIE_HOST: '127.0.0.1',
      MAGPIE_DATA_DIR: dataDir,
      MAGPIE_LOG_LEVEL: 'warn',
      MAGPIE_ADMIN_TOKEN: ADMIN,
      MAGPIE_SQLITE_SYNCHRONOUS: SYNC,
      // The bench measures packets, not the payment PIN (bench/pin-check.ts does).
      MAGPIE_PAYMENTS_PIN_REQUIRED: '0',
      MAGPIE_IP_RATE: '10000000',
      MAGPIE_IP_BURST: '10000000',
      MAGPIE_MAX_CONNECTIONS_PER_IP: '0',
      MAGPIE_REDPACKET_MAX_COUNT: String(Math.max(SHARES, PER_PACKET)),
    }),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const base = await new Promise<string>((resolve, reject) => {
    proc.on('message', (m: { ready?: string }) => m.ready && resolve(m.ready.replace('localhost', '127.0.0.1')));
    proc.on('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  const agents = Array.from({ length: CONCURRENCY }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  let rr = 0;
  const call = <T>(method: string, path: string, token: string, body?: unknown, agent?: http.Agent): Promise<T> =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(base + path, { method, agent: agent ?? agents[rr++ % agents.length], headers: { authorization: `Bearer ${token}`, ...(payload ? { 'content-type': 'application/json' } : {}) } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => (res.statusCode === 200 || res.statusCode === 201 ? resolve(JSON.parse(text) as T) : reject(new Error(`${res.statusCode} ${text}`))));
      });
      req.on('error', reject);
      req.end(payload);
    });
  // Connect every virtual client first, 100 at a time (phones that are already online).
  for (let i = 0; i < agents.length; i += 100) await Promise.all(agents.slice(i, i + 100).map((ag) => call('GET', '/api/health', '', undefined, ag)));
  const token = (user: string): string => `bench-token-${user.slice(2)}`;
  await call('POST', '/api/admin/wallet/topup', ADMIN, { userId: userId(0), amount: 1_000_000_000, reference: 'bench-http' });
  // Real groups through the groups API (the in-process part only needs membership rows).
  const group = async (name: string, size: number): Promise<string> => {
    const ids = Array.from({ length: size }, (_, i) => userId(i + 1));
    const made = await call<{ group: { conv: string } }>('POST', '/api/groups', token(userId(0)), { name, members: ids.slice(0, 999) });
    for (let i = 999; i < ids.length; i += 1000) await call('POST', `/api/groups/${encodeURIComponent(made.group.conv)}/invite`, token(userId(0)), { users: ids.slice(i, i + 1000) });
    return made.group.conv;
  };
  const hotConv = await group('bench hot', SHARES);
  const manyConv = await group('bench many', USERS);
  const send = (clientMsgId: string, conv: string, count: number) =>
    call<{ packet: { id: string } }>('POST', '/api/redpackets', token(userId(0)), { clientMsgId, conv, split: 'random', total: count * 100, count });
  const open = (u: string, p: string) => call<OpenResult>('POST', `/api/redpackets/${p}/open`, token(u));
  const results: Result[] = [];
  try {
    const hot = await send('http-hot', hotConv, SHARES);
    results.push(await drive(`HTTP hot: 1 packet × ${SHARES} shares`, shuffle(Array.from({ length: SHARES }, (_, i) => ({ user: userId(i + 1), packet: hot.packet.id }))), open));
    const jobs: { user: string; packet: string }[] = [];
    for (let k = 0; k < PACKETS; k++) {
      const p = await send(`http-many-${k}`, manyConv, PER_PACKET);
      const offset = Math.floor(Math.random() * (USERS - PER_PACKET));
      for (let i = 0; i < PER_PACKET; i++) jobs.push({ user: userId(1 + offset + i), packet: p.packet.id });
    }
    results.push(await drive(`HTTP many: ${PACKETS} packets × ${PER_PACKET} shares`, shuffle(jobs), open));
    const report = await call<{ ok: boolean }>('GET', '/api/admin/reconcile', ADMIN);
    console.log(`HTTP reconciliation: ${report.ok ? 'ok' : 'FAILED'}`);
  } finally {
    for (const ag of agents) ag.destroy();
    proc.kill('SIGTERM');
    await new Promise((r) => proc.on('exit', r));
  }
  return results;
}

const dataDir = a['data-dir'] ?? mkdtempSync(join(tmpdir(), 'magpie-bench-rp-'));
const dbPath = join(dataDir, 'magpie.db');
const quietUntil = Date.now() + Number(a['quiet-wait']) * 1000;
while (loadavg()[0]! >= 1 && Date.now() < quietUntil) await new Promise((r) => setTimeout(r, 2000));
console.log(`red-packet bench: synchronous=${SYNC}, concurrency ${CONCURRENCY}, data ${dataDir}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
ensureBuilt();
await seed(dataDir, dbPath);
const results = await inProcess(dataDir);
if (a.http) results.push(...(await overHttp(dataDir)));
console.table(results);
if (a.json) writeFileSync(a.json, JSON.stringify({ at: new Date().toISOString(), synchronous: SYNC, concurrency: CONCURRENCY, results }, null, 2));
if (!a['keep-data'] && !a['data-dir']) rmSync(dataDir, { recursive: true, force: true });
