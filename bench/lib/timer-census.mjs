// Timer census preload for bench/idle.ts: in the server process (dist/main.js) it counts every setTimeout / setInterval callback and the CPU inside it by where it was set; IPC "census-reset" starts the window, "census-dump" writes $CENSUS_DIR/census-<pid>.txt.
// NODE_OPTIONS="--import ./bench/lib/timer-census.mjs" CENSUS_DIR=/tmp/c node --import tsx bench/idle.ts --nodes 3
import { writeFileSync } from 'node:fs';
import { cpuUsage } from 'node:process';
const isServer = /dist\/main\.js$/.test(process.argv[1] ?? '');
if (isServer) {
  const stats = new Map();
  const t0 = Date.now();
  let cpu0 = cpuUsage();
  let startedAt = 0;
  const site = () => {
    const s = new Error().stack.split('\n').slice(3).map((l) => l.trim()).filter((l) => !l.includes('census.mjs') && !l.includes('node:internal'));
    return s.slice(0, 2).join(' <- ').replace(/file:\/\/\/[^ ]*?\/(packages|node_modules)\//g, '$1/');
  };
  const wrap = (orig, kind) => function (cb, ...rest) {
    if (typeof cb !== 'function') return orig.call(this, cb, ...rest);
    const key = kind + ' ' + site();
    let s = stats.get(key);
    if (!s) stats.set(key, (s = { n: 0, ns: 0n }));
    const w = function (...a) {
      const h = process.hrtime.bigint();
      try { return cb.apply(this, a); } finally { s.n++; s.ns += process.hrtime.bigint() - h; }
    };
    return orig.call(this, w, ...rest);
  };
  globalThis.setTimeout = wrap(globalThis.setTimeout, 'T');
  globalThis.setInterval = wrap(globalThis.setInterval, 'I');
  process.on('message', (m) => {
    if (m === 'census-reset') { for (const s of stats.values()) { s.n = 0; s.ns = 0n; } startedAt = Date.now(); cpu0 = cpuUsage(); }
    if (m === 'census-dump') {
      const secs = (Date.now() - startedAt) / 1000;
      const c = cpuUsage(cpu0);
      const rows = [...stats].filter(([, s]) => s.n > 0).sort((a, b) => b[1].n - a[1].n).map(([k, s]) => `${(s.n / secs).toFixed(2).padStart(8)}/s ${(Number(s.ns) / 1e6 / secs).toFixed(3).padStart(8)} ms/s  ${k}`);
      writeFileSync(`${process.env.CENSUS_DIR}/census-${process.pid}.txt`, `pid ${process.pid} over ${secs.toFixed(1)} s: process CPU ${((c.user + c.system) / 1000 / secs).toFixed(2)} ms/s\n` + rows.join('\n') + '\n');
    }
  });
}
