/**
 * Load-generator worker for the group benches (forked by bench/group-fanout.ts and
 * bench/super-group-100k.ts). Holds the sockets of a list of users; some of them send to a
 * group at a fixed rate (open loop), all of them receive. Kept cheap because it shares the
 * two cores with the server: live frames are not JSON-parsed but scanned for their
 * conversation and seq (the bench controls every message body); only replies are parsed.
 *
 * Times are wall-clock milliseconds with sub-millisecond resolution
 * (performance.timeOrigin + performance.now()), so the orchestrator can compare a send in
 * one worker with the last delivery in another.
 *
 * IPC in:  init → connect → run → close
 * IPC out: connected, done
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { benchToken, localAddressFor } from './users.ts';

export interface GroupWorkerInit {
  cmd: 'init';
  worker: number;
  wsUrl: string;
  /** Global user indices whose sockets this worker holds. */
  users: number[];
  nonce: string;
  /** Conversations whose live frames are counted. */
  convs: string[];
  perAddress: number;
  connectConcurrency: number;
  pingSec: number;
  /** Cumulative ACK of inbox items every ackMs (only with the 'ack' capability). */
  ackMs: number;
  caps: string[];
}

export interface GroupWorkerRun {
  cmd: 'run';
  /** Senders: positions in `users`, each sending to convs[conv] at `rate` messages/s. */
  senders: { k: number; conv: number; rate: number }[];
  /** Wall-clock ms when sending starts (same for every worker). */
  startAt: number;
  warmupMs: number;
  durationMs: number;
  drainMs: number;
  textBytes: number;
}

export type GroupWorkerCommand = GroupWorkerInit | { cmd: 'connect' } | GroupWorkerRun | { cmd: 'close' };

export interface GroupWorkerDone {
  type: 'done';
  worker: number;
  /** One row per send that got a reply: [conv index, seq, sent at, reply at]. */
  sends: [number, number, number, number][];
  /** Per conversation index: [seq, deliveries in this worker, first arrival, last arrival]. */
  receipts: [number, number, number, number][][];
  counters: {
    sent: number;
    replies: number;
    errorReplies: number;
    /** Live frames for the counted conversations (repeats included). */
    frames: number;
    /** WebSocket messages received (a batch of frames is one). */
    wsMessages: number;
    /** Frames whose seq was not above the last one this connection saw: retries of unACKed `msg` frames, or duplicates. Not counted as deliveries. */
    notIncreasing: number;
    /** First arrivals that arrived inside the measurement window. */
    windowFrames: number;
    acksSent: number;
    closes: number;
    cpuMs: number;
  };
  errors: Record<string, number>;
  closeCodes: Record<string, number>;
  loopDelayMs: { p99: number; max: number };
}

const now = (): number => performance.timeOrigin + performance.now();

let init!: GroupWorkerInit;
let n = 0;
let sockets: (WebSocket | undefined)[] = [];
let convIndex = new Map<string, number>();
/** Per conversation, per connection: the last seq seen. */
let lastSeq: Float64Array[] = [];
/** Per conversation: seq → [count, first, last]. */
let agg: Map<number, [number, number, number]>[] = [];
let maxInbox: Float64Array;
let ackedInbox: Float64Array;
let connectedCount = 0;
let measureFrom = Infinity;
let measureTo = Infinity;
const pendingSends = new Map<number, { conv: number; at: number }>();
const sends: [number, number, number, number][] = [];
const errors: Record<string, number> = {};
const closeCodes: Record<string, number> = {};
const c = { sent: 0, replies: 0, errorReplies: 0, frames: 0, wsMessages: 0, notIncreasing: 0, windowFrames: 0, acksSent: 0, closes: 0, cpuMs: 0 };
let nextId = 1;
let helloWaiters = new Map<number, (ok: boolean) => void>();

