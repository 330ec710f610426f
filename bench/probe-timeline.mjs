import { readFileSync, readdirSync } from 'node:fs';
const dir = process.argv[2];
const from = Number(process.argv[3] ?? 0), to = Number(process.argv[4] ?? 60);
const files = readdirSync(dir).filter((f) => f.startsWith('timeline-'));
const ev = [];
for (const f of files) {
  const tid = f.match(/timeline-(\d+)/)[1];
  const a = JSON.parse(readFileSync(`${dir}/${f}`, 'utf8'));
  for (let i = 0; i < a.length; i += 4) ev.push({ t: a[i], name: a[i + 1], n: a[i + 2], idle: a[i + 3], th: tid === '0' ? 'L' : 'W' });
}
ev.sort((x, y) => x.t - y.t);
const t0 = ev[0].t;
// compress runs of 'read' and 'sub'
let out = [];
let prev = { L: null, W: null };
for (const e of ev) {
  const ms = (e.t - t0) / 1000;
  if (ms < from || ms > to) continue;
  const p = prev[e.th];
  const idle = p ? (e.idle - p.idle) : 0;
  prev[e.th] = e;
  const last = out[out.length - 1];
  if (last && last.th === e.th && last.name === e.name && (e.name === 'read' || e.name === 'sub')) { last.count++; last.end = ms; last.idle += idle; last.n = e.n; continue; }
  out.push({ ms, end: ms, th: e.th, name: e.name, n: e.n, count: 1, idle });
}
for (const o of out) {
  const col = o.th === 'L' ? '' : '                                                  ';
  console.log(`${o.ms.toFixed(3).padStart(8)} ${col}${o.th} ${o.name}${o.count > 1 ? ` x${o.count} (to ${o.end.toFixed(3)})` : ''} n=${o.n}${o.idle > 0.01 ? ` idle+${o.idle.toFixed(2)}ms` : ''}`);
}
