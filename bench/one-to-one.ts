/**
 * 1:1 messaging benchmark: U online users chatting in pairs at a total of R messages/s.
 *
 *   npm run bench:1to1 -- --users 10000 --rate 5000 --duration 30
 *   npm run bench:1to1 -- --saturate            (closed loop: 16 pairs × 16 in flight, 15 s)
 *
 * 1. a fresh data dir; U users and one session token each are seeded straight into the
 *    server's SqliteStore (no scrypt per user);
 * 2. the real server as a child process (rate limits raised through MAGPIE_* env);
 * 3. W load-generator processes (bench/lib/one-to-one-worker.ts), each holding whole pairs
 *    (one process holds at most ~19 900 sockets; source addresses 127.0.0.x rotate every
 *    --per-address connections because of the ~28k ephemeral ports per address pair);
 * 4. all users connect (hello with caps ['batch']); the server's RSS before vs. after the
 *    connections, idle, gives memory per connection;
 * 5. every user sends text messages to its partner at R/U per second (open loop: the
 *    schedule does not slow down when the server does), the partner ACKs cumulatively;
 * 6. prints sent/s, delivered/s, ACK latency (send → reply after commit) and end-to-end
 *    latency (send → live delivery at the partner) p50/p99/max, errors, and the backlog.
 *
 * --saturate: closed loop instead of a schedule. The first user of every pair keeps --inflight
 * messages (16) in flight and sends the next one when a durable ACK arrives; defaults become
 * --users 32 --duration 15. Prints durable msg/s, ACK p50/p99, the server's CPU µs per message
 * (from /proc/<pid>/stat) and the machine's load average (a loaded machine skews all of it).
 *
 * Options (defaults): --users 10000 --rate 5000 --duration 30 --warmup 3 --drain 15
 *   --workers (1 per 10 000 users) --idle 5 --ping 30 --ack-ms 20 --connect-concurrency 200
 *   --per-address 20000 --caps batch,ack --quiet-wait 0 (wait up to N s for other load to stop; exit 75 if it does not)
 *   --data-dir DIR --keep-data --cpu-prof DIR --json FILE
 *   --server-env KEY=VALUE (repeatable, e.g. MAGPIE_SQLITE_SYNCHRONOUS=normal)
 *   --pre-converse: seed one message per pair before the server starts, so every 1:1 conversation
 *   exists already (the run then has no first messages: separates conversation creation from the
 *   server's cold start — JIT, caches — in the first seconds; also MAGPIE_BENCH_PRE_CONVERSE=1, for
 *   bench/alternate.mjs's `WORKTREE@MAGPIE_BENCH_PRE_CONVERSE=1`)
 *   --sdk-ids: clientMsgIds about the SDK's length (27–32 characters; the SDK's: 32) instead of `w0-<n>` (V8's JSON.parse
 *   internalizes string values of ≤ 10 characters: the short ids cost the server a string-table
 *   insert per message that SDK clients never cause); also MAGPIE_BENCH_SDK_IDS=1
 *   --relay: measure bench/lib/bare-durable-relay.mjs instead of Magpie (the floor: append,
 *   group fdatasync, reply and deliver after it; no store, no checks) with the same load
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { directConversationId, hashToken, openStore, type AppendRequest } from '@magpie/server';
import { ensureBuilt, SERVER_MAIN, seedConfig, serverEnv as forkEnv, serverExecArgv, logServerReady } from './lib/server.ts';
import { Histogram, type HistSummary } from './lib/hist.ts';
import { cpuMsOf, machineBusyMs, rssOf, sysCpuMsOf, threadCpuMsOf } from './lib/proc.ts';
import { execFileSync } from 'node:child_process';
import { benchToken, benchUserId } from './lib/users.ts';
import type { WorkerCommand, WorkerCounters, WorkerDone } from './lib/one-to-one-worker.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const WORKER = new URL('./lib/one-to-one-worker.ts', import.meta.url).pathname;
const RELAY = new URL('./lib/bare-durable-relay.mjs', import.meta.url).pathname;

const { values: a } = parseArgs({
  options: {
    users: { type: 'string' },
    rate: { type: 'string', default: '5000' },
    duration: { type: 'string' },
    saturate: { type: 'boolean', default: false },
    inflight: { type: 'string', default: '16' },
    warmup: { type: 'string', default: '3' },
    drain: { type: 'string', default: '15' },
    workers: { type: 'string' },
    idle: { type: 'string', default: '5' },
    ping: { type: 'string', default: '30' },
    'ack-ms': { type: 'string', default: '20' },
    'connect-concurrency': { type: 'string', default: '200' },
    'per-address': { type: 'string', default: '20000' },
    'data-dir': { type: 'string' },
    'keep-data': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    json: { type: 'string' },
    caps: { type: 'string', default: 'batch,ack' },
    'quiet-wait': { type: 'string', default: '0' },
    'server-env': { type: 'string', multiple: true, default: [] },
    'pre-converse': { type: 'boolean', default: process.env.MAGPIE_BENCH_PRE_CONVERSE === '1' },
    'sdk-ids': { type: 'boolean', default: process.env.MAGPIE_BENCH_SDK_IDS === '1' },
    relay: { type: 'boolean', default: false },
  },
  strict: true,
});

const saturate = a.saturate === true;
const U = Number(a.users ?? (saturate ? 32 : 10_000));
const R = Number(a.rate);
const durationS = Number(a.duration ?? (saturate ? 15 : 30));
const inflight = Number(a.inflight);
if (saturate && !(inflight >= 1)) throw new Error('--inflight must be ≥ 1');
const warmupS = Math.min(Number(a.warmup), durationS / 2);
if (!(U >= 2) || U % 2 !== 0) throw new Error('--users must be an even number ≥ 2 (users chat in pairs)');
if (!(R > 0)) throw new Error('--rate must be > 0');
const W = a.workers ? Number(a.workers) : Math.max(1, Math.ceil(U / 10_000));
if (U / W > 19_000) throw new Error(`--workers ${W}: ${Math.ceil(U / W)} sockets per process exceeds the ~19 900 open-file limit`);

const log = (s: string) => console.log(`[bench] ${s}`);
const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

async function main(): Promise<void> {
  await waitQuiet(Number(a['quiet-wait']));
  const nonce = randomBytes(4).toString('hex');
  const dataDir = a['data-dir'] ? resolve(a['data-dir']) : mkdtempSync(join(tmpdir(), 'magpie-bench-'));
  log(`server code: ${a.relay ? 'bare durable relay (bench/lib/bare-durable-relay.mjs)' : gitDescribe()}`);
  log(
    saturate
      ? `users ${U} (${U / 2} pairs), closed loop with ${inflight} messages in flight per pair on the durable ACK`
      : `users ${U}, rate ${R} msg/s (${fmt(R / U, 3)} per user)`,
  );
  log(`${durationS} s (warm-up ${warmupS} s), ${W} worker process(es), data ${dataDir}`);

  // 1-2. Seed users and sessions straight into the store.
  const t0 = Date.now();
  ensureBuilt();
  const store = await openStore(seedConfig(dataDir, { ringCapacity: 5000 }));
  const now = Date.now();
  for (let i = 0; i < U; i++) {
    const id = benchUserId(i);
    await store.createUser({ id, username: id, passwordHash: 'bench-no-login', nickname: id, createdAt: now });
    await store.createSession({
      tokenHash: hashToken(benchToken(nonce, i)),
      userId: id,
      deviceId: 'bench',
      platform: 'other',
      appVersion: 'bench',
      createdAt: now,
      expiresAt: now + 7 * 24 * 3600 * 1000,
    });
  }
  if (a['pre-converse']) {
    // One message per pair, 500 per append: every conversation of the run exists before it starts.
    for (let p0 = 0; p0 < U / 2; p0 += 500) {
      const batch: AppendRequest[] = [];
      for (let p = p0; p < Math.min(U / 2, p0 + 500); p++) {
        const [x, y] = [benchUserId(2 * p), benchUserId(2 * p + 1)];
        batch.push({ sender: x, clientMsgId: `pre-${p}`, conv: directConversationId(x, y), directMembers: [x, y], kind: 'text', body: { text: 'hi' }, bodyJson: '{"text":"hi"}', time: now, id: `mpre${String(p).padStart(8, '0')}` });
      }
      const out = await store.appendMessages(batch);
      if (!out.every((o) => o.ok)) throw new Error('--pre-converse: an append failed');
    }
  }
  await store.close();
  log(`seeded ${U} users + sessions${a['pre-converse'] ? ` + ${U / 2} conversations` : ''} in ${Date.now() - t0} ms`);

  // 3. The server.
  const serverEnv: Record<string, string> = {
    MAGPIE_PORT: '0',
    MAGPIE_HOST: '127.0.0.1',
    MAGPIE_DATA_DIR: dataDir,
    MAGPIE_LOG_LEVEL: 'warn',
    MAGPIE_USER_RATE: '1000000',
    MAGPIE_USER_BURST: '1000000',
    MAGPIE_IP_RATE: '1000000',
    MAGPIE_IP_BURST: '1000000',
    MAGPIE_MAX_CONNECTIONS_PER_IP: '0',
  };
  for (const kv of a['server-env'] ?? []) {
    const eq = kv.indexOf('=');
    if (eq > 0) serverEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  // The server's launch flags (packages/server/launch.json, as npm start runs it), then
  // MAGPIE_BENCH_SERVER_EXEC_ARGV: extra node flags (e.g. --trace-gc), space-separated. The
  // relay gets only the extra flags.
  const execArgv: string[] = a.relay ? (process.env.MAGPIE_BENCH_SERVER_EXEC_ARGV ?? '').split(' ').filter(Boolean) : serverExecArgv();
  if (a['cpu-prof']) {
    mkdirSync(resolve(a['cpu-prof']), { recursive: true });
    execArgv.unshift('--cpu-prof', '--cpu-prof-dir', resolve(a['cpu-prof']));
  }
  const tFork = Date.now();
  const server = a.relay
    ? fork(RELAY, [], { execArgv, env: { ...process.env, RELAY_DATA_DIR: dataDir }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: ROOT })
    : fork(SERVER_MAIN, [], { execArgv, env: forkEnv(serverEnv), stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: ROOT });
  const serverExited = new Promise<void>((r) => server.on('exit', () => r()));
  const url = await new Promise<string>((res, rej) => {
    const t = setTimeout(() => rej(new Error('server did not start in 30 s')), 30_000);
    server.on('message', (m: { ready?: string; heapSizeLimit?: number; maxSemiSpaceSizeMiB?: number | null }) => {
      if (m.ready) {
        clearTimeout(t);
        if (!a.relay) logServerReady(m);
        res(m.ready.replace('localhost', '127.0.0.1'));
      }
    });
    server.on('exit', (code) => rej(new Error(`server exited early (${code})`)));
  });
  const pid = server.pid!;
  const wsUrl = `${url.replace(/^http/, 'ws')}/ws`;
  log(`server pid ${pid} at ${url}${a['cpu-prof'] ? ` (CPU profile → ${resolve(a['cpu-prof'])})` : ''}`);
  await sleep(2000);
  const rssBase = rssOf(pid);
  const heapBase = await heapUsed(url);

  // 4. Workers connect all users.
  const workers: ChildProcess[] = [];
  let onStats: ((w: number, tick: number, c: WorkerCounters) => void) | undefined;
  const done: WorkerDone[] = [];
  const pairs = U / 2;
  let onConnected: ((m: { ok: number; failed: number; ms: number }) => void) | undefined;
  let onDone: (() => void) | undefined;
  for (let w = 0; w < W; w++) {
    const from = 2 * Math.floor((pairs * w) / W);
    const to = 2 * Math.floor((pairs * (w + 1)) / W);
    const child = fork(WORKER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.on('message', (m: { type: string } & Record<string, unknown>) => {
      if (m.type === 'connected') onConnected?.(m as unknown as { ok: number; failed: number; ms: number });
      else if (m.type === 'stats') onStats?.(m.worker as number, m.tick as number, m.counters as WorkerCounters);
      else if (m.type === 'done') {
        done.push(m as unknown as WorkerDone);
        if (done.length === W) onDone?.();
      }
    });
    const cmd: WorkerCommand = {
      cmd: 'init',
      worker: w,
      wsUrl,
      from,
      to,
      nonce,
      perAddress: Number(a['per-address']),
      connectConcurrency: Number(a['connect-concurrency']),
      pingSec: Number(a.ping),
      ackMs: Number(a['ack-ms']),
      caps: (a.caps ?? '').split(',').filter(Boolean),
      sdkIds: a['sdk-ids'],
    };
    child.send(cmd);
    workers.push(child);
  }
  const tc = Date.now();
  const connected = await new Promise<{ ok: number; failed: number }>((res) => {
    let got = 0;
    const sum = { ok: 0, failed: 0 };
    onConnected = (m) => {
      sum.ok += m.ok;
      sum.failed += m.failed;
      if (++got === W) res(sum);
    };
    for (const wk of workers) wk.send({ cmd: 'connect' } satisfies WorkerCommand);
  });
  log(`connected ${connected.ok}/${U} in ${Date.now() - tc} ms (${connected.failed} failed)`);
  await sleep(Number(a.idle) * 1000);
  const rssIdle = rssOf(pid);
  const heapIdle = await heapUsed(url);
  const perConn = (rssIdle - rssBase) / connected.ok;
  log(
    `server RSS ${mb(rssBase)} before connecting → ${mb(rssIdle)} with ${connected.ok} idle connections: ${fmt(perConn / 1024)} KB per connection` +
      (Number.isFinite(heapIdle - heapBase) ? ` (JS heap used ${fmt((heapIdle - heapBase) / connected.ok / 1024)} KB of it)` : ''),
  );

  // 5. Load. Workers report cumulative counters every second; a row is printed once all have reported tick n.
  const cpu0 = cpuMsOf(pid);
  const sys0 = sysCpuMsOf(pid);
  const threads0 = threadCpuMsOf(pid);
  const commits0 = await commitStats(url);
  const retries0 = await retryStats(url);
  const busy0 = machineBusyMs();
  const timeline: { t: number; sent: number; acked: number; delivered: number; inflight: number; serverCpu: number; loopCpu: number; busiestCpu: number; genCpu: number; otherCpu: number }[] = [];
  const ticks = new Map<number, WorkerCounters[]>();
  let prevThreads = threads0;
  let prev = { sent: 0, replies: 0, delivered: 0, cpu: cpu0, gen: 0, busy: busy0, t: Date.now(), loop: loopMs(threads0) };
  onStats = (w, tick, counters) => {
    const row = ticks.get(tick) ?? [];
    row[w] = counters;
    ticks.set(tick, row);
    if (row.filter(Boolean).length < W) return;
    ticks.delete(tick);
    const s = { sent: 0, replies: 0, errorReplies: 0, delivered: 0, gen: 0 };
    for (const c of row) {
      s.sent += c.sent;
      s.replies += c.replies;
      s.errorReplies += c.errorReplies;
      s.delivered += c.delivered;
      s.gen += c.cpuMs;
    }
    const t = Date.now();
    const dt = (t - prev.t) / 1000;
    const cpu = cpuMsOf(pid);
    const busy = machineBusyMs();
    const threadsNow = threadCpuMsOf(pid);
    const loop = loopMs(threadsNow);
    // The busiest other thread this second (with the SQLite writer thread on: the writer, or a GC helper in a burst).
    let busiest = 0;
    for (const [k, v] of threadsNow) if (!k.endsWith(' main')) busiest = Math.max(busiest, v - (prevThreads.get(k) ?? v));
    prevThreads = threadsNow;
    const r = {
      t: tick,
      sent: (s.sent - prev.sent) / dt,
      acked: (s.replies - prev.replies) / dt,
      delivered: (s.delivered - prev.delivered) / dt,
      inflight: s.sent - s.replies - s.errorReplies,
      serverCpu: (cpu - prev.cpu) / 10 / dt,
      loopCpu: (loop - prev.loop) / 10 / dt,
      busiestCpu: busiest / 10 / dt,
      genCpu: (s.gen - prev.gen) / 10 / dt,
      otherCpu: (busy - prev.busy - (cpu - prev.cpu) - (s.gen - prev.gen)) / 10 / dt,
    };
    timeline.push(r);
    log(
      `t=${String(r.t).padStart(3)}s sent/s ${fmt(r.sent, 0).padStart(6)}  acked/s ${fmt(r.acked, 0).padStart(6)}  delivered/s ${fmt(r.delivered, 0).padStart(6)}  unacked ${String(r.inflight).padStart(6)}  server CPU ${fmt(r.serverCpu, 0)}% (event loop ${fmt(r.loopCpu, 0)}%, busiest other thread ${fmt(r.busiestCpu, 0)}%, the rest ${fmt(r.serverCpu - r.loopCpu - r.busiestCpu, 0)}%)  generator ${fmt(r.genCpu, 0)}%  rest of machine ${fmt(r.otherCpu, 0)}%`,
    );
    prev = { sent: s.sent, replies: s.replies, delivered: s.delivered, cpu, gen: s.gen, busy, t, loop };
  };
  const allDone = new Promise<void>((r) => (onDone = r));
  const tRun = Date.now();
  const profFrom = (tRun - tFork) / 1000;
  for (let w = 0; w < W; w++) {
    const share = (2 * Math.floor((pairs * (w + 1)) / W) - 2 * Math.floor((pairs * w) / W)) / U;
    workers[w]!.send({ cmd: 'run', rate: R * share, durationMs: durationS * 1000, warmupMs: warmupS * 1000, drainMs: Number(a.drain) * 1000, ...(saturate ? { inflight } : {}) } satisfies WorkerCommand);
  }
  await allDone;
  onStats = undefined;
  const runCpuMs = cpuMsOf(pid) - cpu0;
  const threads1 = threadCpuMsOf(pid);
  const runSysMs = sysCpuMsOf(pid) - sys0;
  const commits1 = await commitStats(url);
  const retries1 = await retryStats(url);
  const commits = commits1.count - commits0.count;
  const committed = commits1.sum - commits0.sum;
  const runBusyMs = machineBusyMs() - busy0;
  const runWallMs = Date.now() - tRun;
  const rssAfter = rssOf(pid);

  // 6. Results.
  const ack = new Histogram();
  const e2e = new Histogram();
  const tot = { sent: 0, replies: 0, errorReplies: 0, delivered: 0, duplicates: 0, notices: 0, acksSent: 0, gaps: 0, closes: 0, genCpuMs: 0 };
  const win = { ms: 0, sent: 0, replies: 0, delivered: 0 };
  const errors: Record<string, number> = {};
  const closeCodes: Record<string, number> = {};
  let unanswered = 0;
  let undelivered = 0;
  let inflightAtStop = 0;
  let undeliveredAtStop = 0;
  let drainMs = 0;
  let loopP99 = 0;
  let loopMax = 0;
  for (const d of done) {
    ack.merge(d.ackLatency);
    e2e.merge(d.e2eLatency);
    tot.sent += d.counters.sent;
    tot.replies += d.counters.replies;
    tot.errorReplies += d.counters.errorReplies;
    tot.delivered += d.counters.delivered;
    tot.duplicates += d.counters.duplicates;
    tot.notices += d.counters.deliveredNotices;
    tot.acksSent += d.counters.acksSent;
    tot.gaps += d.counters.gaps;
    tot.closes += d.counters.closes;
    tot.genCpuMs += d.counters.cpuMs;
    win.ms = d.window.ms;
    win.sent += d.window.sent;
    win.replies += d.window.replies;
    win.delivered += d.window.delivered;
    for (const [k, v] of Object.entries(d.errors)) errors[k] = (errors[k] ?? 0) + v;
    for (const [k, v] of Object.entries(d.closeCodes)) closeCodes[k] = (closeCodes[k] ?? 0) + v;
    unanswered += d.unanswered;
    undelivered += d.undelivered;
    inflightAtStop += d.inflightAtStop;
    undeliveredAtStop += d.undeliveredAtStop;
    drainMs = Math.max(drainMs, d.drainMs);
    loopP99 = Math.max(loopP99, d.loopDelayMs.p99);
    loopMax = Math.max(loopMax, d.loopDelayMs.max);
  }
  const sentPerS = win.sent / (win.ms / 1000);
  const ackedPerS = win.replies / (win.ms / 1000);
  const deliveredPerS = win.delivered / (win.ms / 1000);
  const a1 = ack.summary();
  const e1 = e2e.summary();
  const keepsUp = deliveredPerS >= 0.95 * R && ackedPerS >= 0.95 * R && undeliveredAtStop < Math.max(100, R * 0.5) && unanswered === 0 && undelivered === 0;
  const lat = (h: HistSummary) => `p50 ${fmt(h.p50, 2)} ms  p90 ${fmt(h.p90, 2)} ms  p99 ${fmt(h.p99, 2)} ms  p99.9 ${fmt(h.p999, 2)} ms  max ${fmt(h.max, 1)} ms  (n=${h.count})`;
  console.log('');
  console.log(`=== 1:1 messaging: ${U} online users, ${saturate ? `closed loop (${inflight} in flight per pair)` : `offered ${R} msg/s`}, ${durationS} s (measured over the last ${fmt(win.ms / 1000, 0)} s) ===`);
  console.log(`sent/s           ${fmt(sentPerS, 0)}   (${saturate ? "closed loop" : `offered ${R}`})`);
  console.log(`acked/s          ${fmt(ackedPerS, 0)}   (durable: reply after commit)`);
  console.log(`delivered/s      ${fmt(deliveredPerS, 0)}   (live msg frames at the partner)`);
  console.log(`ACK latency      ${lat(a1)}`);
  console.log(`end-to-end       ${lat(e1)}`);
  console.log(`totals           sent ${tot.sent}, acked ${tot.replies}, error replies ${tot.errorReplies}, delivered ${tot.delivered} (+${tot.duplicates} duplicate retries), ack frames ${tot.acksSent}, delivered notices ${tot.notices}, inbox gaps ${tot.gaps}`);
  console.log(`backlog at stop  ${inflightAtStop} unacked sends, ${undeliveredAtStop} undelivered; after ${fmt(drainMs / 1000, 1)} s drain: ${unanswered} unacked, ${undelivered} undelivered`);
  // The relay has no /metrics: its lines would read NaN.
  if (!a.relay) console.log(`server retries   ${retries1.sent - retries0.sent} sent, ${retries1.held - retries0.held} held (magpie_retries_total, magpie_retries_held_total over the run and drain)`);
  console.log(`errors           ${Object.keys(errors).length ? JSON.stringify(errors) : 'none'}; server closes ${tot.closes ? JSON.stringify(closeCodes) : 'none'}`);
  console.log(`server memory    ${fmt(perConn / 1024)} KB per idle connection (RSS ${mb(rssBase)} → ${mb(rssIdle)} for ${connected.ok} connections; ${mb(rssAfter)} after the load)`);
  console.log(`CPU              server ${fmt(runCpuMs / runWallMs * 100, 0)}% of one core (${fmt(runCpuMs * 1000 / Math.max(1, tot.replies), 0)} µs per message, ${fmt((runSysMs / runCpuMs) * 100, 0)}% of it in the kernel), generator ${fmt(tot.genCpuMs / runWallMs * 100, 0)}% (its event-loop delay p99 ${fmt(loopP99, 1)} ms, max ${fmt(loopMax, 1)} ms)`);
  if (!a.relay) console.log(`group commit     ${commits} commits (${fmt(commits / (runWallMs / 1000), 0)}/s), ${fmt(committed / Math.max(1, commits), 1)} messages per commit`);
  const otherPct = ((runBusyMs - runCpuMs - tot.genCpuMs) / runWallMs) * 100;
  // Per thread (/proc/<pid>/task): `main` is the event loop; the SQLite writer and V8's helpers are `node` or their own names.
  const perThread: [string, number][] = [];
  for (const [key, ms] of threads1) {
    const d = ms - (threads0.get(key) ?? 0);
    if (d > 0) perThread.push([key.slice(key.indexOf(' ') + 1), (d * 1000) / Math.max(1, tot.replies)]);
  }
  perThread.sort((x, y) => y[1] - x[1]);
  const threadLine = `server threads   µs/msg: ${perThread.filter(([, us]) => us >= 0.5).map(([name, us]) => `${name} ${fmt(us, 1)}`).join(', ')}`;
  if (!saturate) console.log(threadLine);
  console.log(`generator CPU    ${fmt((tot.genCpuMs * 1000) / Math.max(1, tot.sent), 1)} µs per message sent`);
  console.log(`rest of machine  ${fmt(otherPct, 0)}% of one core (kernel softirq for loopback TCP, plus any other processes${otherPct > 60 ? ' — high: other work shared these 2 cores, treat the numbers with care' : ''})`);
  if (a['cpu-prof']) console.log(`profile          load phase ≈ seconds ${fmt(profFrom + warmupS, 0)}–${fmt(profFrom + durationS, 0)} of the server profile: node --import tsx bench/cpuprofile-top.ts ${resolve(a['cpu-prof'])}/CPU.*.${pid}.0.*.cpuprofile --from ${fmt(profFrom + warmupS, 0)} --to ${fmt(profFrom + durationS, 0)}`);
  if (saturate) {
    const load = loadAverage();
    console.log('');
    console.log(`=== saturated durable 1:1: ${U / 2} pairs × ${inflight} in flight, closed loop, ${durationS} s (measured over the last ${fmt(win.ms / 1000, 0)} s) ===`);
    console.log(`durable msg/s    ${fmt(ackedPerS, 0)}`);
    console.log(`ACK latency      p50 ${fmt(a1.p50, 2)} ms  p99 ${fmt(a1.p99, 2)} ms  (max ${fmt(a1.max, 1)} ms)`);
    console.log(`server CPU       ${fmt((runCpuMs * 1000) / Math.max(1, tot.replies), 1)} µs per message (${fmt((runCpuMs / runWallMs) * 100, 0)}% of one core, /proc/${pid}/stat)`);
    console.log(threadLine);
    console.log(`load average     ${load}${Number(load.split(' ')[0]) > 1.5 ? ' — a loaded machine: re-measure in a quiet window' : ''}`);
    if (a.json) writeFileSync(a.json, JSON.stringify({ mode: 'saturate', pairs: U / 2, inflight, durationS, ackedPerS, deliveredPerS, ack: a1, e2e: e1, serverCpuUsPerMessage: (runCpuMs * 1000) / Math.max(1, tot.replies), serverCpuPct: (runCpuMs / runWallMs) * 100, loadAverage: load, code: a.relay ? "bare-durable-relay" : gitDescribe() }, null, 2));
    for (const wk of workers) wk.send({ cmd: 'close' } satisfies WorkerCommand);
    server.kill('SIGTERM');
    await Promise.race([serverExited, sleep(15_000)]);
    if (!a['keep-data'] && !a['data-dir']) rmSync(dataDir, { recursive: true, force: true });
    return;
  }
  const fast = e1.p99 < 50;
  console.log(
    `verdict          ${
      !keepsUp
        ? `does NOT keep up with ${R} msg/s: a backlog grows and latency climbs`
        : fast
          ? `keeps up with ${R} msg/s, end-to-end p99 < 50 ms`
          : `throughput keeps up with ${R} msg/s, but end-to-end p99 is ${fmt(e1.p99, 0)} ms (≥ 50 ms: saturated or disturbed)`
    }`,
  );

  if (a.json) {
    writeFileSync(
      a.json,
      JSON.stringify(
        { users: U, rate: R, durationS, warmupS, workers: W, connected: connected.ok, sentPerS, ackedPerS, deliveredPerS, ack: a1, e2e: e1, totals: tot, errors, closeCodes, inflightAtStop, undeliveredAtStop, unanswered, undelivered, memPerConnKB: perConn / 1024, rssBase, rssIdle, rssAfter, serverCpuPct: (runCpuMs / runWallMs) * 100, genCpuPct: (tot.genCpuMs / runWallMs) * 100, generatorLoopDelayMs: { p99: loopP99, max: loopMax }, otherCpuPct: otherPct, serverSysPct: (runSysMs / runWallMs) * 100, commits, messagesPerCommit: committed / Math.max(1, commits), code: a.relay ? "bare-durable-relay" : gitDescribe(), keepsUp, timeline },
        null,
        2,
      ),
    );
  }

  // Tear down.
  for (const wk of workers) wk.send({ cmd: 'close' } satisfies WorkerCommand);
  server.kill('SIGTERM');
  await Promise.race([serverExited, sleep(15_000)]);
  if (!a['keep-data'] && !a['data-dir']) rmSync(dataDir, { recursive: true, force: true });
}

/** The machine is shared (2 cores): wait up to `maxS` seconds until others use < 15% of a core for 5 s in a row. */
async function waitQuiet(maxS: number): Promise<void> {
  if (!(maxS > 0)) return;
  const until = Date.now() + maxS * 1000;
  let quiet = 0;
  while (Date.now() < until) {
    const b0 = machineBusyMs();
    await sleep(1000);
    const pct = (machineBusyMs() - b0) / 10;
    quiet = pct < 15 ? quiet + 1 : 0;
    if (quiet >= 5) return;
  }
  log(`machine not quiet after ${maxS} s (other processes keep the CPUs busy); giving up`);
  process.exit(75);
}

