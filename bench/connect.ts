/**
 * Connection cost (issue 23): a reconnect storm of N users, each opening a WebSocket and
 * sending `hello` (token, inboxSeq, caps) until its welcome arrives.
 *
 *   npm run bench:connect -- --users 10000
 *
 * Seeds N users and sessions (no scrypt), starts the real server, connects everyone once
 * (warm-up: caches, JIT), closes every socket, then reconnects all of them at once (at most
 * --concurrency handshakes in flight) and prints the storm's seconds and the server's CPU µs
 * (from /proc/<pid>/stat) per connect + hello — in the storm, and until the server is quiet
 * again (presence settles 2 s after a user's connections change) — and per close, with the
 * load average. Each phase starts only once the server is done with the previous one: the
 * closes of the warm-up sockets (their last-seen writes) no longer land in the storm.
 *
 * Options (defaults): --users 10000 --concurrency 500 --quiet-wait 0 --cpu-prof DIR (the server
 * runs with `node --cpu-prof`; the summary prints the bench/cpuprofile-top.ts command for the storm)
 * --relay (measure bench/lib/bare-relay.mjs instead of Magpie: Node's http + ws answering hello
 * with a welcome of the same size, nothing else — the floor on this machine, in this window)
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { fmt, forkBenchProcess, gitDescribe, log, seedUsers, startBenchServer, waitQuiet, type BenchServer } from './lib/group-setup.ts';
import { cpuMsOf } from './lib/proc.ts';
import { benchToken } from './lib/users.ts';

const { values: a } = parseArgs({
  options: {
    users: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '500' },
    'quiet-wait': { type: 'string', default: '0' },
    'cpu-prof': { type: 'string' },
    relay: { type: 'boolean', default: false },
  },
  strict: true,
});
const N = Number(a.users);
if (!(N >= 1 && N <= 19_000)) throw new Error('--users must be 1..19000 (one process holds the sockets)');

function connect(wsUrl: string, nonce: string, i: number): Promise<WebSocket | null> {
  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrl, { perMessageDeflate: false, skipUTF8Validation: true });
    ws.once('open', () => ws.send(JSON.stringify({ type: 'hello', id: 0, versions: [1], token: benchToken(nonce, i), inboxSeq: 0, caps: ['ack', 'batch'], app: { platform: 'other', version: 'bench' } })));
    ws.once('message', (raw: Buffer) => resolve(raw.toString().includes('"type":"reply"') ? ws : (ws.terminate(), null)));
    ws.once('error', () => resolve(null));
  });
}

async function storm(wsUrl: string, nonce: string): Promise<{ sockets: WebSocket[]; failed: number; ms: number }> {
  const sockets: WebSocket[] = [];
  let failed = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(N, Number(a.concurrency)) }, async () => {
      while (next < N) {
        const ws = await connect(wsUrl, nonce, next++);
        if (ws) sockets.push(ws);
        else failed++;
      }
    }),
  );
  return { sockets, failed, ms: performance.now() - t0 };
}

async function closeAll(sockets: WebSocket[]): Promise<void> {
  await Promise.all(sockets.map((ws) => new Promise<void>((r) => (ws.once('close', () => r()), ws.close()))));
}

/**
 * Wait until the server has finished the work the last phase left behind (the closes it has
 * yet to see, presence settling `debounceMs` after a user's connections change): at least
 * until its open connections are `connections`, then `minMs`, then until it used ≤ 10% of a core
 * for a whole second. Returns the server CPU ms
 * used from `cpu0` on.
 */
async function serverQuiet(server: { pid: number; url: string }, cpu0: number, minMs: number, connections: number): Promise<number> {
  const { pid } = server;
  const until = Date.now() + 120_000;
  // Its gauge of open connections first (a close it has not processed yet costs no CPU while it waits).
  while (Date.now() < until) {
    // A refused or reset poll (a kept-alive socket the server closed) is just tried again.
    const text = await fetch(`${server.url}/metrics`, { headers: { connection: 'close' } }).then((r) => r.text(), () => '');
    if (Number(/^magpie_connections (\d+)/m.exec(text)?.[1]) === connections) break;
    await sleep(100);
  }
  // Presence settles `debounceMs` after the last change.
  await sleep(minMs);
  // CPU time moves in 10 ms ticks; an idle server (with --cpu-prof, on a loaded machine) uses up to ~5% of a core.
  let last = cpuMsOf(pid);
  for (;;) {
    await sleep(1000);
    const now = cpuMsOf(pid);
    const idle = now - last <= 100;
    last = now;
    if (idle || Date.now() > until) return last - cpu0;
  }
}

