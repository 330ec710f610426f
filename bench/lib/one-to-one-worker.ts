/**
 * Load-generator worker for the 1:1 scenario (forked by bench/one-to-one.ts).
 *
 * Holds the sockets of users [from, to) — whole pairs, so both ends of a chat live in this
 * process and end-to-end latency is measured on one monotonic clock. Kept cheap on purpose
 * (it shares the CPU with the server): frames are pre-serialized per user, per-user state
 * lives in typed arrays, sends are paced by one timer, and ACKs are coalesced per flush.
 *
 * IPC in:  init → connect → run → close
 * IPC out: connected, stats (every second while running), done
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { Histogram } from './hist.ts';
import { benchToken, benchUserId, localAddressFor, partnerOf } from './users.ts';

export interface WorkerInit {
  cmd: 'init';
  worker: number;
  wsUrl: string;
  from: number;
  to: number;
  nonce: string;
  perAddress: number;
  connectConcurrency: number;
  pingSec: number;
  ackMs: number;
  /** Capabilities announced in hello (e.g. batch, ack). */
  caps: string[];
  /**
   * clientMsgIds about as long as the SDK's (27–32 characters; the SDK's are 32: packages/sdk/src/ids.ts) instead of
   * `w<worker>-<n>`: V8's JSON.parse internalizes string values of up to 10 characters, so the
   * short ids cost the server a string-table insert per message that SDK clients never cause.
   */
  sdkIds?: boolean;
}
export interface WorkerRun {
  cmd: 'run';
  /** Messages per second for this worker (spread evenly over its users). */
  rate: number;
  durationMs: number;
  warmupMs: number;
  drainMs: number;
  /**
   * Closed loop instead of the open-loop schedule: the first user of each pair keeps this many
   * messages in flight to its partner, sending the next one as soon as a durable ACK (reply)
   * comes back. `rate` is ignored.
   */
  inflight?: number;
}
export type WorkerCommand = WorkerInit | { cmd: 'connect' } | WorkerRun | { cmd: 'close' };

export interface WorkerCounters {
  sent: number;
  replies: number;
  errorReplies: number;
  /** Distinct inbox items delivered live (first arrival only). */
  delivered: number;
  /** Live `msg` frames for items already stored (server retries). */
  duplicates: number;
  deliveredNotices: number;
  acksSent: number;
  /** Inbox items received past a hole that never filled (checked when the run ends). */
  gaps: number;
  closes: number;
  cpuMs: number;
}

export interface WorkerDone {
  type: 'done';
  worker: number;
  counters: WorkerCounters;
  /** Counted inside the measurement window [warmup, duration). */
  window: { ms: number; sent: number; replies: number; delivered: number };
  ackLatency: ReturnType<Histogram['toJSON']>;
  e2eLatency: ReturnType<Histogram['toJSON']>;
  errors: Record<string, number>;
  closeCodes: Record<string, number>;
  /** Sends still without a reply / deliveries still missing when the drain ended. */
  unanswered: number;
  undelivered: number;
  drainMs: number;
  /** Backlog when sending stopped: sends without a reply, and messages not yet delivered. */
  inflightAtStop: number;
  undeliveredAtStop: number;
  /** The worker's own event-loop delay while running (it inflates measured latencies). */
  loopDelayMs: { p99: number; max: number };
}

const MASK = (1 << 21) - 1;

let init!: WorkerInit;
let n = 0;
let sockets: (WebSocket | undefined)[] = [];
let ready: Uint8Array;
/** Per user: contiguous inbox position (everything ≤ it stored), the last ACKed position, and items received past a hole. */
let lastInbox: Float64Array;
let ackedInbox: Float64Array;
let ahead: (number[] | undefined)[] = [];
let ackDirty: Uint8Array;
let dirtyList: Int32Array;
let dirtyCount = 0;
let sendPrefix: string[] = [];

const sendTime = new Float64Array(MASK + 1);
/** Closed loop: which local user sent message id (& MASK), to send its next one on the reply. */
const sendUser = new Int32Array(MASK + 1);
let closedLoop = false;
let loopOpen = false;
const ackHist = new Histogram();
const e2eHist = new Histogram();
const c: WorkerCounters = { sent: 0, replies: 0, errorReplies: 0, delivered: 0, duplicates: 0, deliveredNotices: 0, acksSent: 0, gaps: 0, closes: 0, cpuMs: 0 };
const errors: Record<string, number> = {};
const closeCodes: Record<string, number> = {};
let nextId = 1;
let measureFrom = Infinity;
let measureTo = Infinity;
const win = { sent: 0, replies: 0, delivered: 0 };
let connectedCount = 0;
let cidPrefix = '';

