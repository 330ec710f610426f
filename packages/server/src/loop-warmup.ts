/**
 * The event loop's warm-up (issue 23, the open loop's first seconds): right after the server
 * starts, it runs a throwaway Magpie node in the same process — the same modules, so what V8
 * learns there (type feedback, optimized code: methods are shared, and closures made at the same
 * site share their feedback) serves the real node — on a private SQLite database in a temporary
 * directory, bound to 127.0.0.1:0, and drives it with a few real WebSocket clients over loopback:
 * hello, 1:1 sends between every pair of them (new conversations and existing ones), the
 * recipients' cumulative ACKs, a sync. Then it stops that node and deletes its directory.
 *
 * Nothing of it reaches the real node: its own database (the real one, SQLite or PostgreSQL, is
 * never opened by it), its own metrics registry (without prom-client's process metrics, whose
 * monitors would outlive it), rate limiters, connection registry, bus (the
 * in-process one), silent logger, default settings for everything but the messaging knobs
 * (limits, ring, sync pages, retry, heartbeat, group commit) — no webhooks, push providers,
 * OTLP export, console or metrics port of the operator's. It runs behind real work: one round
 * of sends at a time, a pause between rounds. A warm-up that fails only leaves the code cold:
 * errors are logged (warn) and the node carries on.
 *
 * Why: a cold event loop compiles its send/deliver/ACK path (ws parsing, the gateway, the
 * message service, the ACK service, the retry queue) under the first real load; at 10 000 msg/s
 * that compilation and the first GCs build a backlog in the first seconds (docs/benchmarks.md,
 * issue 23). Measured, it did not lower that backlog or the ACK p99 measurably (docs/benchmarks.md,
 * issue 23, branch elw): off by default; `loopWarmUp: true` (MAGPIE_LOOP_WARMUP=1) turns it on.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { pino, type Logger } from 'pino';
import WebSocket from 'ws';
import { ConfigSchema, type Config } from './config/config.ts';
import type { MagpieServer } from './app.ts';
import { hashToken } from './util/ids.ts';

export interface LoopWarmUpOptions {
  /**
   * Throwaway nodes driven at once (default 2). With one, optimized code inlines that node's
   * per-instance closures and deoptimizes ("wrong call target") at the real node's first
   * messages; with two, call sites see two closures of the same site and record the site
   * (its feedback cell), which the real node's closures share.
   */
  nodes?: number;
  /** Connected clients per node; every ordered pair of them exchanges messages (default 24). */
  clients?: number;
  /** Rounds of sends: in each, every client sends one message to another (default 128). */
  rounds?: number;
  /**
   * Users that never connect (default 512 per node): every other round, each client also sends its first
   * message to one of them, so the paths of a recipient not seen before (its lookup, a new
   * conversation, the offline push intake) are warmed too, not only the caches' hits.
   */
  offlineUsers?: number;
  /** Pause between two rounds, so real work runs between them (ms, default 4). */
  pauseMs?: number;
  /** Stops the warm-up at its next round (the server is shutting down). */
  signal?: AbortSignal;
  /** Test hook: called with the throwaway node once it listens. */
  onNode?: (node: MagpieServer) => void;
}

export interface LoopWarmUpResult {
  ok: boolean;
  /** Wall-clock duration (ms). */
  ms: number;
  /** Process CPU during it (ms, every thread: the event loop, the throwaway's writer thread, V8's helpers). */
  cpuMs: number;
  /** Messages acknowledged by the throwaway node. */
  messages: number;
  error?: string;
}

