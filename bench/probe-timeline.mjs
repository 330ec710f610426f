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

// Summary per append cycle (medians over the window): writer statements (start:append → commit),
// COMMIT (commit → committed), writer reply (committed → wposted), port latency (wposted → reply),
// event loop reply → hand-over of the next batch, hand-over → writer start, and each thread's
// idle time per cycle.
{
  const cycles = [];
  let cur = null;
  let lastW = null;
  let lastL = null;
  let appendRunning = false;
  for (const e of ev) {
    if (e.th === 'W') {
      if (e.name === 'start:append') { cur = { start: e.t, wIdle0: e.idle }; appendRunning = true; }
      else if (e.name === 'commit' && cur && appendRunning) cur.commit = e.t;
      else if (e.name === 'committed' && cur && appendRunning) cur.committed = e.t;
      else if (e.name === 'wposted' && cur && appendRunning) { cur.wposted = e.t; appendRunning = false; }
      lastW = e;
    } else {
      if (e.name === 'reply' && cur && cur.wposted && !cur.reply) { cur.reply = e.t; cur.lIdle0 = lastL?.idle; }
      else if (e.name === 'hand:append' && cur && cur.reply && !cur.hand) { cur.hand = e.t; cur.n = e.n; cur.lIdleAtHand = e.idle; cycles.push(cur); }
      lastL = e;
    }
  }
  const med = (xs) => { const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : NaN; };
  const f = (k) => (med(cycles.map(k)) / 1000).toFixed(2);
  const next = cycles.map((c, i) => cycles[i + 1]);
  console.log(`\n${cycles.length} append cycles; medians in ms:`);
  console.log(`  cycle (writer start → next start)     ${(med(cycles.map((c, i) => next[i] ? next[i].start - c.start : NaN)) / 1000).toFixed(2)}   batch ${med(cycles.map((c) => c.n))}`);
  console.log(`  writer statements (start → COMMIT)    ${f((c) => c.commit - c.start)}`);
  console.log(`  COMMIT (fsync)                        ${f((c) => c.committed - c.commit)}`);
  console.log(`  writer reply posted → loop receives   ${f((c) => c.reply - c.wposted)}`);
  console.log(`  loop: reply → next batch handed over  ${f((c) => c.hand - c.reply)}`);
  console.log(`  hand-over → writer starts it          ${(med(cycles.map((c, i) => next[i] ? next[i].start - c.hand : NaN)) / 1000).toFixed(2)}`);
}
