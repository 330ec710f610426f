#!/usr/bin/env node
// Start time and memory of one Magpie node: compiled (npm start) vs from source through tsx.
//   node bench/startup.mjs [runs]     (npm run bench:startup; needs `npm run build` first)
// Time = spawn until the server logs its URL (SQLite store, empty data directory);
// memory = VmRSS of the process 1 s after it is listening, idle.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
const runs = Number(process.argv[2] ?? 5);
const modes = {
  compiled: { args: [join(ROOT, 'packages/server/dist/main.js')], nodeOptions: '' },
  'tsx (source)': { args: ['--import', 'tsx', join(ROOT, 'packages/server/src/main.ts')], nodeOptions: '--conditions=magpie-source' },
};

async function once({ args, nodeOptions }) {
  const dataDir = mkdtempSync(join(tmpdir(), 'magpie-startup-'));
  const t0 = performance.now();
  const proc = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, NODE_OPTIONS: nodeOptions, MAGPIE_PORT: '0', MAGPIE_HOST: '127.0.0.1', MAGPIE_DATA_DIR: dataDir, MAGPIE_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ms = await new Promise((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      if (out.includes('"url":"http')) resolve(performance.now() - t0);
    });
    proc.on('exit', (c) => reject(new Error(`exited ${c}`)));
  });
  await new Promise((r) => setTimeout(r, 1000));
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'))[1]);
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  rmSync(dataDir, { recursive: true, force: true });
  return { ms, rssMb: rssKb / 1024 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`startup: ${runs} runs per mode, alternating; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
const results = Object.fromEntries(Object.keys(modes).map((k) => [k, []]));
for (let i = 0; i < runs; i++) for (const [name, mode] of Object.entries(modes)) results[name].push(await once(mode));
for (const [name, rs] of Object.entries(results)) {
  console.log(`${name.padEnd(14)} start ${median(rs.map((r) => r.ms)).toFixed(0)} ms (median; min ${Math.min(...rs.map((r) => r.ms)).toFixed(0)})  RSS ${median(rs.map((r) => r.rssMb)).toFixed(1)} MB`);
}
console.log(`load average after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