/** The throwaway node's settings: defaults, the real node's messaging knobs, its own temporary directory. */
export function warmUpConfig(real: Config, dataDir: string): Config {
  const { otlpEndpoint: _e, otlpHeaders: _h, ...tracing } = real.tracing as Config['tracing'] & { otlpEndpoint?: string; otlpHeaders?: unknown };
  return ConfigSchema.parse({
    host: '127.0.0.1',
    port: 0,
    dataDir,
    store: 'sqlite',
    logLevel: 'silent',
    // Its writer thread is a separate isolate: the real writer warms itself (store/writer-warmup.ts).
    sqliteWriterWarmUp: false,
    sqliteSynchronous: 'normal',
    sqliteCheckpointMs: real.sqliteCheckpointMs,
    sqliteWriterThread: real.store === 'sqlite' ? real.sqliteWriterThread : true,
    ringCapacity: real.ringCapacity,
    syncGapThreshold: real.syncGapThreshold,
    syncPageSize: real.syncPageSize,
    heartbeatMs: real.heartbeatMs,
    retry: real.retry,
    commitDelayMs: real.commitDelayMs,
    maxBatch: real.maxBatch,
    tracing,
    // Its clients send in bursts from one address: no per-user or per-IP limit may refuse them.
    limits: { ...real.limits, userRate: 1e6, userBurst: 1e6, ipRate: 1e6, ipBurst: 1e6, maxConnectionsPerIp: 0 },
    console: { enabled: false },
  });
}

/**
 * Runs the warm-up once and stops everything of it; never throws. `createServer` is the app's
 * createMagpieServer (passed in: this module is imported by the entry point after app.ts).
 */
export async function warmUpEventLoop(real: Config, createServer: (config: Config, deps: { log: Logger; processMetrics: boolean }) => Promise<MagpieServer>, opts: LoopWarmUpOptions = {}): Promise<LoopWarmUpResult> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const result = (ok: boolean, messages: number, error?: string): LoopWarmUpResult => {
    const cpu = process.cpuUsage(cpu0);
    return { ok, ms: Math.round(performance.now() - t0), cpuMs: Math.round((cpu.user + cpu.system) / 1000), messages, ...(error ? { error } : {}) };
  };
  const dirs: string[] = [];
  const nodes: MagpieServer[] = [];
  const sockets: WebSocket[] = [];
  const count = { acked: 0 };
  try {
    if (opts.signal?.aborted) return result(false, 0, 'stopped');
    const k = Math.max(1, opts.nodes ?? 2);
    for (let i = 0; i < k; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'magpie-loop-warmup-'));
      dirs.push(dir);
      // No process metrics: prom-client's event-loop delay monitor and GC observer would outlive the node.
      const node = await createServer(warmUpConfig(real, dir), { log: pino({ level: 'silent' }), processMetrics: false });
      nodes.push(node);
      // Its modules start as the real node's do (push intake, retention, notifications: on its own database).
      await node.start();
      opts.onNode?.(node);
    }
    const done = await Promise.all(nodes.map((node) => drive(node, opts, sockets, count)));
    return done.every(Boolean) ? result(true, count.acked) : result(false, count.acked, 'stopped');
  } catch (err) {
    return result(false, count.acked, (err as Error).message);
  } finally {
    for (const ws of sockets) ws.terminate();
    for (const node of nodes) {
      try {
        await node.stop();
      } catch {
        // nothing to keep
      }
    }
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

/** One throwaway node's traffic; false when stopped early. */
async function drive(node: MagpieServer, opts: LoopWarmUpOptions, sockets: WebSocket[], count: { acked: number }): Promise<boolean> {
  const port = (node.http.server.address() as { port: number }).port;
  const n = Math.max(2, opts.clients ?? 24);
  const rounds = opts.rounds ?? 128;
  const offline = Array.from({ length: opts.offlineUsers ?? 512 }, (_, i) => `warmupoff${String(i).padStart(4, '0')}`);
  const pauseMs = opts.pauseMs ?? 4;
  const now = Date.now();
  const users = Array.from({ length: n }, (_, i) => ({ id: `warmup${String(i).padStart(3, '0')}`, token: randomBytes(24).toString('base64url') }));
  for (const u of users) {
    await node.store.createUser({ id: u.id, username: u.id, passwordHash: 'warm-up-no-login', nickname: u.id, createdAt: now });
    await node.store.createSession({ tokenHash: hashToken(u.token), userId: u.id, deviceId: 'warmup', platform: 'other', appVersion: 'warmup', createdAt: now, expiresAt: now + 3600_000 });
  }
  for (const id of offline) await node.store.createUser({ id, username: id, passwordHash: 'warm-up-no-login', nickname: id, createdAt: now });
  let nextOffline = 0;
  const clients = await Promise.all(users.map((u) => connect(`ws://127.0.0.1:${port}/ws`, u.token, sockets)));
  let nextId = 1;
  for (let r = 0; r < rounds; r++) {
    if (opts.signal?.aborted) return false;
    // Client i sends to client i+1+(r mod n-1): over n-1 rounds every ordered pair, so each
    // conversation starts in one round and gets its next message in a later one.
    const replies: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      const to = users[(i + 1 + (r % (n - 1))) % n]!.id;
      const id = nextId++;
      replies.push(clients[i]!.request(id, `{"type":"send","to":"${to}","kind":"text","id":${id},"clientMsgId":"w${r}-${i}","body":{"text":"warm-up ${r} ${i}"}}`));
      if (r % 2 === 1 && nextOffline < offline.length) {
        const oid = nextId++;
        replies.push(clients[i]!.request(oid, `{"type":"send","to":"${offline[nextOffline++]}","kind":"text","id":${oid},"clientMsgId":"o${r}-${i}","body":{"text":"warm-up ${r} ${i}"}}`));
      }
    }
    await Promise.all(replies);
    count.acked += replies.length;
    // Cumulative ACKs for what each client holds, as the SDK and the bench send them.
    for (const c of clients) c.ack();
    await new Promise((res) => setTimeout(res, pauseMs));
  }
  // A reconnecting client's pull.
  await Promise.all(clients.slice(0, 8).map((c) => c.request(nextId, `{"type":"sync","id":${nextId++},"since":0,"limit":200}`)));
  return true;
}