function send(msg: unknown): void {
  process.send!(msg);
}

process.on('message', (m: WorkerCommand) => {
  switch (m.cmd) {
    case 'init':
      setup(m);
      break;
    case 'connect':
      void connectAll().then((r) => send({ type: 'connected', worker: init.worker, ...r }));
      break;
    case 'run':
      void run(m);
      break;
    case 'close':
      for (const ws of sockets) ws?.terminate();
      setTimeout(() => process.exit(0), 50);
      break;
  }
});
process.on('disconnect', () => process.exit(0));

function setup(m: WorkerInit): void {
  init = m;
  n = m.to - m.from;
  sockets = new Array(n);
  ready = new Uint8Array(n);
  lastInbox = new Float64Array(n);
  ackedInbox = new Float64Array(n);
  ahead = new Array(n);
  ackDirty = new Uint8Array(n);
  dirtyList = new Int32Array(n);
  // Long ids: a 26-character prefix + the message number (27–32 characters, ascending like the SDK's time-ordered ones).
  cidPrefix = m.sdkIds ? `w${m.worker}-${m.nonce}`.padEnd(26, '0').slice(0, 26) : `w${m.worker}-`;
  for (let k = 0; k < n; k++) {
    const partner = benchUserId(partnerOf(m.from + k));
    sendPrefix[k] = `{"type":"send","to":"${partner}","kind":"text","id":`;
  }
}

// ---------------------------------------------------------------- connect

async function connectAll(): Promise<{ ok: number; failed: number; ms: number }> {
  const started = performance.now();
  let next = 0;
  let failed = 0;
  const one = async (): Promise<void> => {
    while (next < n) {
      const k = next++;
      let ok = false;
      for (let attempt = 0; attempt < 5 && !ok; attempt++) {
        ok = await connectOne(k);
        if (!ok) await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
      }
      if (!ok) failed++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(init.connectConcurrency, n) }, one));
  startHeartbeat();
  return { ok: connectedCount, failed, ms: performance.now() - started };
}

function connectOne(k: number): Promise<boolean> {
  const i = init.from + k;
  return new Promise((resolve) => {
    const ws = new WebSocket(init.wsUrl, {
      perMessageDeflate: false,
      localAddress: localAddressFor(i, init.perAddress),
      handshakeTimeout: 30_000,
      skipUTF8Validation: true,
    });
    let settled = false;
    const settle = (ok: boolean) => {
      if (settled) return;
      settled = true;
      resolve(ok);
    };
    ws.on('open', () => {
      ws.send(JSON.stringify({ type: 'hello', id: 0, versions: [1], token: benchToken(init.nonce, i), inboxSeq: 0, caps: init.caps, app: { platform: 'other', version: 'bench' } }));
    });
    ws.on('message', (raw) => {
      const data = raw as Buffer;
      if (!ready[k]) {
        type Hello = { type: string; id?: number; code?: string; result?: { inboxSeq: number } };
        const f = JSON.parse(data.toString()) as Hello | Hello[];
        const first = (Array.isArray(f) ? f[0] : f) ?? { type: '' };
        if (first.type === 'reply' && first.id === 0) {
          ready[k] = 1;
          lastInbox[k] = ackedInbox[k] = first.result?.inboxSeq ?? 0;
          sockets[k] = ws;
          connectedCount++;
          settle(true);
        } else if (first.type === 'error') {
          errors[`hello:${first.code}`] = (errors[`hello:${first.code}`] ?? 0) + 1;
          ws.terminate();
          settle(false);
        }
        return;
      }
      onData(k, data);
    });
    ws.on('error', (err) => {
      if (!settled) errors[`connect:${(err as NodeJS.ErrnoException).code ?? err.message}`] = (errors[`connect:${(err as NodeJS.ErrnoException).code ?? err.message}`] ?? 0) + 1;
      settle(false);
    });
    ws.on('close', (code) => {
      if (ready[k]) {
        ready[k] = 0;
        sockets[k] = undefined;
        connectedCount--;
        c.closes++;
        closeCodes[code] = (closeCodes[code] ?? 0) + 1;
      }
      settle(false);
    });
  });
}

