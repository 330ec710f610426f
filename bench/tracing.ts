/**
 * CPU cost of message tracing on the send path (issue 22): the real MessagingService
 * (validation, group commit into a SQLite store with synchronous=normal, fan-out on the
 * in-process Bus) with a consumer that does what the gateway does per device delivery when
 * tracing is on (journal the delivery, then its ACK), in three settings:
 *   none     no tracer at all (the path without tracing)
 *   journal  the default: the in-memory journal, no OTLP endpoint (the OpenTelemetry SDK is not loaded)
 *   otlp     spans exported over OTLP/HTTP (sample ratio --ratio) to a receiver in a child process
 * Settings run in interleaved rounds (rotating order) so load from other processes hits all
 * three alike. CPU per message is this process's user+system time over the sends (the
 * receiver's CPU is not counted: it stands for the collector).
 *
 *   npm run bench:tracing -- [--messages 5000] [--rounds 6] [--pairs 100] [--inflight 32] [--ratio 1]
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MemoryBus, MessageTracer, MessagingService, createMetrics, loadConfig, openStore, type Principal, type Store } from '@magpie/server';

const { values: a } = parseArgs({
  options: {
    messages: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '6' },
    pairs: { type: 'string', default: '100' },
    inflight: { type: 'string', default: '32' },
    ratio: { type: 'string', default: '1' },
  },
});
const N = Number(a.messages);
const ROUNDS = Number(a.rounds);
const PAIRS = Number(a.pairs);
const INFLIGHT = Number(a.inflight);

type Setting = 'none' | 'journal' | 'otlp';

/** The OTLP/HTTP receiver, in its own process: counts spans of each JSON export request. */
async function startReceiver(dir: string): Promise<{ url: string; spans: () => Promise<number>; stop: () => void }> {
  const file = join(dir, 'receiver.mjs');
  writeFileSync(
    file,
    `import { createServer } from 'node:http';
let spans = 0;
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.url === '/count') return res.end(String(spans));
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    for (const rs of body.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans += (ss.spans ?? []).length;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
server.listen(0, '127.0.0.1', () => process.send(server.address().port));
`,
  );
  const child = fork(file, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((r) => child.once('message', (p) => r(p as number)));
  const base = `http://127.0.0.1:${port}`;
  return { url: `${base}/v1/traces`, spans: async () => Number(await (await fetch(`${base}/count`)).text()), stop: () => child.kill() };
}

function cpuUs(): number {
  const c = process.cpuUsage();
  return c.user + c.system;
}

const dir = mkdtempSync(join(tmpdir(), 'magpie-bench-tracing-'));
const receiver = await startReceiver(dir);
const store: Store = await openStore(loadConfig({}, { dataDir: dir, sqliteSynchronous: 'normal', ringCapacity: 5000 }));
try {
  const now = Date.now();
  for (let i = 0; i < 2 * PAIRS; i++) await store.createUser({ id: `u${i}`, username: `u${i}`, passwordHash: 'x', nickname: `u${i}`, createdAt: now });
  const principal = (i: number): Principal => ({ userId: `u${i}`, deviceId: 'd', platform: 'web', tokenHash: `t${i}`, appVersion: '1' });

  const opts = { ringCapacity: 5000, syncGapThreshold: 2000, syncPageSize: 200, maxMessageBytes: 16_384, commitDelayMs: 0, maxBatch: 500 };
  const make = async (setting: Setting) => {
    const bus = new MemoryBus();
    const tracer =
      setting === 'none'
        ? undefined
        : await MessageTracer.create('bench', { journalSize: 10_000, sampleRatio: Number(a.ratio), serviceName: 'magpie-bench', ...(setting === 'otlp' ? { otlpEndpoint: receiver.url } : {}) });
    // The gateway's part per device delivery: write (not measured here), journal it, and journal the ACK when it comes.
    let delivered = 0;
    bus.subscribe((ev) => {
      if (ev.type !== 'deliver' || ev.inboxSeq === undefined) return;
      delivered++;
      if (tracer && ev.msgId) {
        tracer.delivered(ev.msgId, ev.userId, 'd', ev.inboxSeq, true, ev.tp);
        queueMicrotask(() => tracer.ended(ev.msgId!, ev.userId, 'd', ev.inboxSeq!, 'ack', 0));
      }
    });
    const messaging = new MessagingService(store, bus, createMetrics(), { ...opts, ...(tracer ? { tracer } : {}) });
    return { messaging, tracer, delivered: () => delivered };
  };
  const settings: Setting[] = ['none', 'journal', 'otlp'];
  const envs = Object.fromEntries(await Promise.all(settings.map(async (s) => [s, await make(s)] as const))) as Record<Setting, Awaited<ReturnType<typeof make>>>;

  let seq = 0;
  async function round(setting: Setting, count: number): Promise<{ cpuPerMsg: number; perSecond: number }> {
    const { messaging, tracer } = envs[setting];
    const start = cpuUs();
    const t0 = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const k = next++;
        const p = k % PAIRS;
        const [s, r] = k % 2 === 0 ? [2 * p, 2 * p + 1] : [2 * p + 1, 2 * p];
        await messaging.send(principal(s), { clientMsgId: `c${++seq}`, to: `u${r}`, kind: 'text', body: { text: `hello ${k}` } });
      }
    };
    await Promise.all(Array.from({ length: INFLIGHT }, worker));
    // Spans are exported in the background; the export's CPU belongs to the setting.
    await tracer?.flush();
    const ms = performance.now() - t0;
    return { cpuPerMsg: (cpuUs() - start) / count, perSecond: (count / ms) * 1000 };
  }

  for (const s of settings) await round(s, Math.min(N, 1000)); // warm-up
  const results: Record<Setting, { cpuPerMsg: number; perSecond: number }[]> = { none: [], journal: [], otlp: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const order = settings.map((_, i) => settings[(i + r) % settings.length]!);
    for (const s of order) results[s].push(await round(s, N));
  }
  const med = (x: number[]) => [...x].sort((p, q) => p - q)[Math.floor(x.length / 2)]!;
  const mean = (x: number[]) => x.reduce((p, q) => p + q, 0) / x.length;
  console.log(`bench:tracing: ${N} messages × ${ROUNDS} rounds per setting, ${INFLIGHT} in flight, ${PAIRS} pairs, OTLP sample ratio ${a.ratio}`);
  console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} on ${(await import('node:os')).cpus().length} cores`);
  console.log('| setting | CPU µs/msg (all rounds) | median round | sends/s (median) |');
  console.log('|---|---|---|---|');
  for (const s of settings) {
    const xs = results[s];
    console.log(`| ${s} | ${mean(xs.map((x) => x.cpuPerMsg)).toFixed(1)} | ${med(xs.map((x) => x.cpuPerMsg)).toFixed(1)} | ${med(xs.map((x) => x.perSecond)).toFixed(0)} |`);
  }
  console.log(`spans received by the OTLP receiver: ${await receiver.spans()}; deliveries: ${settings.map((s) => `${s} ${envs[s].delivered()}`).join(', ')}`);
  for (const s of settings) await envs[s].tracer?.close();
} finally {
  await store.close();
  receiver.stop();
  rmSync(dir, { recursive: true, force: true });
}
