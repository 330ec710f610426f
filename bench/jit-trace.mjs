#!/usr/bin/env node
/**
 * V8 JIT trace of a bench's server, per thread (issue 23: what the server compiles in the first
 * seconds of load).
 *
 *   MAGPIE_BENCH_SERVER_EXEC_ARGV="--trace-opt --trace-deopt-verbose" stdbuf -oL -eL \
 *     node --import tsx bench/one-to-one.ts --users 10000 --rate 10000 --duration 8 2>&1 \
 *     | node bench/jit-trace.mjs stamp > trace.txt
 *   node bench/jit-trace.mjs count trace.txt 0 3000     (ms relative to the load start)
 *
 * `stamp` prefixes each line with the ms since it started (stdbuf -oL: V8's trace lines are
 * written line by line). `count` takes the load start from the bench's "idle connections" line
 * (or a "LOAD START" line), and lists, per function, TurboFan compiles (count, summed job time:
 * the three phases of "took") and deopts (reason, bytecode offset) between FROM and TO, for the
 * threads other than the main one, and the totals per thread. A deopt line's caller SP tells
 * its thread (the main thread's stack is the most common prefix); a compile line is put on a
 * thread by its SharedFunctionInfo's 256 KiB heap page, learnt from the deopt lines and from
 * functions only the SQLite writer thread runs ('?' when unknown).
 */
import { readFileSync } from 'node:fs';
import readline from 'node:readline';

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'stamp') {
  const t0 = performance.now();
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on('line', (l) => process.stdout.write(`${(performance.now() - t0).toFixed(0).padStart(7)} ${l}\n`));
} else if (cmd === 'count') {
  count(...args);
} else {
  console.error('usage: jit-trace.mjs stamp | count FILE [FROM_MS TO_MS]');
  process.exit(2);
}

function count(file, fromS = '-1e9', toS = '1e9') {
  const lines = readFileSync(file, 'utf8').split('\n');
  const t = (l) => Number(l.slice(0, 8));
  const load = t(lines.find((l) => l.includes('idle connections') || l.includes('LOAD START')));
  const page = (a) => (BigInt(a) >> 18n).toString(16);
  // page -> set of threads, from bailouts' caller SP (main thread stack 0x7ffe..., others = worker)
  const pages = new Map();
  // The main thread's stack is the process's (the most common caller SP prefix); a worker's is elsewhere.
  const spCount = new Map();
  for (const l of lines) { const m = /caller SP (0x[0-9a-f]{6})/.exec(l); if (m) spCount.set(m[1], (spCount.get(m[1]) ?? 0) + 1); }
  const mainSp = [...spCount].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
  const thr = (sp) => (sp.startsWith(mainSp) ? 'main' : 'worker');
  for (const l of lines) {
    const m = /<JSFunction ([^ ]*) ?\(sfi = (0x[0-9a-f]+)\).*caller SP (0x[0-9a-f]+)/.exec(l);
    if (!m) continue;
    const p = page(m[2]);
    if (!pages.has(p)) pages.set(p, new Set());
    pages.get(p).add(thr(m[3]));
  }
  const WORKER_ONLY = new Set(['readUsers','writeAcksSqlite','moveMarks','appendTx','decodeBatch','encodeOutcomes','insertRows','rowsSql','columns','storedAsSent','WriterWarmUp','copySchema']);
  for (const l of lines) {
    const m = /<JSFunction ([^ ]*) ?\(sfi = (0x[0-9a-f]+)\)/.exec(l);
    if (!m || !WORKER_ONLY.has(m[1])) continue;
    const p = page(m[2]);
    if (!pages.has(p)) pages.set(p, new Set());
    pages.get(p).add('worker');
  }
  const conflicts = [...pages].filter(([, s]) => s.size > 1).length;
  console.log(`pages known ${pages.size}, conflicting ${conflicts}`);
  const rows = new Map();
  for (const l of lines) {
    const ts = t(l) - load;
    if (!(ts >= Number(fromS) && ts <= Number(toS))) continue;
    let m = /completed compiling 0x[0-9a-f]+ <JSFunction ([^ ]*) ?\(sfi = (0x[0-9a-f]+)\)> \(target TURBOFAN\)( OSR)? - took ([0-9.]+), ([0-9.]+), ([0-9.]+) ms/.exec(l);
    let kind = 'compile';
    let ms = 0;
    if (m) ms = Number(m[4]) + Number(m[5]) + Number(m[6]);
    else {
      m = /bailout \(kind: ([^,]*), reason: ([^)]*)\): begin. deoptimizing 0x[0-9a-f]+ <JSFunction ([^ ]*) ?\(sfi = (0x[0-9a-f]+)\).*bytecode offset (\d+)/.exec(l);
      if (!m) continue;
      kind = `deopt ${m[2]} @${m[5]}`;
      m = [null, m[3], m[4]];
    }
    const name = m[1] || '(anon)';
    const th = [...(pages.get(page(m[2])) ?? ['?'])].join('/');
    const key = `${th}\t${name}\t${m[2]}\t${kind}`;
    const r = rows.get(key) ?? { n: 0, ms: 0 };
    r.n++;
    r.ms += ms;
    rows.set(key, r);
  }
  const sorted = [...rows].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  for (const [k, r] of sorted) if (!k.startsWith('main')) console.log(`${k}\t${r.n}\t${r.ms.toFixed(1)} ms`);
  let sum = { main: [0, 0], worker: [0, 0], other: [0, 0] };
  for (const [k, r] of rows) { if (!k.includes('compile')) continue; const th = k.startsWith('main') ? 'main' : k.startsWith('worker') ? 'worker' : 'other'; sum[th][0] += r.n; sum[th][1] += r.ms; }
  console.log('compiles (n, ms):', JSON.stringify(sum));
}