interface WarmUpClient {
  /** Sends a frame carrying `id` and resolves on its reply (or error reply). */
  request(id: number, frame: string): Promise<void>;
  /** Sends a cumulative ACK of the inbox items received, when there are new ones. */
  ack(): void;
}

function connect(url: string, token: string, sockets: WebSocket[]): Promise<WarmUpClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    sockets.push(ws);
    const waiting = new Map<number, () => void>();
    let inbox = 0;
    let ackedInbox = 0;
    const client: WarmUpClient = {
      request: (id, frame) =>
        new Promise<void>((res) => {
          waiting.set(id, res);
          ws.send(frame);
        }),
      ack() {
        if (inbox > ackedInbox && ws.readyState === WebSocket.OPEN) ws.send(`{"type":"ack","inboxSeq":${(ackedInbox = inbox)}}`);
      },
    };
    type Frame = { type: string; id?: number; inboxSeq?: number; result?: { inboxSeq?: number } };
    const onFrame = (f: Frame) => {
      if ((f.type === 'reply' || f.type === 'error') && f.id !== undefined) {
        if (f.id === 0) {
          if (f.type === 'reply') resolve(client);
          else reject(new Error(`hello refused`));
          return;
        }
        if (f.result?.inboxSeq) inbox = Math.max(inbox, f.result.inboxSeq);
        const done = waiting.get(f.id);
        waiting.delete(f.id);
        done?.();
      } else if (f.type === 'msg' && f.inboxSeq) inbox = Math.max(inbox, f.inboxSeq);
    };
    ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', id: 0, versions: [1], token, inboxSeq: 0, caps: ['ack', 'batch'], app: { platform: 'other', version: 'warmup' } })));
    ws.on('message', (raw) => {
      const v = JSON.parse(String(raw)) as Frame | Frame[];
      if (Array.isArray(v)) for (const f of v) onFrame(f);
      else onFrame(v);
    });
    ws.on('error', (err) => reject(err));
    ws.on('close', () => {
      reject(new Error('closed'));
      for (const done of waiting.values()) done();
      waiting.clear();
    });
  });
}