process.on('message', (m: GroupWorkerCommand) => {
  switch (m.cmd) {
    case 'init':
      setup(m);
      break;
    case 'connect':
      void connectAll().then((r) => process.send!({ type: 'connected', worker: init.worker, ...r }));
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

function setup(m: GroupWorkerInit): void {
  init = m;
  n = m.users.length;
  sockets = new Array(n);
  convIndex = new Map(m.convs.map((conv, i) => [conv, i]));
  lastSeq = m.convs.map(() => new Float64Array(n));
  agg = m.convs.map(() => new Map());
  maxInbox = new Float64Array(n);
  ackedInbox = new Float64Array(n);
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
  startTimers();
  return { ok: connectedCount, failed, ms: performance.now() - started };
}

function connectOne(k: number): Promise<boolean> {
  const i = init.users[k]!;
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
    const helloId = nextId++;
    helloWaiters.set(helloId, (ok) => {
      if (ok) {
        sockets[k] = ws;
        connectedCount++;
      } else ws.terminate();
      settle(ok);
    });
    ws.on('open', () => {
      ws.send(JSON.stringify({ type: 'hello', id: helloId, versions: [1], token: benchToken(init.nonce, i), inboxSeq: 0, caps: init.caps, app: { platform: 'other', version: 'bench' } }));
    });
    ws.on('message', (data) => onData(k, data as Buffer));
    ws.on('error', (err) => {
      errors[`socket:${(err as NodeJS.ErrnoException).code ?? err.message}`] = (errors[`socket:${(err as NodeJS.ErrnoException).code ?? err.message}`] ?? 0) + 1;
      helloWaiters.delete(helloId);
      settle(false);
    });
    ws.on('close', (code) => {
      helloWaiters.delete(helloId);
      if (sockets[k] === ws) {
        sockets[k] = undefined;
        c.closes++;
        closeCodes[code] = (closeCodes[code] ?? 0) + 1;
      }
      settle(false);
    });
  });
}

// ---------------------------------------------------------------- receive

function onData(k: number, data: Buffer): void {
  const at = now();
  c.wsMessages++;
  const s = data.toString('utf8');
  if (s.includes('"type":"reply"') || s.includes('"type":"error"')) {
    const parsed = JSON.parse(s) as unknown;
    for (const f of (Array.isArray(parsed) ? parsed : [parsed]) as Record<string, any>[]) onParsed(k, f, at);
    return;
  }
  scan(k, s, at);
}

/** Live frames without JSON.parse: `{"type":"advanced","conv":C,"seq":S,…` and `{"type":"msg","inboxSeq":I,"message":{"id":…,"conv":C,"seq":S,…`. */
function scan(k: number, s: string, at: number): void {
  let pos = 0;
  for (;;) {
    const i = s.indexOf('{"type":"', pos);
    if (i < 0) return;
    const t = i + 9;
    if (s.startsWith('advanced"', t)) {
      const ci = s.indexOf('"conv":"', t) + 8;
      const ce = s.indexOf('"', ci);
      const si = s.indexOf('"seq":', ce) + 6;
      live(k, s.slice(ci, ce), intAt(s, si), at);
      pos = si;
    } else if (s.startsWith('msg"', t)) {
      const ii = s.indexOf('"inboxSeq":', t) + 11;
      const inbox = intAt(s, ii);
      if (inbox > maxInbox[k]!) maxInbox[k] = inbox;
      const ci = s.indexOf('"conv":"', ii) + 8;
      const ce = s.indexOf('"', ci);
      const si = s.indexOf('"seq":', ce) + 6;
      live(k, s.slice(ci, ce), intAt(s, si), at);
      pos = si;
    } else pos = t;
  }
}

function intAt(s: string, i: number): number {
  let v = 0;
  for (let ch = s.charCodeAt(i); ch >= 48 && ch <= 57; ch = s.charCodeAt(++i)) v = v * 10 + (ch - 48);
  return v;
}

function live(k: number, conv: string, seq: number, at: number): void {
  const ci = convIndex.get(conv);
  if (ci === undefined) return;
  c.frames++;
  // One connection gets a conversation's messages in seq order: anything not above the last
  // one is a repeat (a downlink retry of a `msg` not yet ACKed, or a duplicate) and not counted.
  const last = lastSeq[ci]!;
  if (seq <= last[k]!) {
    c.notIncreasing++;
    return;
  }
  last[k] = seq;
  if (at >= measureFrom && at < measureTo) c.windowFrames++;
  const m = agg[ci]!;
  const a = m.get(seq);
  if (a) {
    a[0]++;
    if (at > a[2]) a[2] = at;
    if (at < a[1]) a[1] = at;
  } else m.set(seq, [1, at, at]);
}

function onParsed(k: number, f: Record<string, any>, at: number): void {
  if (f.type === 'reply' || f.type === 'error') {
    const hello = helloWaiters.get(f.id);
    if (hello) {
      helloWaiters.delete(f.id);
      if (f.type === 'error') errors[`hello:${f.code}`] = (errors[`hello:${f.code}`] ?? 0) + 1;
      hello(f.type === 'reply');
      return;
    }
    const p = pendingSends.get(f.id);
    if (!p) return;
    pendingSends.delete(f.id);
    if (f.type === 'reply') {
      c.replies++;
      sends.push([p.conv, f.result.message.seq, p.at, at]);
    } else {
      c.errorReplies++;
      errors[f.code] = (errors[f.code] ?? 0) + 1;
    }
    return;
  }
  if (f.type === 'advanced') live(k, f.conv, f.seq, at);
  else if (f.type === 'msg') {
    if (f.inboxSeq > maxInbox[k]!) maxInbox[k] = f.inboxSeq;
    live(k, f.message.conv, f.message.seq, at);
  }
}

// ---------------------------------------------------------------- timers: pings, ACKs

function startTimers(): void {
  // Pings spread over the interval: every 100 ms a slice of the connections.
  const slices = Math.max(1, Math.round((init.pingSec * 1000) / 100));
  let slice = 0;
  setInterval(() => {
    const frame = `{"type":"ping","interval":${Math.max(1000, init.pingSec * 1000)}}`;
    for (let k = slice; k < n; k += slices) sockets[k]?.send(frame);
    slice = (slice + 1) % slices;
  }, 100).unref();
  if (!init.caps.includes('ack')) return;
  setInterval(() => {
    for (let k = 0; k < n; k++) {
      if (maxInbox[k]! <= ackedInbox[k]!) continue;
      ackedInbox[k] = maxInbox[k]!;
      sockets[k]?.send(`{"type":"ack","inboxSeq":${maxInbox[k]}}`);
      c.acksSent++;
    }
  }, init.ackMs).unref();
}

// ---------------------------------------------------------------- run

/** One run; a worker can do several in a row (each reports only its own sends, receipts and counters). */
async function run(m: GroupWorkerRun): Promise<void> {
  sends.length = 0;
  for (const mm of agg) mm.clear();
  for (const key of Object.keys(c) as (keyof typeof c)[]) if (key !== 'closes') c[key] = 0;
  const cpu0 = process.cpuUsage();
  const loop = monitorEventLoopDelay({ resolution: 10 });
  measureFrom = m.startAt + m.warmupMs;
  measureTo = m.startAt + m.durationMs;
  const stopAt = m.startAt + m.durationMs;
  const pad = 'x'.repeat(Math.max(1, m.textBytes));
  const senders = m.senders.map((s, j) => {
    const interval = 1000 / s.rate;
    const conv = init.convs[s.conv]!;
    return { ...s, interval, next: m.startAt + (j / Math.max(1, m.senders.length)) * interval, prefix: `{"type":"send","conv":${JSON.stringify(conv)},"kind":"text","body":{"text":"${pad}"},"clientMsgId":"w${init.worker}-` };
  });
  await new Promise((r) => setTimeout(r, Math.max(0, m.startAt - now())));
  loop.enable();
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const t = now();
      for (const s of senders) {
        while (s.next <= t && s.next < stopAt) {
          const ws = sockets[s.k];
          s.next += s.interval;
          if (!ws) continue;
          const id = nextId++;
          pendingSends.set(id, { conv: s.conv, at: now() });
          ws.send(`${s.prefix}${id}","id":${id}}`);
          c.sent++;
        }
      }
      if (t >= stopAt) {
        clearInterval(tick);
        resolve();
      }
    }, 2);
  });
  // Drain: wait for replies and the last deliveries.
  const drainUntil = now() + m.drainMs;
  while (now() < drainUntil) await new Promise((r) => setTimeout(r, 100));
  loop.disable();
  const cpu = process.cpuUsage(cpu0);
  c.cpuMs = (cpu.user + cpu.system) / 1000;
  const done: GroupWorkerDone = {
    type: 'done',
    worker: init.worker,
    sends,
    receipts: agg.map((mm) => [...mm].map(([seq, a]) => [seq, a[0], a[1], a[2]] as [number, number, number, number])),
    counters: c,
    errors,
    closeCodes,
    loopDelayMs: { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
  };
  process.send!(done);
}
