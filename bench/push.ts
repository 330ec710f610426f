/**
 * Offline push benchmark.
 *
 *   npm run bench:push -- --recipients 20000 --chat-pairs 100 --chat-rate 500 --burst 20000
 *
 * 1. Local providers (APNs HTTP/2+TLS, FCM v1, Web Push with RFC 8291 decryption) run in
 *    their own process (bench/push-fake.ts); the real server runs as a child process
 *    (packages/server/dist/main.js, what npm start runs) pointed at them through MAGPIE_PUSH_* settings.
 * 2. Users, sessions and push devices are seeded straight into the server's SQLite file.
 * 3. Throughput, per provider: S senders, connected over WebSocket, send one text message to
 *    each of R offline recipients (distinct conversations: nothing collapses). Every message
 *    goes the whole pipeline: commit → onCommitted → policy (devices, sessions, mute,
 *    permission) → durable job → live lane → provider → outcome recorded. Pushes/s = R / (time
 *    from the first send to the provider's last accept).
 * 4. Live chat: P online pairs chat at a fixed total rate (open loop); latency = send → live
 *    delivery at the partner. Measured alone, then with a marketing burst to M users in the
 *    bulk lane (POST /api/admin/push/notify) running at the same time.
 *
 * Options (defaults): --recipients 20000 --senders 20 --window 64 --providers apns,fcm,webpush
 *   --chat-pairs 100 --chat-rate 500 --chat-seconds 15 --burst 20000 --bulk-rate 1000
 *   --json FILE --keep-data
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { hashToken, openPushStore, openStore } from '@magpie/server';
import { ensureBuilt, SERVER_MAIN, seedConfig, serverEnv, serverExecArgv } from './lib/server.ts';
import type { FakeInfo, FakeStats } from './push-fake.ts';

const FAKE = new URL('./push-fake.ts', import.meta.url).pathname;
const ADMIN = `bench-admin-${randomBytes(8).toString('hex')}`;

const { values: a } = parseArgs({
  options: {
    recipients: { type: 'string', default: '20000' },
    senders: { type: 'string', default: '20' },
    window: { type: 'string', default: '64' },
    providers: { type: 'string', default: 'apns,fcm,webpush' },
    'chat-pairs': { type: 'string', default: '100' },
    'chat-rate': { type: 'string', default: '500' },
    'chat-seconds': { type: 'string', default: '15' },
    burst: { type: 'string', default: '20000' },
    'bulk-rate': { type: 'string', default: '1000' },
    json: { type: 'string' },
    'keep-data': { type: 'boolean', default: false },
    'skip-chat': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    'push-db': { type: 'string', default: 'push.db' },
    'server-env': { type: 'string', multiple: true, default: [] },
  },
});
/** The push store's SQLite file (push.sqliteFile); --push-db magpie.db shares the messaging file. */
const PUSH_DB = a['push-db']!;
const R = Number(a.recipients);
const S = Number(a.senders);
const WINDOW = Number(a.window);
const PROVIDERS = a.providers!.split(',').filter(Boolean) as ('apns' | 'fcm' | 'webpush')[];
const PAIRS = Number(a['chat-pairs']);
const CHAT_RATE = Number(a['chat-rate']);
const CHAT_S = Number(a['chat-seconds']);
const BURST = Number(a.burst);
const BULK_RATE = Number(a['bulk-rate']);

// --- small helpers ---

function cpuMs(pid: number | string): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

/** CPU time of a process's main thread alone (its event loop; workers and libuv threads excluded), ms. */
function mainThreadCpuMs(pid: number): number {
  return cpuMs(`${pid}/task/${pid}`);
}

/** Busy CPU time of the whole machine (all cores), ms. */
function machineBusyMs(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f as number[];
  return ((user! + nice! + system! + irq! + softirq! + steal!) * 1000) / 100;
}

function pct(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

class Ipc {
  private next = 1;
  private waiting = new Map<number, (m: any) => void>();
  constructor(readonly proc: ChildProcess) {
    proc.on('message', (m: any) => {
      const w = m?.id !== undefined ? this.waiting.get(m.id) : undefined;
      if (w) {
        this.waiting.delete(m.id);
        w(m);
      }
    });
  }
  ask(cmd: Record<string, unknown>): Promise<any> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.proc.send({ ...cmd, id });
    });
  }
}

