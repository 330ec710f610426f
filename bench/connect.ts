/**
 * Connection cost (issue 23): a reconnect storm of N users, each opening a WebSocket and
 * sending `hello` (token, inboxSeq, caps) until its welcome arrives.
 *
 *   npm run bench:connect -- --users 10000
 *
 * Seeds N users and sessions (no scrypt), starts the real server, connects everyone once
 * (warm-up: caches, JIT), closes every socket, then reconnects all of them at once (at most
 * --concurrency handshakes in flight) and prints the storm's seconds and the server's CPU µs
 * per connect + hello (from /proc/<pid>/stat), with the load average.
 *
 * Options (defaults): --users 10000 --concurrency 500 --quiet-wait 0
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { fmt, gitDescribe, log, seedUsers, startBenchServer, waitQuiet } from './lib/group-setup.ts';
import { cpuMsOf } from './lib/proc.ts';
import { benchToken } from './lib/users.ts';

const { values: a } = parseArgs({
  options: {
    users: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '500' },
    'quiet-wait': { type: 'string', default: '0' },
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

async function main(): Promise<void> {
  await waitQuiet(Number(a['quiet-wait']));
  const nonce = randomBytes(4).toString('hex');
  const dataDir = mkdtempSync(join(tmpdir(), 'magpie-connect-'));
  log(`server code: ${gitDescribe()}; ${N} users, ${a.concurrency} handshakes in flight`);
  await seedUsers(join(dataDir, 'magpie.db'), 0, N, nonce);
  const server = await startBenchServer({ dataDir });
  try {
    const warm = await storm(server.wsUrl, nonce);
    log(`warm-up: ${warm.sockets.length} connected in ${fmt(warm.ms / 1000, 2)} s (${warm.failed} failed)`);
    await closeAll(warm.sockets);
    await sleep(2000);
    const cpu0 = cpuMsOf(server.pid);
    const run = await storm(server.wsUrl, nonce);
    const cpuMs = cpuMsOf(server.pid) - cpu0;
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    console.log('');
    console.log(`=== reconnect storm: ${N} WebSocket connects + hello ===`);
    console.log(`storm             ${fmt(run.ms / 1000, 2)} s (${fmt(run.sockets.length / (run.ms / 1000), 0)} connects/s; ${run.failed} failed)`);
    console.log(`server CPU        ${fmt((cpuMs * 1000) / Math.max(1, run.sockets.length), 0)} µs per connect + hello (${fmt(cpuMs / run.ms * 100, 0)}% of one core)`);
    console.log(`load average      ${load}${Number(load.split(' ')[0]) > 1.5 ? ' — a loaded machine' : ''}`);
    for (const ws of run.sockets) ws.terminate();
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
