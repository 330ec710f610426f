/**
 * What an idle node costs: N real node processes (PostgreSQL + NATS when --nodes > 1 or --store
 * postgres, else SQLite), nobody connected; after --warmup s, each node's CPU (ms per second,
 * /proc/PID/stat utime + stime) and its main thread's wake-ups per second (context switches of
 * the main thread, /proc/PID/task/PID/status: about one per event-loop wake-up) over --duration s.
 *
 *   node --import tsx bench/idle.ts --nodes 3 --duration 30
 *
 * With NODE_OPTIONS="--import $PWD/bench/lib/timer-census.mjs" CENSUS_DIR=DIR (bench/lib/timer-census.mjs), a preload that answers the IPC messages
 * 'census-reset' / 'census-dump' can count timer callbacks by source over the same window
 * (the bench sends both; a server without such a preload ignores them).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import postgres from 'postgres';
import { SERVER_MAIN, ensureBuilt, serverEnv, serverExecArgv } from './lib/server.ts';
import { cpuMsOf } from './lib/proc.ts';

const PG = process.env.MAGPIE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const NATS = process.env.MAGPIE_TEST_NATS ?? 'nats://127.0.0.1:4222';
const { values: a } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1' },
    store: { type: 'string' },
    duration: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '5' },
  },
});
const nodesN = Number(a.nodes);
const store = a.store ?? (nodesN > 1 ? 'postgres' : 'sqlite');

function mainSwitches(pid: number): number {
  const st = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  return Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(st)![1]) + Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(st)![1]);
}

async function startNode(env: Record<string, string>, index: number): Promise<{ proc: ChildProcess; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'magpie-bench-idle-'));
  const proc = fork(SERVER_MAIN, [], {
    execArgv: serverExecArgv(),
    env: serverEnv({ MAGPIE_PORT: '0', MAGPIE_HOST: '127.0.0.1', MAGPIE_DATA_DIR: dir, MAGPIE_LOG_LEVEL: 'warn', PGAPPNAME: `magpie-node${index + 1}`, ...env }),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    proc.on('message', (m: { ready?: string }) => m.ready && resolve());
    proc.on('exit', (c) => reject(new Error(`node exited with ${c}`)));
  });
  return { proc, dir };
}

async function main(): Promise<void> {
  ensureBuilt();
  const db = `magpie_bench_${randomBytes(4).toString('hex')}`;
  const admin = store === 'postgres' ? postgres(PG, { max: 1, onnotice: () => {} }) : null;
  let env: Record<string, string> = {};
  if (admin) {
    await admin.unsafe(`CREATE DATABASE "${db}"`);
    const u = new URL(PG);
    u.pathname = `/${db}`;
    env = { MAGPIE_STORE: u.toString(), ...(nodesN > 1 ? { MAGPIE_NATS: NATS } : {}) };
  }
  const nodes: { proc: ChildProcess; dir: string }[] = [];
  try {
    for (let i = 0; i < nodesN; i++) nodes.push(await startNode(env, i));
    await sleep(Number(a.warmup) * 1000);
    const load0 = loadavg()[0]!.toFixed(1);
    for (const n of nodes) n.proc.send('census-reset');
    const t0 = performance.now();
    const c0 = nodes.map((n) => cpuMsOf(n.proc.pid!));
    const w0 = nodes.map((n) => mainSwitches(n.proc.pid!));
    await sleep(Number(a.duration) * 1000);
    const secs = (performance.now() - t0) / 1000;
    const cpu = nodes.map((n, i) => (cpuMsOf(n.proc.pid!) - c0[i]!) / secs);
    const wake = nodes.map((n, i) => (mainSwitches(n.proc.pid!) - w0[i]!) / secs);
    for (const n of nodes) n.proc.send('census-dump');
    await sleep(300);
    console.log(`idle: ${nodesN} node(s) on ${store}, nobody connected, over ${secs.toFixed(1)} s after ${a.warmup} s`);
    console.log(`  node CPU ms per second: ${cpu.map((c) => c.toFixed(1)).join(', ')} (mean ${(cpu.reduce((s, c) => s + c, 0) / nodesN).toFixed(1)})`);
    console.log(`  main-thread wake-ups per second: ${wake.map((w) => w.toFixed(0)).join(', ')}`);
    console.log(`load average at start ${load0}, at end ${loadavg()[0]!.toFixed(1)} (2 cores, shared with other work)`);
  } finally {
    await Promise.all(nodes.map((n) => new Promise((r) => (n.proc.once('exit', r), n.proc.kill('SIGTERM')))));
    for (const n of nodes) rmSync(n.dir, { recursive: true, force: true });
    if (admin) {
      await admin.unsafe(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
      await admin.end({ timeout: 2 });
    }
  }
}

await main();