const children = new Set<ChildProcess>();
// Never leave a server or fake behind, whatever ends this process.
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});
process.on('uncaughtException', (err) => {
  console.error(err);
  process.exit(1);
});
process.on('unhandledRejection', (err) => {
  console.error(err);
  process.exit(1);
});

async function startChild(file: string, env: Record<string, string>, extraArgs: string[] = []): Promise<{ proc: ChildProcess; ready: any }> {
  // The server runs compiled (dist/main.js); the fake providers are this bench's own TypeScript.
  const execArgv = file.endsWith('.ts') ? ['--import', 'tsx', ...extraArgs] : extraArgs;
  const proc = fork(file, [], { execArgv, env: serverEnv(env), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(proc);
  const ready = await new Promise<any>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${file} did not start`)), 60_000);
    proc.on('message', (m: any) => {
      if (m?.ready) {
        clearTimeout(t);
        resolve(m.ready);
      }
    });
    proc.on('exit', (c) => reject(new Error(`${file} exited with ${c}`)));
  });
  return { proc, ready };
}

class Client {
  private nextId = 1;
  private pending = new Map<number, (f: any) => void>();
  onMsg: ((f: any) => void) | null = null;
  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const parsed = JSON.parse(data.toString());
      for (const f of Array.isArray(parsed) ? parsed : [parsed]) {
        if (f.type === 'msg') {
          this.onMsg?.(f);
          continue;
        }
        const p = f.id !== undefined ? this.pending.get(f.id) : undefined;
        if (p) {
          this.pending.delete(f.id);
          p(f);
        }
      }
    });
  }
  static async connect(url: string, token: string): Promise<Client> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise<void>((r, j) => {
      ws.once('open', () => r());
      ws.once('error', j);
    });
    const c = new Client(ws);
    const hello = await c.request({ type: 'hello', versions: [1], token, inboxSeq: 0, caps: ['batch'] });
    if (hello.type !== 'reply') throw new Error(`hello failed: ${JSON.stringify(hello)}`);
    return c;
  }
  request(frame: Record<string, unknown>): Promise<any> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.ws.send(JSON.stringify({ ...frame, id }));
    });
  }
  close(): void {
    this.ws.close();
  }
}

// --- main ---

const dataDir = mkdtempSync(join(tmpdir(), 'magpie-bench-push-'));
console.log(`bench:push — ${cpus().length} CPUs, data in ${dataDir}`);
const fake = await startChild(FAKE, {});
const fakeIpc = new Ipc(fake.proc);
const info = fake.ready as FakeInfo;
const stats = async (): Promise<FakeStats> => (await fakeIpc.ask({ cmd: 'stats' })).stats;

// Seed users, sessions and devices.
const t0 = Date.now();
ensureBuilt();
const seed = seedConfig(dataDir, { ringCapacity: 1000 });
const store = await openStore(seed);
const pstore = await openPushStore(seed, { ...seed.push, sqliteFile: PUSH_DB, sqliteSynchronous: 'normal' });
const now = Date.now();
const tokenOf = (id: string) => `tok-${id}`;
async function seedUser(id: string, device?: { provider: 'apns' | 'fcm' | 'webpush'; token: string }, deviceId = 'd1', platform: 'ios' | 'android' | 'web' = 'ios'): Promise<void> {
  await store.createUser({ id, username: id, passwordHash: 'x', nickname: id, createdAt: now });
  await store.createSession({ tokenHash: hashToken(tokenOf(id)), userId: id, deviceId, platform, appVersion: '1', createdAt: now, expiresAt: now + 86_400_000 });
  if (device) {
    await pstore.upsertDevice({ userId: id, deviceId, platform, provider: device.provider, token: device.token, vendor: null, sandbox: false, appVersion: '1', locale: 'en', timeZone: 'UTC', permission: 'granted', now });
  }
}
const hex = () => randomBytes(32).toString('hex');
const fcmTok = () => `${randomBytes(11).toString('base64url')}:APA91b${randomBytes(100).toString('base64url')}`;
const senders = Array.from({ length: S }, (_, i) => `s${i}`);
for (const s of senders) await seedUser(s, undefined, 'desk', 'web');
const recipients: Record<string, string[]> = {};
for (const p of PROVIDERS) {
  recipients[p] = [];
  const subs: unknown[] = p === 'webpush' ? (await fakeIpc.ask({ cmd: 'subscribe', n: R })).subs : [];
  for (let i = 0; i < R; i++) {
    const id = `r-${p}-${i}`;
    const token = p === 'apns' ? hex() : p === 'fcm' ? fcmTok() : JSON.stringify(subs[i]);
    await seedUser(id, { provider: p, token }, 'd1', p === 'apns' ? 'ios' : p === 'fcm' ? 'android' : 'web');
    recipients[p]!.push(id);
  }
}
const chatters = Array.from({ length: 2 * PAIRS }, (_, i) => `c${i}`);
for (const c of chatters) await seedUser(c, { provider: 'apns', token: hex() });
const burstUsers = Array.from({ length: BURST }, (_, i) => `m${i}`);
for (const m of burstUsers) await seedUser(m, { provider: 'fcm', token: fcmTok() }, 'd1', 'android');
await store.close();
await pstore.close();
console.log(`seeded ${S + R * PROVIDERS.length + chatters.length + BURST} users in ${Date.now() - t0} ms`);

const server = await startChild(SERVER_MAIN, {
  MAGPIE_PORT: '0',
  MAGPIE_HOST: '127.0.0.1',
  MAGPIE_DATA_DIR: dataDir,
  MAGPIE_LOG_LEVEL: 'warn',
  MAGPIE_ADMIN_TOKEN: ADMIN,
  MAGPIE_USER_RATE: '1000000',
  MAGPIE_USER_BURST: '1000000',
  MAGPIE_IP_RATE: '1000000',
  MAGPIE_IP_BURST: '1000000',
  MAGPIE_MAX_CONNECTIONS_PER_IP: '0',
  MAGPIE_PUSH_APNS_TEAM_ID: info.apns.teamId,
  MAGPIE_PUSH_APNS_KEY_ID: info.apns.keyId,
  MAGPIE_PUSH_APNS_KEY: info.apns.key,
  MAGPIE_PUSH_APNS_TOPIC: info.apns.topic,
  MAGPIE_PUSH_APNS_URL: info.apns.url,
  ...(info.apns.caFile ? { MAGPIE_PUSH_APNS_CA_FILE: info.apns.caFile } : {}),
  MAGPIE_PUSH_FCM_PROJECT_ID: info.fcm.projectId,
  MAGPIE_PUSH_FCM_SERVICE_ACCOUNT: info.fcm.serviceAccount,
  MAGPIE_PUSH_FCM_ENDPOINT: info.fcm.url,
  MAGPIE_PUSH_WEBPUSH_ALLOWED_HOSTS: '127.0.0.1',
  MAGPIE_PUSH_WEBPUSH_ALLOW_INSECURE: '1',
  MAGPIE_PUSH_QUIET_HOURS: 'off',
  MAGPIE_PUSH_MARKETING_PER_APP_PER_DAY: '100000000',
  MAGPIE_PUSH_BULK_RATE: String(BULK_RATE),
  MAGPIE_PUSH_SQLITE_FILE: PUSH_DB,
  ...Object.fromEntries((a['server-env'] as string[]).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
}, serverExecArgv(a['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${a['cpu-prof']}`] : []));
const base = String(server.ready).replace('localhost', '127.0.0.1');
const wsUrl = base.replace('http', 'ws') + '/ws';
const spid = server.proc.pid!;

