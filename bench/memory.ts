/**
 * Server memory (issue 23): RSS right after start, after registering 32 users (scrypt, the
 * password-strength thread), and under a saturated 1:1 load, with where it goes.
 *
 *   npm run bench:memory                      # as `npm start` runs it (packages/server/launch.json: no node flags, MALLOC_ARENA_MAX=2, MALLOC_MMAP_THRESHOLD_=1048576)
 *   npm run bench:memory -- --arena-max unset # glibc's defaults (8 arenas per core, dynamic mmap threshold)
 *
 * Prints, per phase: RSS, the V8 heap (total/used), external + array buffers, the number of
 * threads, and the peak RSS while loaded, with the load average.
 *
 * Options (defaults): --users 32 --load-seconds 10 --inflight 16 --arena-max 2
 *   --server-env KEY=VALUE (repeatable, e.g. MAGPIE_MIN_PASSWORD_SCORE=0 to see the strength thread's share)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { api, fmt, gitDescribe, log, mb, startBenchServer } from './lib/group-setup.ts';
import { rssOf } from './lib/proc.ts';

const { values: a } = parseArgs({
  options: {
    users: { type: 'string', default: '32' },
    'load-seconds': { type: 'string', default: '10' },
    inflight: { type: 'string', default: '16' },
    'arena-max': { type: 'string', default: '2' },
    'server-env': { type: 'string', multiple: true, default: [] },
  },
  strict: true,
});
const U = Number(a.users);
if (!(U >= 2) || U % 2) throw new Error('--users must be even and ≥ 2');

interface Snapshot {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  threads: number;
}

async function snapshot(url: string, pid: number): Promise<Snapshot> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    rss: rssOf(pid),
    heapTotal: metric('magpie_process_nodejs_heap_size_total_bytes'),
    heapUsed: metric('magpie_process_nodejs_heap_size_used_bytes'),
    external: metric('magpie_process_nodejs_external_memory_bytes'),
    threads: Number(/Threads:\s+(\d+)/.exec(status)?.[1] ?? NaN),
  };
}

const row = (label: string, s: Snapshot) =>
  `${label.padEnd(28)} RSS ${mb(s.rss).padStart(9)}   V8 heap ${mb(s.heapTotal)} (used ${mb(s.heapUsed)})   external ${mb(s.external)}   threads ${s.threads}`;

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'magpie-memory-'));
  const env: Record<string, string> = {};
  if (a['arena-max'] !== 'unset') {
    // As `npm start` and the Dockerfile run it.
    env.MALLOC_ARENA_MAX = String(a['arena-max']);
    env.MALLOC_MMAP_THRESHOLD_ = '1048576';
  }
  for (const kv of a['server-env'] ?? []) {
    const eq = kv.indexOf('=');
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  const inherited = process.env.MALLOC_ARENA_MAX;
  if (a['arena-max'] === 'unset') {
    delete process.env.MALLOC_ARENA_MAX;
    delete process.env.MALLOC_MMAP_THRESHOLD_;
  }
  log(`server code: ${gitDescribe()}; MALLOC_ARENA_MAX ${env.MALLOC_ARENA_MAX ?? 'unset (glibc default)'}`);
  // --arena-max unset: without the launch environment's malloc defaults (packages/server/launch.json).
  const server = await startBenchServer({ dataDir, env, launchEnv: a['arena-max'] !== 'unset' });
  try {
    await sleep(3000);
    const start = await snapshot(server.url, server.pid);

    // Register and log in U users through the API (scrypt + the strength check, as people do).
    const tokens: { userId: string; token: string }[] = [];
    for (let i = 0; i < U; i++) {
      const username = `mem${i}x${process.pid}`;
      const reg = await api(server.url, 'POST', '/api/register', { username, password: 'correct horse battery' });
      if (reg.status !== 201) throw new Error(`register: ${reg.status} ${JSON.stringify(reg.body)}`);
      const lg = await api(server.url, 'POST', '/api/login', { username, password: 'correct horse battery', deviceId: 'mem', platform: 'web' });
      if (lg.status !== 200) throw new Error(`login: ${lg.status} ${JSON.stringify(lg.body)}`);
      tokens.push({ userId: lg.body.userId, token: lg.body.token });
    }
    await sleep(2000);
    const registered = await snapshot(server.url, server.pid);

    // Load: pairs, the first of each keeps `inflight` messages in flight on the durable ACK.
    const sockets = await Promise.all(
      tokens.map(
        (t) =>
          new Promise<WebSocket>((res, rej) => {
            const ws = new WebSocket(server.wsUrl, { perMessageDeflate: false });
            ws.once('open', () => ws.send(JSON.stringify({ type: 'hello', id: 0, versions: [1], token: t.token, inboxSeq: 0, caps: ['ack', 'batch'] })));
            ws.once('message', () => res(ws));
            ws.once('error', rej);
          }),
      ),
    );
    let sent = 0;
    let acked = 0;
    let running = true;
    let peak = 0;
    for (let k = 0; k < U; k += 2) {
      const ws = sockets[k]!;
      const to = tokens[k + 1]!.userId;
      const one = () => ws.send(JSON.stringify({ type: 'send', id: ++sent, clientMsgId: `m${sent}`, to, kind: 'text', body: { text: 'memory bench message' } }));
      ws.on('message', (raw: Buffer) => {
        for (const _ of raw.toString().matchAll(/"type":"reply"/g)) {
          acked++;
          if (running) one();
        }
      });
      for (let j = 0; j < Number(a.inflight); j++) one();
    }
    // Receivers ACK cumulatively.
    for (let k = 1; k < U; k += 2) {
      const ws = sockets[k]!;
      let top = 0;
      ws.on('message', (raw: Buffer) => {
        for (const hit of raw.toString().matchAll(/"inboxSeq":(\d+)/g)) top = Math.max(top, Number(hit[1]));
        ws.send(`{"type":"ack","inboxSeq":${top}}`);
      });
    }
    const until = Date.now() + Number(a['load-seconds']) * 1000;
    while (Date.now() < until) {
      await sleep(250);
      peak = Math.max(peak, rssOf(server.pid));
    }
    const loaded = await snapshot(server.url, server.pid);
    running = false;
    await sleep(1000);
    for (const ws of sockets) ws.terminate();

    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    console.log('');
    console.log(`=== server memory (MALLOC_ARENA_MAX ${env.MALLOC_ARENA_MAX ?? 'unset'}, MALLOC_MMAP_THRESHOLD_ ${env.MALLOC_MMAP_THRESHOLD_ ?? 'unset'}) ===`);
    console.log(row('after start', start));
    console.log(row(`after registering ${U} users`, registered));
    console.log(row(`under load (${fmt(acked / Number(a['load-seconds']), 0)} msg/s)`, loaded));
    console.log(`peak RSS under load          ${mb(peak)}`);
    console.log(`load average                 ${load}${Number(load.split(' ')[0]) > 1.5 ? ' — a loaded machine' : ''}`);
    if (inherited !== undefined) process.env.MALLOC_ARENA_MAX = inherited;
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