/** Client heartbeat: every user pings once per `pingSec`, spread over the interval. */
function startHeartbeat(): void {
  let cursor = 0;
  const perTick = Math.ceil(n / init.pingSec);
  setInterval(() => {
    for (let j = 0; j < perTick; j++) {
      const k = cursor++ % n;
      if (ready[k]) sockets[k]!.send('{"type":"ping"}');
    }
  }, 1000).unref();
}

// ---------------------------------------------------------------- receive

interface InFrame {
  type: string;
  id?: number;
  result?: { inboxSeq?: number };
  code?: string;
  inboxSeq?: number;
  message?: { body: { text?: string } };
}

function onData(k: number, data: Buffer): void {
  const v = JSON.parse(data.toString()) as InFrame | InFrame[];
  if (Array.isArray(v)) for (const f of v) onFrame(k, f);
  else onFrame(k, v);
}

function onFrame(k: number, f: InFrame): void {
  const now = performance.now();
  switch (f.type) {
    case 'reply': {
      if (f.id === undefined || f.id === 0) return;
      const t = sendTime[f.id & MASK]!;
      c.replies++;
      if (closedLoop) sendNext(sendUser[f.id & MASK]!, now);
      // The sender's own inbox gets a pointer for its message too; the reply carries it.
      if (f.result?.inboxSeq) storeItem(k, f.result.inboxSeq);
      if (t >= measureFrom) ackHist.record(now - t);
      if (now >= measureFrom && now < measureTo) win.replies++;
      return;
    }
    case 'msg': {
      if (!storeItem(k, f.inboxSeq!)) {
        // Already stored: a server retry of an item whose ACK was still on its way.
        c.duplicates++;
        return;
      }
      c.delivered++;
      if (now >= measureFrom && now < measureTo) win.delivered++;
      const t = Number(f.message?.body.text);
      if (t >= measureFrom) e2eHist.record(now - t);
      return;
    }
    case 'delivered':
      c.deliveredNotices++;
      return;
    case 'error':
      errors[f.code ?? 'unknown'] = (errors[f.code ?? 'unknown'] ?? 0) + 1;
      if (f.id) {
        c.errorReplies++;
        if (closedLoop) sendNext(sendUser[f.id & MASK]!, now);
      }
      return;
    default:
      return;
  }
}

/** Record inbox item `seq` as stored; advance the contiguous position over any items that were waiting for it. */
function storeItem(k: number, seq: number): boolean {
  let pos = lastInbox[k]!;
  if (seq <= pos) return false;
  if (seq !== pos + 1) {
    const waiting = (ahead[k] ??= []);
    if (waiting.includes(seq)) return false;
    waiting.push(seq);
    return true;
  }
  pos = seq;
  const waiting = ahead[k];
  if (waiting) {
    let i: number;
    while ((i = waiting.indexOf(pos + 1)) >= 0) {
      waiting.splice(i, 1);
      pos++;
    }
    if (waiting.length === 0) ahead[k] = undefined;
  }
  lastInbox[k] = pos;
  if (!ackDirty[k]) {
    ackDirty[k] = 1;
    dirtyList[dirtyCount++] = k;
  }
  return true;
}

/** Cumulative ACKs, coalesced: one `ack` per device per flush, carrying the highest inboxSeq stored. */
function flushAcks(): void {
  for (let j = 0; j < dirtyCount; j++) {
    const k = dirtyList[j]!;
    ackDirty[k] = 0;
    const seq = lastInbox[k]!;
    if (seq > ackedInbox[k]! && ready[k]) {
      sockets[k]!.send(`{"type":"ack","inboxSeq":${seq}}`);
      ackedInbox[k] = seq;
      c.acksSent++;
    }
  }
  dirtyCount = 0;
}

// ---------------------------------------------------------------- run

/** One text message from local user k to its partner; the body carries the send time for end-to-end latency. */
function sendOne(k: number, now: number): void {
  const id = nextId++;
  sendTime[id & MASK] = now;
  sendUser[id & MASK] = k;
  sockets[k]!.send(`${sendPrefix[k]}${id},"clientMsgId":"${cidPrefix}${id}","body":{"text":"${now.toFixed(3)}"}}`);
  c.sent++;
  if (now >= measureFrom && now < measureTo) win.sent++;
}