function gitDescribe(): string {
  try {
    const rev = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'packages/server/src', 'packages/protocol/src'], { encoding: 'utf8' }).trim();
    return `${rev}${dirty ? ' + uncommitted changes in packages/server|protocol' : ''}`;
  } catch {
    return 'unknown';
  }
}

/** The event loop's (the server's main thread's) CPU ms in a threadCpuMsOf snapshot. */
function loopMs(threads: Map<string, number>): number {
  for (const [k, v] of threads) if (k.endsWith(' main')) return v;
  return NaN;
}

/** The 1, 5 and 15 minute load averages from /proc/loadavg. */
function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return 'unknown';
  }
}

function mb(bytes: number): string {
  return `${fmt(bytes / 1024 / 1024, 1)} MB`;
}

/** Group-commit counters from /metrics (magpie_commit_batch_size histogram): commits and messages committed. */
async function commitStats(url: string): Promise<{ count: number; sum: number }> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const count = /^magpie_commit_batch_size_count (\S+)/m.exec(text);
    const sum = /^magpie_commit_batch_size_sum (\S+)/m.exec(text);
    return { count: Number(count?.[1] ?? NaN), sum: Number(sum?.[1] ?? NaN) };
  } catch {
    return { count: NaN, sum: NaN };
  }
}

/** Downlink retries sent and held from /metrics (magpie_retries_total over all attempts, magpie_retries_held_total). */
async function retryStats(url: string): Promise<{ sent: number; held: number }> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    let sent = 0;
    for (const m of text.matchAll(/^magpie_retries_total\{[^}]*\} (\S+)/gm)) sent += Number(m[1]);
    const held = /^magpie_retries_held_total (\S+)/m.exec(text);
    return { sent, held: Number(held?.[1] ?? NaN) };
  } catch {
    return { sent: NaN, held: NaN };
  }
}

/** The server's used JS heap from /metrics (prom-client default metrics). */
async function heapUsed(url: string): Promise<number> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const m = /^magpie_process_nodejs_heap_size_used_bytes (\S+)/m.exec(text);
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

await main();
process.exit(0);
