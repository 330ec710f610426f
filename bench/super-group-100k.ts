/**
 * A 100 000-member super group with 2 000 members online, next to a 10 000-member one with
 * the same 2 000 online members, on one server:
 *
 *   npm run bench:supergroup100k
 *   npm run bench:supergroup100k -- --members 100000 --small 10000 --online 2000 --rate 10 --duration 20
 *
 * Shows, for each group in turn (same senders, same rate, same online members):
 * - every online member gets every message (live `advanced` frames counted per seq);
 * - rows per message: messages +1, inbox +0, entries +0 (read from the server's SQLite file);
 * - time from send to the LAST online member, the send's ACK time, and the server's CPU per
 *   message — equal for 10 000 and 100 000 members when nothing per message reads the member list;
 * - joining (invite one user over REST) and syncing (a member's hello with `welcome.supers`, then
 *   `history` after its last seq) take the same time at 10 000 and 100 000 members.
 *
 * Setup as in bench/group-fanout.ts: users and sessions seeded through SqliteStore, groups made
 * through the REST API (create + invites of 1000), the real server as a child process, load
 * generators in bench/lib/group-worker.ts.
 *
 * Options (defaults): --members 100000 --small 10000 --online 2000 --senders 5 --rate 10
 *   --duration 20 --warmup 3 --drain 5 --workers 1 --joins 20 --syncs 20 --rounds 2 (small, big, big, small)
 *   --cpu-prof DIR --json FILE
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { Histogram, type HistSummary } from './lib/hist.ts';
import { cpuMsOf, rssOf } from './lib/proc.ts';
import { benchToken, benchUserId } from './lib/users.ts';
import { api, fmt, gitDescribe, groupInfo, log, machineLoad, makeGroup, mb, rowCounts, rowDelta, seedUsers, startBenchServer, type RowCounts } from './lib/group-setup.ts';
import type { GroupWorkerCommand, GroupWorkerDone } from './lib/group-worker.ts';

const WORKER = new URL('./lib/group-worker.ts', import.meta.url).pathname;

const { values: a } = parseArgs({
  options: {
    members: { type: 'string', default: '100000' },
    small: { type: 'string', default: '10000' },
    online: { type: 'string', default: '2000' },
    senders: { type: 'string', default: '5' },
    rate: { type: 'string', default: '10' },
    duration: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    drain: { type: 'string', default: '5' },
    workers: { type: 'string', default: '1' },
    joins: { type: 'string', default: '20' },
    syncs: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '2' },
    'cpu-prof': { type: 'string' },
    json: { type: 'string' },
  },
  strict: true,
});

const BIG = Number(a.members);
const SMALL = Number(a.small);
const ONLINE = Number(a.online);
const SENDERS = Number(a.senders);
const RATE = Number(a.rate);
const W = Number(a.workers);
const JOINS = Number(a.joins);
const SYNCS = Number(a.syncs);
const ROUNDS = Number(a.rounds);
const durationS = Number(a.duration);
const warmupS = Math.min(Number(a.warmup), durationS / 2);
if (!(SMALL < BIG && ONLINE <= SMALL)) throw new Error('need --online ≤ --small < --members');

interface Phase {
  group: string;
  members: number;
  messages: number;
  incomplete: number;
  notIncreasing: number;
  deliveriesPerS: number;
  toLast: HistSummary;
  ack: HistSummary;
  serverCpuMsPerMessage: number;
  rows: { before: RowCounts; after: RowCounts; delta: RowCounts };
}

async function main(): Promise<void> {
  const nonce = randomBytes(4).toString('hex');
  const dataDir = mkdtempSync(join(tmpdir(), 'magpie-bench-100k-'));
  const dbPath = join(dataDir, 'magpie.db');
  log(`server code: ${gitDescribe()}`);
  log(`super groups of ${BIG} and ${SMALL} members, the same ${ONLINE} online in both, ${SENDERS} senders at ${RATE} msg/s, ${durationS} s per group`);

  // Users 0..BIG-1 are members of the big group, 0..SMALL-1 also of the small one;
  // BIG..BIG+2·JOINS-1 join later (the join measurement).
  let t = Date.now();
  await seedUsers(dbPath, 0, BIG + 2 * JOINS, nonce);
  log(`seeded ${BIG + 2 * JOINS} users + sessions in ${Date.now() - t} ms`);
  const server = await startBenchServer({ dataDir, cpuProfDir: a['cpu-prof'] ? resolve(a['cpu-prof']) : undefined });
  log(`server pid ${server.pid} at ${server.url}`);
  await sleep(1000);
  const rssStart = rssOf(server.pid);

  const ownerToken = benchToken(nonce, 0);
  t = Date.now();
  const small = await makeGroup(server.url, ownerToken, 'ten thousand', Array.from({ length: SMALL - 1 }, (_, i) => benchUserId(i + 1)));
  log(`${SMALL}-member group ${small} made in ${Date.now() - t} ms`);
  t = Date.now();
  const big = await makeGroup(server.url, ownerToken, 'hundred thousand', Array.from({ length: BIG - 1 }, (_, i) => benchUserId(i + 1)), (m) => {
    if (m % 20_000 === 0) log(`  … ${m} members (${Date.now() - t} ms)`);
  });
  log(`${BIG}-member group ${big} made in ${Date.now() - t} ms`);
  for (const [conv, n] of [[small, SMALL], [big, BIG]] as const) {
    const info = await groupInfo(server.url, ownerToken, conv);
    if (info.kind !== 'super' || info.memberCount !== n) throw new Error(`${conv}: ${JSON.stringify(info)}`);
  }
  await sleep(1000);
  const rssGroups = rssOf(server.pid);

  // Load generators: the online members 0..ONLINE-1.
  const workers: ChildProcess[] = [];
  const ranges: number[][] = [];
  let done: GroupWorkerDone[] = [];
  let onConnected: ((m: { ok: number; failed: number }) => void) | undefined;
  let onDone: (() => void) | undefined;
  for (let w = 0; w < W; w++) {
    const from = Math.floor((ONLINE * w) / W);
    const to = Math.floor((ONLINE * (w + 1)) / W);
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
    child.send({ cmd: 'init', worker: w, wsUrl: server.wsUrl, users, nonce, convs: [small, big], perAddress: 20_000, connectConcurrency: 100, pingSec: 30, ackMs: 50, caps: ['batch', 'ack'] } satisfies GroupWorkerCommand);
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
  log(`connected ${connected.ok}/${ONLINE} in ${Date.now() - t} ms (${connected.failed} failed)`);
  await sleep(2000);
  const rssIdle = rssOf(server.pid);
  const load = await machineLoad();
  log(`machine: ${load}`);

  const senderUsers = Array.from({ length: SENDERS }, (_, j) => Math.floor((j * ONLINE) / SENDERS) + 1);
  const phase = async (convIndex: number, conv: string, members: number): Promise<Phase> => {
    done = [];
    const allDone = new Promise<void>((r) => (onDone = r));
    const before = rowCounts(dbPath, conv);
    const startAt = Date.now() + 1000;
    const cpu0 = cpuMsOf(server.pid);
    for (let w = 0; w < W; w++) {
      const users = ranges[w]!;
      const senders = senderUsers.filter((u) => u >= users[0]! && u <= users.at(-1)!).map((u) => ({ k: u - users[0]!, conv: convIndex, rate: RATE / SENDERS }));
      workers[w]!.send({ cmd: 'run', senders, startAt, warmupMs: warmupS * 1000, durationMs: durationS * 1000, drainMs: Number(a.drain) * 1000, textBytes: 40 } satisfies GroupWorkerCommand);
    }
    await allDone;
    const serverCpuMs = cpuMsOf(server.pid) - cpu0;
    const after = rowCounts(dbPath, conv);
    const per = new Map<number, { count: number; last: number }>();
    for (const d of done) {
      for (const [seq, count, , last] of d.receipts[convIndex] ?? []) {
        const p = per.get(seq);
        if (p) {
          p.count += count;
          p.last = Math.max(p.last, last);
        } else per.set(seq, { count, last });
      }
    }
    const expected = connected.ok - 1;
    const measureFrom = startAt + warmupS * 1000;
    const measureTo = startAt + durationS * 1000;
    const toLast = new Histogram();
    const ack = new Histogram();
    let messages = 0;
    let incomplete = 0;
    let windowFrames = 0;
    let notIncreasing = 0;
    for (const d of done) {
      windowFrames += d.counters.windowFrames;
      notIncreasing += d.counters.notIncreasing;
      for (const [ci, seq, sentAt, ackAt] of d.sends) {
        if (ci !== convIndex) continue;
        messages++;
        const p = per.get(seq);
        if (!p || p.count !== expected) incomplete++;
        if (sentAt < measureFrom || sentAt >= measureTo) continue;
        ack.record(ackAt - sentAt);
        if (p && p.count === expected) toLast.record(p.last - sentAt);
      }
    }
    return {
      group: conv,
      members,
      messages,
      incomplete,
      notIncreasing,
      deliveriesPerS: windowFrames / ((measureTo - measureFrom) / 1000),
      toLast: toLast.summary(),
      ack: ack.summary(),
      serverCpuMsPerMessage: serverCpuMs / Math.max(1, messages),
      rows: { before, after, delta: rowDelta(before, after) },
    };
  };

  const phases: Phase[] = [];
  // Alternating rounds (small, big, big, small, …) so that drift over the run (heap growth,
  // WAL size, other load) does not show up as a difference between the two groups.
  const order = [[0, small, SMALL], [1, big, BIG]] as const;
  for (let round = 0; round < ROUNDS; round++) {
    for (const [ci, conv, n] of round % 2 === 0 ? order : [...order].reverse()) {
      log(`round ${round + 1}: sending to the ${n}-member group for ${durationS} s …`);
      phases.push(await phase(ci, conv, n));
    }
  }
  const rssAfterLoad = rssOf(server.pid);

  // Joining and syncing: the same operations on both groups, alternating, timed from here.
  const joinMs: Record<string, number[]> = { [small]: [], [big]: [] };
  const helloMs: number[] = [];
  const historyMs: Record<string, number[]> = { [small]: [], [big]: [] };
  let joiner = BIG;
  for (let j = 0; j < JOINS; j++) {
    for (const conv of [small, big]) {
      const u = benchUserId(joiner++);
      const t0 = performance.now();
      const r = await api(server.url, 'POST', `/api/groups/${encodeURIComponent(conv)}/invite`, { users: [u] }, ownerToken);
      joinMs[conv]!.push(performance.now() - t0);
      if (r.status !== 200 || r.body.added?.[0] !== u) throw new Error(`invite: ${r.status} ${JSON.stringify(r.body)}`);
    }
  }
  // A member of both groups (not connected by the workers) reconnects: hello → welcome.supers → history after its last seq − 50.
  const syncUser = ONLINE + 1;
  for (let j = 0; j < SYNCS; j++) {
    const c = await RawWs.open(server.wsUrl);
    const t0 = performance.now();
    const welcome = await c.request({ type: 'hello', versions: [1], token: benchToken(nonce, syncUser), inboxSeq: 0, caps: ['batch'] });
    helloMs.push(performance.now() - t0);
    const supers = welcome.supers as { conv: string; lastSeq: number }[];
    if (supers.length !== 2) throw new Error(`welcome.supers: ${JSON.stringify(supers)}`);
    for (const s of supers) {
      const t1 = performance.now();
      const page = await c.request({ type: 'history', conv: s.conv, after: Math.max(0, s.lastSeq - 50), limit: 50 });
      historyMs[s.conv]!.push(performance.now() - t1);
      if (page.messages.length !== Math.min(50, s.lastSeq)) throw new Error(`history: ${page.messages.length} messages`);
    }
    c.close();
  }
  const rssEnd = rssOf(server.pid);

  // Report.
  const lat = (h: HistSummary) => `p50 ${fmt(h.p50, 1)} ms  p99 ${fmt(h.p99, 1)} ms  max ${fmt(h.max, 1)} ms`;
  const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? NaN;
  console.log('');
  console.log(`=== super groups of ${SMALL} and ${BIG} members, ${connected.ok} online in both, ${SENDERS} senders at ${RATE} msg/s ===`);
  for (const p of phases) {
    console.log(`--- ${p.members} members (round ${Math.floor(phases.indexOf(p) / 2) + 1}) ---`);
    console.log(`messages           ${p.messages} sent; every online member got every message: ${p.incomplete === 0 ? 'yes' : `NO (${p.incomplete} incomplete)`}; repeated frames ${p.notIncreasing}`);
    console.log(`deliveries/s       ${fmt(p.deliveriesPerS, 0)}`);
    console.log(`send → LAST member ${lat(p.toLast)}`);
    console.log(`send → ACK         ${lat(p.ack)}`);
    console.log(`server CPU         ${fmt(p.serverCpuMsPerMessage, 2)} ms per message (fan-out to ${connected.ok - 1} connections included)`);
    console.log(`rows               before ${JSON.stringify(p.rows.before)} after ${JSON.stringify(p.rows.after)}`);
    console.log(`rows per message   messages +${fmt(p.rows.delta.messages / p.messages, 2)}, inbox +${fmt(p.rows.delta.inbox / p.messages, 2)}, entries +${fmt(p.rows.delta.entries / p.messages, 2)} (members ${p.rows.after.members})`);
  }
  console.log(`--- joining and syncing (median of ${JOINS} / ${SYNCS}) ---`);
  console.log(`join (invite 1)    ${SMALL}: ${fmt(med(joinMs[small]!), 2)} ms   ${BIG}: ${fmt(med(joinMs[big]!), 2)} ms`);
  console.log(`hello (2 supers)   ${fmt(med(helloMs), 2)} ms`);
  console.log(`history 50 after   ${SMALL}: ${fmt(med(historyMs[small]!), 2)} ms   ${BIG}: ${fmt(med(historyMs[big]!), 2)} ms`);
  console.log(`server RSS         ${mb(rssStart)} at start, ${mb(rssGroups)} with both groups, ${mb(rssIdle)} with ${connected.ok} connections, ${mb(rssAfterLoad)} after the sends, ${mb(rssEnd)} at the end`);
  console.log(`machine            ${load}`);

  if (a.json) writeFileSync(a.json, JSON.stringify({ code: gitDescribe(), big: BIG, small: SMALL, online: connected.ok, senders: SENDERS, rate: RATE, durationS, phases, joinMs, helloMs, historyMs, rss: { rssStart, rssGroups, rssIdle, rssAfterLoad, rssEnd }, load }, null, 2));
  for (const wk of workers) wk.send({ cmd: 'close' } satisfies GroupWorkerCommand);
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}

/** A minimal request/reply client for the join and sync timings. */
class RawWs {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: any) => void; reject: (e: Error) => void }>();
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const parsed = JSON.parse(data.toString()) as unknown;
      for (const f of (Array.isArray(parsed) ? parsed : [parsed]) as Record<string, any>[]) {
        const p = (f.type === 'reply' || f.type === 'error') && this.pending.get(f.id);
        if (!p) continue;
        this.pending.delete(f.id);
        if (f.type === 'reply') p.resolve(f.result);
        else p.reject(new Error(`${f.code}: ${f.message}`));
      }
    });
  }
  static async open(url: string): Promise<RawWs> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise<void>((res, rej) => {
      ws.once('open', () => res());
      ws.once('error', rej);
    });
    return new RawWs(ws);
  }
  request(frame: Record<string, unknown>): Promise<any> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ ...frame, id }));
    });
  }
  close(): void {
    this.ws.close();
  }
}

await main();
process.exit(0);