// --- 1. throughput per provider ---
const throughput: Record<string, unknown> = {};
const clients = await Promise.all(senders.map((s) => Client.connect(wsUrl, tokenOf(s))));
for (const p of PROVIDERS) {
  const before = (await stats())[p].total;
  const list = recipients[p]!;
  const cpu0 = cpuMs(spid);
  const start = Date.now();
  let acked = 0;
  let sendErrors = 0;
  await Promise.all(
    clients.map(async (c, si) => {
      const mine = list.filter((_, i) => i % S === si);
      let next = 0;
      const worker = async () => {
        while (next < mine.length) {
          const to = mine[next++]!;
          const r = await c.request({ type: 'send', clientMsgId: `${p}-${to}`, to, kind: 'text', body: { text: `hello ${to}` } });
          if (r.type === 'reply') acked++;
          else sendErrors++;
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, Math.floor(WINDOW / 1)) }, worker));
    }),
  );
  const sendDone = Date.now();
  let st = await stats();
  const deadline = Date.now() + 120_000;
  while (st[p].total - before < list.length && Date.now() < deadline) {
    await sleep(50);
    st = await stats();
  }
  const got = st[p].total - before;
  const end = st[p].lastAt;
  const cpu = cpuMs(spid) - cpu0;
  const seconds = (end - start) / 1000;
  const r = {
    pushes: got,
    seconds: round(seconds, 2),
    pushesPerSec: Math.round(got / seconds),
    sendsPerSec: Math.round(acked / ((sendDone - start) / 1000)),
    sendErrors,
    serverCpuMsPerPush: round(cpu / got, 3),
  };
  // The push pipeline alone: transaction pushes (live lane) requested through the notify API.
  const before2 = (await stats())[p].total;
  await loopLag();
  const cpu1 = cpuMs(spid);
  const main1 = mainThreadCpuMs(spid);
  const fake1 = cpuMs(fake.proc.pid!);
  const busy1 = machineBusyMs();
  const start2 = Date.now();
  const chunks: string[][] = [];
  for (let i = 0; i < list.length; i += 1000) chunks.push(list.slice(i, i + 1000));
  let accepted = 0;
  await Promise.all(
    chunks.map(async (ids) => {
      const res = await fetch(`${base}/api/admin/push/notify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
        body: JSON.stringify({ userIds: ids, category: 'transaction', title: 'Order shipped', body: 'Your order is on its way' }),
      });
      accepted += ((await res.json()) as { accepted: number }).accepted;
    }),
  );
  const acceptedAt = Date.now();
  st = await stats();
  while (st[p].total - before2 < list.length && Date.now() < deadline + 120_000) {
    await sleep(50);
    st = await stats();
  }
  const got2 = st[p].total - before2;
  const secs2 = (st[p].lastAt - start2) / 1000;
  const cpu2 = cpuMs(spid) - cpu1;
  const main2 = mainThreadCpuMs(spid) - main1;
  const lag2 = await loopLag();
  const fakeCpu = cpuMs(fake.proc.pid!) - fake1;
  const busy = machineBusyMs() - busy1;
  const r2 = {
    pushes: got2,
    accepted,
    seconds: round(secs2, 2),
    pushesPerSec: Math.round(got2 / secs2),
    acceptedPerSec: Math.round(accepted / ((acceptedAt - start2) / 1000)),
    serverCpuMsPerPush: round(cpu2 / got2, 3),
    serverMainThreadCpuMsPerPush: round(main2 / got2, 3),
    serverLoopLagP99: lag2.p99,
    serverLoopLagMax: lag2.max,
    providerFakeCpuMsPerPush: round(fakeCpu / got2, 3),
    machineBusyCores: round(busy / ((Date.now() - start2) ), 2),
  };
  throughput[p] = { imEndToEnd: r, pipeline: r2 };
  console.log(`throughput ${p}: IM end to end ${JSON.stringify(r)}; push pipeline ${JSON.stringify(r2)}`);
}
for (const c of clients) c.close();

// --- 2 + 3. live chat p99, alone and during a marketing burst ---
/** The server's own event-loop delay over a phase (prom-client resets its histogram on every scrape). */
async function loopLag(): Promise<{ p99: number; max: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const get = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)`, 'm').exec(text)?.[1] ?? NaN) * 1000;
  return { p99: round(get('magpie_process_nodejs_eventloop_lag_p99_seconds'), 1), max: round(get('magpie_process_nodejs_eventloop_lag_max_seconds'), 1) };
}

async function chat(seconds: number, during?: () => Promise<void>): Promise<Record<string, number>> {
  const cs = await Promise.all(chatters.map((u) => Client.connect(wsUrl, tokenOf(u))));
  const lat: number[] = [];
  let recording = false;
  for (let i = 0; i < PAIRS; i++) {
    const receiver = cs[2 * i + 1]!;
    receiver.onMsg = (f) => {
      if (!recording) return;
      const sent = Number(String(f.message.body.text).split(' ')[0]);
      lat.push(performance.now() - sent);
    };
  }
  let seq = 0;
  const perPairMs = (1000 * PAIRS) / CHAT_RATE;
  const timers = Array.from({ length: PAIRS }, (_, i) =>
    setInterval(() => {
      const sender = cs[2 * i]!;
      void sender.request({ type: 'send', clientMsgId: `chat-${Date.now()}-${seq++}`, to: chatters[2 * i + 1], kind: 'text', body: { text: `${performance.now()} chat` } });
    }, perPairMs),
  );
  await sleep(2000); // warm-up
  recording = true;
  await loopLag();
  const burst = during?.();
  const cpu0 = cpuMs(spid);
  await sleep(seconds * 1000);
  const cpu = cpuMs(spid) - cpu0;
  const lag = await loopLag();
  recording = false;
  for (const t of timers) clearInterval(t);
  await burst;
  await sleep(500);
  for (const c of cs) c.close();
  return {
    messages: lat.length,
    p50: round(pct(lat, 0.5), 2),
    p99: round(pct(lat, 0.99), 2),
    max: round(Math.max(...lat), 1),
    serverCpuPct: Math.round(cpu / (seconds * 10)),
    serverLoopLagP99: lag.p99,
    serverLoopLagMax: lag.max,
    loadAvg1m: round(loadavg()[0]!, 2),
  };
}

if (a['skip-chat']) {
  console.log(JSON.stringify({ throughput }, null, 2));
  server.proc.kill('SIGTERM');
  await new Promise((r) => server.proc.once('exit', r));
  process.exit(0);
}
const alone = await chat(CHAT_S);
console.log(`live chat alone: ${JSON.stringify(alone)}`);
let burstInfo: Record<string, number> = {};
const withBurst = await chat(CHAT_S, async () => {
  const before = (await stats()).fcm.total;
  const t = Date.now();
  let accepted = 0;
  for (let i = 0; i < burstUsers.length; i += 2000) {
    const res = await fetch(`${base}/api/admin/push/notify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ userIds: burstUsers.slice(i, i + 2000), title: 'Flash sale', body: 'Everything 50% off' }),
    });
    accepted += ((await res.json()) as { accepted: number }).accepted;
  }
  const enqueueMs = Date.now() - t;
  await sleep(CHAT_S * 1000 - enqueueMs - 500);
  const sent = (await stats()).fcm.total - before;
  burstInfo = { accepted, enqueueMs, sentDuringWindow: sent, bulkPushesPerSec: Math.round(sent / ((Date.now() - t) / 1000)) };
});
console.log(`live chat with a marketing burst: ${JSON.stringify(withBurst)} burst: ${JSON.stringify(burstInfo)}`);

const result = {
  machine: { cpus: cpus().length, node: process.version },
  params: { recipients: R, senders: S, window: WINDOW, chatPairs: PAIRS, chatRate: CHAT_RATE, chatSeconds: CHAT_S, burst: BURST, bulkRate: BULK_RATE },
  throughput,
  chat: { alone, withBurst, burst: burstInfo },
};
console.log(JSON.stringify(result, null, 2));
if (a.json) writeFileSync(a.json, JSON.stringify(result, null, 2));

server.proc.kill('SIGTERM');
await new Promise((r) => server.proc.once('exit', r));
await fakeIpc.ask({ cmd: 'stop' }).catch(() => {});
fake.proc.kill('SIGTERM');
if (!a['keep-data']) rmSync(dataDir, { recursive: true, force: true });
process.exit(0);
