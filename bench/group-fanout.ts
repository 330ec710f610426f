/**
 * Group fan-out benchmark: deliveries/s and time from send to the LAST online member's delivery.
 *
 *   npm run bench:groups                                   # both scenarios, defaults below
 *   npm run bench:groups -- --scenario super --super-rate 40 --cpu-prof /tmp/prof
 *
 * Scenarios (each on a fresh data dir and a fresh server process):
 *   normal  a 500-member normal group (write diffusion: an inbox pointer and a `msg` frame per
 *           member), all members online;
 *   super   a 10 000-member super group (read diffusion: one `advanced` frame string for every
 *           online member, no per-member rows), 5 000 members online.
 * In each, several senders (spread over the online members and the worker processes) send at
 * a fixed total rate (open loop). Every online member except the sender's own connection must
 * get every message; the bench reports incomplete messages and duplicates.
 *
 * Setup: users and session tokens go straight into the server's SqliteStore (no scrypt per
 * user); the group is made through the REST API (create + invite in chunks of 1000); the
 * server is the real one (packages/server/dist/main.js, as npm start runs it) as a child process; W load-generator
 * processes (bench/lib/group-worker.ts) hold the sockets (one process holds at most ~19 900;
 * source addresses 127.0.0.x rotate every --per-address connections).
 *
 * Options (defaults): --scenario both|normal|super (both) --senders 10 --duration 30 --warmup 5
 *   --drain 5 --normal-members 500 --normal-rate 100 --super-members 10000 --online 5000
 *   --super-rate 12 --workers (1 per 2 500 online) --text-bytes 40 --caps batch,ack --ack-ms 50
 *   --ping 30 --per-address 20000 --connect-concurrency 200 --cpu-prof DIR --json FILE
 *   --timeline PREFIX (per acked send: PREFIX.<scenario>.csv with its send, ACK, first and last member times)
 *   --server-env KEY=VALUE (repeatable) --quiet-wait S (wait up to S s for the machine to be quiet before each scenario)
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Histogram, type HistSummary } from './lib/hist.ts';
import { cpuMsOf, machineBusyMs, rssOf, threadCpuMsOf } from './lib/proc.ts';
import { benchToken, benchUserId } from './lib/users.ts';
import { cpuSplitOf, fmt, gitDescribe, groupInfo, log, machineLoad, makeGroup, mb, rowCounts, rowDelta, seedUsers, startBenchServer, waitQuiet, type RowCounts } from './lib/group-setup.ts';
import type { GroupWorkerCommand, GroupWorkerDone } from './lib/group-worker.ts';

const WORKER = new URL('./lib/group-worker.ts', import.meta.url).pathname;

const { values: a } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'both' },
    senders: { type: 'string', default: '10' },
    duration: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '5' },
    drain: { type: 'string', default: '5' },
    'normal-members': { type: 'string', default: '500' },
    'normal-rate': { type: 'string', default: '100' },
    'super-members': { type: 'string', default: '10000' },
    online: { type: 'string', default: '5000' },
    'super-rate': { type: 'string', default: '12' },
    workers: { type: 'string' },
    'text-bytes': { type: 'string', default: '40' },
    caps: { type: 'string', default: 'batch,ack' },
    'ack-ms': { type: 'string', default: '50' },
    ping: { type: 'string', default: '30' },
    'per-address': { type: 'string', default: '20000' },
    'connect-concurrency': { type: 'string', default: '200' },
    'cpu-prof': { type: 'string' },
    json: { type: 'string' },
    timeline: { type: 'string' },
    'server-env': { type: 'string', multiple: true, default: [] },
    'quiet-wait': { type: 'string', default: '0' },
  },
  strict: true,
});

export interface ScenarioSpec {
  name: string;
  members: number;
  online: number;
  /** Messages per second, all senders together. */
  rate: number;
  expectKind: 'group' | 'super';
}

