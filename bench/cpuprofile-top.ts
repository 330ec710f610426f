/**
 * Top self-time functions (and files) of a V8 .cpuprofile, e.g. one written by
 * `npm run bench:1to1 -- --cpu-prof DIR` (the server runs with `node --cpu-prof`).
 *
 *   node --import tsx bench/cpuprofile-top.ts FILE.cpuprofile [--top 30] [--from SEC] [--to SEC]
 *
 * --from/--to keep only samples in that window (seconds since the profile started), so the
 * load phase can be separated from startup and connecting.
 *
 * --bucket 'NAME=REGEX' (repeatable): also split the samples into buckets. A sample goes to the
 * bucket of the innermost frame of its stack ("function  file:line", from the leaf up) that
 * some bucket's regular expression matches (the first such bucket in the order given); the
 * rest to "other". E.g. for red-packet opens over HTTP:
 *   --bucket 'wallet tx=sql-wallet-store|group-commit' --bucket 'auth=authenticate'
 *   --bucket 'GC=garbage collector' --bucket 'helmet=helmet'
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '30' }, from: { type: 'string' }, to: { type: 'string' }, bucket: { type: 'string', multiple: true } },
});
process.stdout.on('error', () => process.exit(0));
const file = positionals[0];
if (!file) {
  console.error('usage: cpuprofile-top.ts FILE.cpuprofile [--top N] [--from SEC] [--to SEC]');
  process.exit(2);
}
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of p.nodes) for (const ch of n.children ?? []) parent.set(ch, n.id);

const fromUs = values.from !== undefined ? Number(values.from) * 1e6 : -Infinity;
const toUs = values.to !== undefined ? Number(values.to) * 1e6 : Infinity;
const self = new Map<number, number>();
let t = 0;
let total = 0;
for (let i = 0; i < p.samples.length; i++) {
  t += p.timeDeltas[i] ?? 0;
  if (t < fromUs || t > toUs) continue;
  const dt = p.timeDeltas[i + 1] ?? 0;
  const id = p.samples[i]!;
  self.set(id, (self.get(id) ?? 0) + dt);
  total += dt;
}

const short = (url: string) => url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, 'node_modules/').replace(/^.*\/packages\//, 'packages/');
const fnKey = (cf: CallFrame) => `${cf.functionName || '(anonymous)'}  ${short(cf.url) || '(native)'}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;

const buckets = (values.bucket ?? []).map((b) => {
  const eq = b.indexOf('=');
  if (eq <= 0) throw new Error(`--bucket takes NAME=REGEX, got ${b}`);
  return { name: b.slice(0, eq), re: new RegExp(b.slice(eq + 1)) };
});
const byBucket = new Map<string, number>(buckets.map((b) => [b.name, 0]));
byBucket.set('other', 0);

const byFn = new Map<string, number>();
const byFile = new Map<string, number>();
const inclusive = new Map<string, number>();
for (const [id, us] of self) {
  const n = byId.get(id)!;
  byFn.set(fnKey(n.callFrame), (byFn.get(fnKey(n.callFrame)) ?? 0) + us);
  const f = short(n.callFrame.url) || `(${n.callFrame.functionName || 'native'})`;
  const fileKey = f.startsWith('node_modules/') ? f.split('/').slice(0, f.split('/')[1]!.startsWith('@') ? 3 : 2).join('/') : f;
  byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + us);
  // Inclusive time: credit every distinct function on the stack once.
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const k = fnKey(byId.get(cur)!.callFrame);
    if (seen.has(k)) continue;
    seen.add(k);
    inclusive.set(k, (inclusive.get(k) ?? 0) + us);
  }
  if (buckets.length > 0) {
    let b = 'other';
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = fnKey(byId.get(cur)!.callFrame);
      const hit = buckets.find((x) => x.re.test(f));
      if (hit) {
        b = hit.name;
        break;
      }
    }
    byBucket.set(b, byBucket.get(b)! + us);
  }
}

const top = Number(values.top);
const pct = (us: number) => `${((us / total) * 100).toFixed(1).padStart(5)}%`;
const print = (title: string, m: Map<string, number>, n: number) => {
  console.log(`\n${title}`);
  for (const [k, us] of [...m].sort((x, y) => y[1] - x[1]).slice(0, n)) console.log(`${pct(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`);
};
console.log(`${file}: ${(total / 1e6).toFixed(2)} s of samples${values.from || values.to ? ` in [${values.from ?? 0}, ${values.to ?? 'end'}] s` : ''}`);
print('self time by function', byFn, top);
print('self time by file / package', byFile, Math.min(top, 25));
print('inclusive time by function', inclusive, top);
if (buckets.length > 0) print('buckets (innermost matching frame)', byBucket, byBucket.size);