/** Closed loop: a reply frees a slot of user k; refill it while the run lasts. */
function sendNext(k: number, now: number): void {
  if (!loopOpen || now >= measureTo || !ready[k]) return;
  sendOne(k, now);
}

async function run(m: WorkerRun): Promise<void> {
  const start = performance.now();
  measureFrom = start + m.warmupMs;
  measureTo = start + m.durationMs;
  const ackTimer = setInterval(flushAcks, init.ackMs);
  const cpu0 = process.cpuUsage();
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  let tickNo = 0;
  const statsTimer = setInterval(() => {
    const u = process.cpuUsage(cpu0);
    c.cpuMs = (u.user + u.system) / 1000;
    send({ type: 'stats', worker: init.worker, tick: ++tickNo, counters: c });
  }, 1000);

  if (m.inflight !== undefined && m.inflight > 0) {
    // Closed loop: the first user of every pair (local index even: workers hold whole pairs)
    // fills its window; each reply sends the next message (sendNext).
    closedLoop = true;
    loopOpen = true;
    const now = performance.now();
    for (let k = 0; k < n; k += 2) if (ready[k]) for (let j = 0; j < m.inflight; j++) sendOne(k, now);
    await new Promise((r) => setTimeout(r, Math.max(0, measureTo - performance.now())));
    loopOpen = false;
    await finish(m, lag, cpu0, ackTimer, statsTimer);
    return;
  }

  // Open-loop pacing: every tick, send what the schedule says is due by now, round-robin
  // over this worker's users (each user sends to its partner at rate / n per second).
  const perMs = m.rate / 1000;
  let due = 0;
  let cursor = 0;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      if (now >= measureTo) {
        clearInterval(tick);
        resolve();
        return;
      }
      const target = Math.floor((now - start) * perMs);
      const inWindow = now >= measureFrom;
      const ts = now.toFixed(3);
      while (due < target) {
        due++;
        const k = cursor;
        cursor = cursor + 1 === n ? 0 : cursor + 1;
        if (!ready[k]) continue;
        const id = nextId++;
        sendTime[id & MASK] = now;
        sockets[k]!.send(`${sendPrefix[k]}${id},"clientMsgId":"${cidPrefix}${id}","body":{"text":"${ts}"}}`);
        c.sent++;
        if (inWindow) win.sent++;
      }
    }, 2);
  });
  await finish(m, lag, cpu0, ackTimer, statsTimer);
}

async function finish(m: WorkerRun, lag: ReturnType<typeof monitorEventLoopDelay>, cpu0: NodeJS.CpuUsage, ackTimer: NodeJS.Timeout, statsTimer: NodeJS.Timeout): Promise<void> {
  const inflightAtStop = c.sent - c.replies - c.errorReplies;
  const undeliveredAtStop = c.sent - c.errorReplies - c.delivered;
  // Drain: wait for the replies and deliveries still in flight.
  const drainStart = performance.now();
  while (performance.now() - drainStart < m.drainMs) {
    if (c.replies + c.errorReplies >= c.sent && c.delivered >= c.sent - c.errorReplies) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const drainMs = performance.now() - drainStart;
  for (const w of ahead) if (w) c.gaps += w.length;
  flushAcks();
  clearInterval(ackTimer);
  clearInterval(statsTimer);
  const u = process.cpuUsage(cpu0);
  c.cpuMs = (u.user + u.system) / 1000;
  lag.disable();
  const done: WorkerDone = {
    type: 'done',
    worker: init.worker,
    counters: c,
    window: { ms: m.durationMs - m.warmupMs, ...win },
    ackLatency: ackHist.toJSON(),
    e2eLatency: e2eHist.toJSON(),
    errors,
    closeCodes,
    unanswered: Math.max(0, c.sent - c.replies - c.errorReplies),
    undelivered: Math.max(0, c.sent - c.errorReplies - c.delivered),
    drainMs,
    inflightAtStop,
    undeliveredAtStop,
    loopDelayMs: { p99: lag.percentile(99) / 1e6, max: lag.max / 1e6 },
  };
  send(done);
}