export interface ScenarioResult {
  name: string;
  members: number;
  online: number;
  rate: number;
  senders: number;
  kind: string;
  messages: number;
  windowMessages: number;
  deliveriesPerS: number;
  expectedPerMessage: number;
  incomplete: number;
  notIncreasing: number;
  toLast: HistSummary;
  toFirst: HistSummary;
  ack: HistSummary;
  rssBase: number;
  rssIdle: number;
  rssMax: number;
  serverCpuPct: number;
  /** Server CPU (user + kernel) over the run divided by the messages acked in it (µs), and by their deliveries. */
  serverUsPerMessage: number;
  serverUsPerDelivery: number;
  /** Of serverCpuPct: the part spent in the kernel (socket writes on loopback). */
  serverSysPct: number;
  /** Per server thread (`main` = the event loop, the SQLite writer and V8's helpers `node`): µs per message. */
  threadsUsPerMessage: [string, number][];
  genCpuPct: number;
  otherCpuPct: number;
  rows: { before: RowCounts; after: RowCounts; perMessage: Record<keyof RowCounts, number> };
  errors: Record<string, number>;
  closeCodes: Record<string, number>;
  generatorLoopDelayMs: { p99: number; max: number };
  load: string;
}

const durationS = Number(a.duration);
const warmupS = Math.min(Number(a.warmup), durationS / 2);