/** bench/lib/bare-relay.mjs as a child process, shaped like startBenchServer's answer. */
async function startRelay(cpuProfDir: string | undefined): Promise<BenchServer> {
  const execArgv: string[] = [];
  if (cpuProfDir) {
    mkdirSync(resolve(cpuProfDir), { recursive: true });
    execArgv.push('--cpu-prof', '--cpu-prof-dir', resolve(cpuProfDir));
  }
  return forkBenchProcess(new URL('./lib/bare-relay.mjs', import.meta.url), { execArgv, what: 'relay' });
}

async function main(): Promise<void> {
  await waitQuiet(Number(a['quiet-wait']));
  const nonce = randomBytes(4).toString('hex');
  const dataDir = mkdtempSync(join(tmpdir(), 'magpie-connect-'));
  log(`server code: ${a.relay ? 'bare relay (bench/lib/bare-relay.mjs)' : gitDescribe()}; ${N} users, ${a.concurrency} handshakes in flight`);
  if (!a.relay) await seedUsers(join(dataDir, 'magpie.db'), 0, N, nonce);
  const server = a.relay ? await startRelay(a['cpu-prof']) : await startBenchServer({ dataDir, cpuProfDir: a['cpu-prof'] });
  // Presence settles this long after a user's first connection opens or last one closes (the server's default).
  const settleMs = 2000 + 500;
  try {
    const warm = await storm(server.wsUrl, nonce);
    log(`warm-up: ${warm.sockets.length} connected in ${fmt(warm.ms / 1000, 2)} s (${warm.failed} failed)`);
    await serverQuiet(server, 0, settleMs, warm.sockets.length);
    // Disconnect: from closing every socket until the server is done with it (its side of the
    // close, the last-seen write, presence settling).
    const closeCpu0 = cpuMsOf(server.pid);
    const closeAt = performance.now();
    await closeAll(warm.sockets);
    const closeCpuMs = await serverQuiet(server, closeCpu0, settleMs, 0);
    const closeMs = performance.now() - closeAt;
    const cpu0 = cpuMsOf(server.pid);
    const stormAt = Date.now();
    const run = await storm(server.wsUrl, nonce);
    const cpuMs = cpuMsOf(server.pid) - cpu0;
    const allCpuMs = await serverQuiet(server, cpu0, settleMs, run.sockets.length);
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const per = (ms: number, n: number): string => fmt((ms * 1000) / Math.max(1, n), 0);
    console.log('');
    console.log(`=== reconnect storm: ${N} WebSocket connects + hello${a.relay ? ' (bare relay)' : ''} ===`);
    console.log(`storm             ${fmt(run.ms / 1000, 2)} s (${fmt(run.sockets.length / (run.ms / 1000), 0)} connects/s; ${run.failed} failed)`);
    console.log(`server CPU        ${per(cpuMs, run.sockets.length)} µs per connect + hello in the storm (${fmt(cpuMs / run.ms * 100, 0)}% of one core)`);
    console.log(`with deferred     ${per(allCpuMs, run.sockets.length)} µs per connect + hello until the server is quiet (presence settling after ${settleMs - 500} ms included)`);
    console.log(`disconnect        ${per(closeCpuMs, warm.sockets.length)} µs per close until the server is quiet (${fmt(closeMs / 1000, 1)} s)`);
    console.log(`load average      ${load}${Number(load.split(' ')[0]) > 1.5 ? ' — a loaded machine' : ''}`);
    if (a['cpu-prof']) {
      const from = (stormAt - server.forkedAt) / 1000;
      console.log(`profile           node --import tsx bench/cpuprofile-top.ts ${resolve(a['cpu-prof'])}/CPU.*.cpuprofile --from ${fmt(from, 1)} --to ${fmt(from + run.ms / 1000, 1)}`);
    }
    for (const ws of run.sockets) ws.terminate();
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