async function runScenario(spec: ScenarioSpec): Promise<ScenarioResult> {
  const nonce = randomBytes(4).toString('hex');
  const dataDir = mkdtempSync(join(tmpdir(), 'magpie-bench-groups-'));
  const dbPath = join(dataDir, 'magpie.db');
  const S = Math.min(Number(a.senders), spec.online);
  const W = a.workers ? Number(a.workers) : Math.max(1, Math.ceil(spec.online / 2500));
  if (spec.online / W > 19_000) throw new Error(`--workers ${W}: too many sockets per process`);
  console.log('');
  log(`=== ${spec.name}: ${spec.members} members, ${spec.online} online, ${S} senders at ${spec.rate} msg/s in total, ${durationS} s (warm-up ${warmupS} s), ${W} worker(s) ===`);

  let t = Date.now();
  await seedUsers(dbPath, 0, spec.members, nonce);
  log(`seeded ${spec.members} users + sessions in ${Date.now() - t} ms`);
  const serverEnv: Record<string, string> = {};
  for (const kv of a['server-env'] ?? []) {
    const eq = kv.indexOf('=');
    if (eq > 0) serverEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const server = await startBenchServer({ dataDir, env: serverEnv, cpuProfDir: a['cpu-prof'] ? join(resolve(a['cpu-prof']), spec.name) : undefined });
  log(`server pid ${server.pid} at ${server.url}`);

  t = Date.now();
  const ownerToken = benchToken(nonce, 0);
  const conv = await makeGroup(server.url, ownerToken, spec.name, Array.from({ length: spec.members - 1 }, (_, i) => benchUserId(i + 1)));
  const info = await groupInfo(server.url, ownerToken, conv);
  log(`group ${conv}: kind ${info.kind}, ${info.memberCount} members, made through the REST API in ${Date.now() - t} ms`);
  if (info.kind !== spec.expectKind) throw new Error(`expected a ${spec.expectKind}, got ${info.kind}`);
  await sleep(1000);
  const rssBase = rssOf(server.pid);

  // Workers: contiguous ranges of the online users; senders spread evenly over them.
  const senderUsers = Array.from({ length: S }, (_, j) => Math.floor((j * spec.online) / S));
  const workers: ChildProcess[] = [];
  const ranges: number[][] = [];
  const done: GroupWorkerDone[] = [];
  let onConnected: ((m: { ok: number; failed: number }) => void) | undefined;
  let onDone: (() => void) | undefined;
  for (let w = 0; w < W; w++) {
    const from = Math.floor((spec.online * w) / W);
    const to = Math.floor((spec.online * (w + 1)) / W);
    const users = Array.from({ length: to - from }, (_, i) => from + i);
    ranges.push(users);
    const child = fork(WORKER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.on('message', (m: { type: string }) => {
      if (m.type === 'connected') onConnected?.(m as unknown as { ok: number; failed: number });
      else if (m.type === 'done') {
        done.push(m as GroupWorkerDone);
        if (done.length === W) onDone?.();
      }
    });
    child.send({
      cmd: 'init',
      worker: w,
      wsUrl: server.wsUrl,
      users,
      nonce,
      convs: [conv],
      perAddress: Number(a['per-address']),
      connectConcurrency: Math.max(1, Math.floor(Number(a['connect-concurrency']) / W)),
      pingSec: Number(a.ping),
      ackMs: Number(a['ack-ms']),
      caps: (a.caps ?? '').split(',').filter(Boolean),
    } satisfies GroupWorkerCommand);
    workers.push(child);
  }
  t = Date.now();
  const connected = await new Promise<{ ok: number; failed: number }>((res) => {
    let got = 0;
    const sum = { ok: 0, failed: 0 };
    onConnected = (m) => {
      sum.ok += m.ok;
      sum.failed += m.failed;
      if (++got === W) res(sum);
    };
    for (const wk of workers) wk.send({ cmd: 'connect' } satisfies GroupWorkerCommand);
  });
  log(`connected ${connected.ok}/${spec.online} in ${Date.now() - t} ms (${connected.failed} failed)`);
  await sleep(2000);
  const rssIdle = rssOf(server.pid);
  const before = rowCounts(dbPath, conv);
  await waitQuiet(Number(a['quiet-wait']));
  const load = await machineLoad();
  log(`machine: ${load}`);

  // Run.
  const startAt = Date.now() + 1000;
  const cpu0 = cpuMsOf(server.pid);
  const split0 = cpuSplitOf(server.pid);
  const threads0 = threadCpuMsOf(server.pid);
  const busy0 = machineBusyMs();
  let rssMax = rssIdle;
  const sampler = setInterval(() => {
    const r = rssOf(server.pid);
    if (r > rssMax) rssMax = r;
  }, 500);
  const allDone = new Promise<void>((r) => (onDone = r));
  for (let w = 0; w < W; w++) {
    const users = ranges[w]!;
    const senders = senderUsers
      .filter((u) => u >= users[0]! && u <= users.at(-1)!)
      .map((u) => ({ k: u - users[0]!, conv: 0, rate: spec.rate / S }));
    workers[w]!.send({ cmd: 'run', senders, startAt, warmupMs: warmupS * 1000, durationMs: durationS * 1000, drainMs: Number(a.drain) * 1000, textBytes: Number(a['text-bytes']) } satisfies GroupWorkerCommand);
  }
  await allDone;
  clearInterval(sampler);
  const runWallMs = Date.now() - startAt;
  const serverCpuMs = cpuMsOf(server.pid) - cpu0;
  const serverSysMs = cpuSplitOf(server.pid).sys - split0.sys;
  const threads1 = threadCpuMsOf(server.pid);
  const busyMs = machineBusyMs() - busy0;
  const after = rowCounts(dbPath, conv);

  // Merge: per seq, deliveries and the last arrival over all workers.
  const per = new Map<number, { count: number; first: number; last: number }>();
  for (const d of done) {
    for (const [seq, count, first, last] of d.receipts[0] ?? []) {
      const p = per.get(seq);
      if (p) {
        p.count += count;
        p.first = Math.min(p.first, first);
        p.last = Math.max(p.last, last);
      } else per.set(seq, { count, first, last });
    }
  }
  const expected = connected.ok - 1; // every online member but the sender's own connection
  const measureFrom = startAt + warmupS * 1000;
  const measureTo = startAt + durationS * 1000;
  const toLast = new Histogram();
  const toFirst = new Histogram();
  const ack = new Histogram();
  let messages = 0;
  let windowMessages = 0;
  let incomplete = 0;
  let windowFrames = 0;
  let notIncreasing = 0;
  let genCpuMs = 0;
  const errors: Record<string, number> = {};
  const closeCodes: Record<string, number> = {};
  let loopP99 = 0;
  let loopMax = 0;
  for (const d of done) {
    windowFrames += d.counters.windowFrames;
    notIncreasing += d.counters.notIncreasing;
    genCpuMs += d.counters.cpuMs;
    loopP99 = Math.max(loopP99, d.loopDelayMs.p99);
    loopMax = Math.max(loopMax, d.loopDelayMs.max);
    for (const [k, v] of Object.entries(d.errors)) errors[k] = (errors[k] ?? 0) + v;
    for (const [k, v] of Object.entries(d.closeCodes)) closeCodes[k] = (closeCodes[k] ?? 0) + v;
    for (const [, seq, sentAt, ackAt] of d.sends) {
      messages++;
      const p = per.get(seq);
      if (!p || p.count !== expected) incomplete++;
      if (sentAt < measureFrom || sentAt >= measureTo) continue;
      windowMessages++;
      ack.record(ackAt - sentAt);
      if (p && p.count === expected) {
        toLast.record(p.last - sentAt);
        toFirst.record(p.first - sentAt);
      }
    }
  }
  if (a.timeline) {
    // One row per acked send (ms after the run's start): sent, ACK, first and last member, seq.
    const rows: string[] = ['sent,ack,first,last,seq,worker'];
    for (const d of done) {
      for (const [, seq, sentAt, ackAt] of d.sends) {
        const p = per.get(seq);
        rows.push([sentAt - startAt, ackAt - sentAt, p ? p.first - sentAt : NaN, p && p.count === expected ? p.last - sentAt : NaN, seq, d.worker].map((x) => (typeof x === 'number' ? Math.round(x * 100) / 100 : x)).join(','));
      }
    }
    writeFileSync(`${a.timeline}.${spec.name}.csv`, rows.join('\n') + '\n');
  }
  const windowS = (measureTo - measureFrom) / 1000;
  const perMessage = Object.fromEntries(Object.entries(rowDelta(before, after)).map(([k, v]) => [k, messages ? v / messages : NaN])) as Record<keyof RowCounts, number>;
  const result: ScenarioResult = {
    name: spec.name,
    members: spec.members,
    online: connected.ok,
    rate: spec.rate,
    senders: S,
    kind: info.kind,
    messages,
    windowMessages,
    deliveriesPerS: windowFrames / windowS,
    expectedPerMessage: expected,
    incomplete,
    notIncreasing,
    toLast: toLast.summary(),
    toFirst: toFirst.summary(),
    ack: ack.summary(),
    rssBase,
    rssIdle,
    rssMax,
    serverCpuPct: (serverCpuMs / runWallMs) * 100,
    serverUsPerMessage: messages ? (serverCpuMs * 1000) / messages : NaN,
    serverUsPerDelivery: messages ? (serverCpuMs * 1000) / (messages * expected) : NaN,
    serverSysPct: (serverSysMs / runWallMs) * 100,
    threadsUsPerMessage: [...threads1]
      .map(([key, ms]): [string, number] => [key.slice(key.indexOf(' ') + 1), messages ? ((ms - (threads0.get(key) ?? 0)) * 1000) / messages : NaN])
      .filter(([, us]) => us >= 0.5)
      .sort((x, y) => y[1] - x[1]),
    genCpuPct: (genCpuMs / runWallMs) * 100,
    otherCpuPct: ((busyMs - serverCpuMs - genCpuMs) / runWallMs) * 100,
    rows: { before, after, perMessage },
    errors,
    closeCodes,
    generatorLoopDelayMs: { p99: loopP99, max: loopMax },
    load,
  };
  printResult(result, server.forkedAt, startAt);

  for (const wk of workers) wk.send({ cmd: 'close' } satisfies GroupWorkerCommand);
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
  return result;
}

function printResult(r: ScenarioResult, forkedAt: number, startAt: number): void {
  const lat = (h: HistSummary) => `p50 ${fmt(h.p50, 1)} ms  p99 ${fmt(h.p99, 1)} ms  max ${fmt(h.max, 1)} ms  (n=${h.count})`;
  const delivered = r.windowMessages * r.expectedPerMessage;
  console.log('');
  console.log(`=== ${r.name}: ${r.kind} group of ${r.members}, ${r.online} online, ${r.senders} senders, offered ${r.rate} msg/s ===`);
  console.log(`deliveries/s       ${fmt(r.deliveriesPerS, 0)}   (live frames at members over the last ${durationS - warmupS} s; ${r.expectedPerMessage} per message)`);
  console.log(`messages           ${r.messages} acked (${fmt(r.windowMessages / (durationS - warmupS), 1)}/s in the window ≈ ${delivered} deliveries); incomplete ${r.incomplete}; repeated frames (downlink retries of unACKed msg, or duplicates) ${r.notIncreasing}`);
  console.log(`send → LAST member ${lat(r.toLast)}`);
  console.log(`send → first       ${lat(r.toFirst)}`);
  console.log(`send → ACK         ${lat(r.ack)}`);
  console.log(`server RSS         ${mb(r.rssBase)} before connecting, ${mb(r.rssIdle)} with ${r.online} idle connections, max ${mb(r.rssMax)} under load`);
  console.log(`CPU                server ${fmt(r.serverCpuPct, 0)}% of one core (${fmt(r.serverUsPerMessage, 0)} µs per message, ${fmt(r.serverUsPerDelivery, 2)} µs per delivery; ${fmt(r.serverSysPct, 0)}% in the kernel), generators ${fmt(r.genCpuPct, 0)}% (loop delay p99 ${fmt(r.generatorLoopDelayMs.p99, 1)} ms, max ${fmt(r.generatorLoopDelayMs.max, 1)} ms), rest of machine ${fmt(r.otherCpuPct, 0)}%`);
  const pm = r.rows.perMessage;
  console.log(`rows               before ${JSON.stringify(r.rows.before)} after ${JSON.stringify(r.rows.after)}`);
  console.log(`rows per message   messages +${fmt(pm.messages, 2)}, inbox +${fmt(pm.inbox, 1)}, entries +${fmt(pm.entries, 2)}, members +${fmt(pm.members, 0)}`);
  // `main` is the event loop; bench/alternate.mjs reads it as "event loop µs/msg".
  console.log(`server threads   µs/msg: ${r.threadsUsPerMessage.map(([name, us]) => `${name} ${fmt(us, 0)}`).join(', ')} (µs per delivery: ${r.threadsUsPerMessage.slice(0, 2).map(([name, us]) => `${name} ${fmt(us / Math.max(1, r.expectedPerMessage), 2)}`).join(', ')})`);
  console.log(`errors             ${Object.keys(r.errors).length ? JSON.stringify(r.errors) : 'none'}; server closes ${Object.keys(r.closeCodes).length ? JSON.stringify(r.closeCodes) : 'none'}`);
  if (a['cpu-prof']) {
    const from = (startAt - forkedAt) / 1000 + warmupS;
    console.log(`profile            node --import tsx bench/cpuprofile-top.ts ${join(resolve(a['cpu-prof']), r.name)}/CPU.*.cpuprofile --from ${fmt(from, 0)} --to ${fmt(from + durationS - warmupS, 0)}`);
  }
  const target = r.deliveriesPerS >= 50_000 && r.toLast.p99 < 200 && r.incomplete === 0;
  console.log(`target             ≥ 50 000 deliveries/s and p99 < 200 ms to the last member: ${target ? 'met' : 'NOT met'}`);
}

async function main(): Promise<void> {
  log(`server code: ${gitDescribe()}`);
  const scenarios: ScenarioSpec[] = [];
  if (a.scenario === 'both' || a.scenario === 'normal') {
    const m = Number(a['normal-members']);
    scenarios.push({ name: 'normal', members: m, online: m, rate: Number(a['normal-rate']), expectKind: 'group' });
  }
  if (a.scenario === 'both' || a.scenario === 'super') {
    scenarios.push({ name: 'super', members: Number(a['super-members']), online: Number(a.online), rate: Number(a['super-rate']), expectKind: 'super' });
  }
  if (scenarios.length === 0) throw new Error('--scenario must be both, normal or super');
  const results: ScenarioResult[] = [];
  for (const s of scenarios) results.push(await runScenario(s));
  if (a.json) writeFileSync(a.json, JSON.stringify({ code: gitDescribe(), durationS, warmupS, results }, null, 2));
}

await main();
process.exit(0);
